//! Kafka in the service (`--features kafka`): `[[kafka]]` sources started under the
//! pipeline's supervisor and fed to its writer, and the `[kafka_sink]` producer fed by
//! the threat recorder. Without the feature the configuration refuses both sections,
//! so nothing here is needed.

use std::sync::Arc;

use anyhow::Context as _;
use palisade_core::supervisor::SharedReceiver;
use palisade_core::threat::StoredThreat;
use palisade_kafka::sink::{CHANNEL_GROUPS, KafkaSink};
use palisade_pipeline::predictions::{PREDICTION_QUEUE, PredictionRecord, PredictionTap};
use palisade_pipeline::{PipelineConfig, PipelineHandle};
use tokio::task::JoinHandle;

use crate::config::Settings;

/// The sink, built before the pipeline so the recorder can feed it.
pub struct SinkSetup {
    sink: Arc<KafkaSink>,
    threats: SharedReceiver<Arc<[StoredThreat]>>,
    /// The Guard's model predictions, with `predictions_topic`.
    predictions: Option<SharedReceiver<PredictionRecord>>,
}

/// Builds the `[kafka_sink]` producer (never connects here) and registers its channel
/// with the threat recorder (and, with `predictions_topic`, a prediction tap with the
/// Guard).
pub fn attach_sink(
    settings: &Settings,
    config: &mut PipelineConfig,
) -> anyhow::Result<Option<SinkSetup>> {
    let Some(sink_config) = &settings.kafka_sink else {
        return Ok(None);
    };
    let sink = KafkaSink::new(sink_config).context("starting the Kafka sink ([kafka_sink])")?;
    let (tx, rx) = tokio::sync::mpsc::channel(CHANNEL_GROUPS);
    config.threat_observers.observers.push(tx);
    let predictions = sink.produces_predictions().then(|| {
        let (tap, rx) = PredictionTap::channel(PREDICTION_QUEUE);
        config.predictions = Some(tap);
        SharedReceiver::new(rx)
    });
    Ok(Some(SinkSetup {
        sink: Arc::new(sink),
        threats: SharedReceiver::new(rx),
        predictions,
    }))
}

/// Starts every `[[kafka]]` source and the sink under the pipeline's supervisor.
/// Returns the source tasks and the decisions relay (done at shutdown; sources after
/// their last batch is stored) and
/// the sink task (done once the recorder has drained).
pub fn start(
    settings: &Settings,
    handle: &PipelineHandle,
    sink: Option<SinkSetup>,
    role: crate::topology::Role,
) -> (Vec<JoinHandle<()>>, Option<JoinHandle<()>>) {
    let mut sources = Vec::new();
    for source in &settings.kafka {
        let status = handle
            .sources
            .register(&source.name, "kafka", &source.target());
        if !role.works() {
            // Listed (so it can be paused and resumed from here), consumed by workers.
            status.set_state(
                palisade_sources::SourceState::Stopped,
                Some("consumed by the worker nodes (this is an API node)".into()),
            );
            continue;
        }
        let (source, store, writer, shutdown) = (
            source.clone(),
            handle.store.clone(),
            handle.writer.clone(),
            handle.supervisor.shutdown(),
        );
        let name = format!("kafka:{}", source.name);
        sources.push(handle.supervisor.spawn(&name, move || {
            palisade_kafka::source::run(
                source.clone(),
                store.clone(),
                writer.clone(),
                status.clone(),
                shutdown.clone(),
            )
        }));
    }
    if let Some(s) = sink.as_ref().filter(|s| s.sink.produces_decisions()) {
        let (sink, store, shutdown) = (
            s.sink.clone(),
            handle.store.clone(),
            handle.supervisor.shutdown(),
        );
        sources.push(handle.supervisor.spawn("kafka-sink-decisions", move || {
            sink.clone().run_decisions(store.clone(), shutdown.clone())
        }));
    }
    if let Some(s) = sink.as_ref().filter(|s| s.sink.produces_alerts()) {
        let (sink, bus, shutdown) = (
            s.sink.clone(),
            handle.live.clone(),
            handle.supervisor.shutdown(),
        );
        sources.push(handle.supervisor.spawn("kafka-sink-alerts", move || {
            sink.clone().run_alerts(bus.clone(), shutdown.clone())
        }));
    }
    if let Some((sink, records)) = sink
        .as_ref()
        .and_then(|s| Some((s.sink.clone(), s.predictions.clone()?)))
    {
        let shutdown = handle.supervisor.shutdown();
        sources.push(handle.supervisor.spawn("kafka-sink-predictions", move || {
            sink.clone()
                .run_predictions(records.clone(), PredictionRecord::key, shutdown.clone())
        }));
    }
    let sink_task = sink.map(|s| {
        handle
            .supervisor
            .spawn("kafka-sink", move || s.sink.clone().run(s.threats.clone()))
    });
    (sources, sink_task)
}

//! The libpcap capture loop (feature `capture`).

use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use palisade_core::Shutdown;
use palisade_core::metrics::registry;
use palisade_core::supervisor::Supervisor;
use palisade_live::Bus;
use palisade_sources::BatchWriter;
use palisade_store::{Device, SharedStore};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use super::{CaptureConfig, CaptureStatus, explain_open_error, register};
use crate::capture::FlowBuilder;
use crate::config::FlowConfig;
use crate::device::{DeviceTable, Oui};
use crate::flow::FlowRecord;
use crate::import::FlowSink;
use crate::reader::Packet;

type Batch = (Vec<FlowRecord>, Vec<Device>);

fn set(status: &Mutex<CaptureStatus>, f: impl FnOnce(&mut CaptureStatus)) {
    f(&mut status.lock().unwrap_or_else(PoisonError::into_inner));
}

/// Starts one supervised task per `[[capture]]`: the capture thread and the sink that
/// stores what it finds. A capture that cannot open its interface (no privilege, no
/// such interface, a bad filter) is marked `failed` with the reason and retried with
/// backoff (1 s doubling to 60 s) until shutdown.
pub fn start(
    captures: &[CaptureConfig],
    flows: &FlowConfig,
    store: SharedStore,
    writer: Option<BatchWriter>,
    bus: Option<Arc<Bus>>,
    judge: Option<Arc<dyn crate::judge::FlowJudge>>,
    supervisor: &Supervisor,
) -> Vec<JoinHandle<()>> {
    let shutdown = supervisor.shutdown();
    captures
        .iter()
        .map(|c| {
            let status = register(&c.interface);
            let (c, flows, store, writer, bus, judge, shutdown) = (
                c.clone(),
                flows.clone(),
                store.clone(),
                writer.clone(),
                bus.clone(),
                judge.clone(),
                shutdown.clone(),
            );
            supervisor.spawn(&format!("capture:{}", c.interface), move || {
                let sink =
                    FlowSink::new(c.source_name(), store.clone(), writer.clone(), bus.clone())
                        .with_judge(judge.clone());
                run(
                    c.clone(),
                    flows.clone(),
                    sink,
                    status.clone(),
                    shutdown.clone(),
                )
            })
        })
        .collect()
}

async fn run(
    c: CaptureConfig,
    flows: FlowConfig,
    mut sink: FlowSink,
    status: Arc<Mutex<CaptureStatus>>,
    mut shutdown: Shutdown,
) {
    let mut backoff = Duration::from_secs(1);
    loop {
        let (tx, mut rx) = mpsc::channel::<Batch>(8);
        let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let thread = {
            let (c, flows, status, stop) = (c.clone(), flows.clone(), status.clone(), stop.clone());
            tokio::task::spawn_blocking(move || capture_loop(&c, flows, &status, &stop, &tx))
        };
        loop {
            let got = if stop.load(std::sync::atomic::Ordering::Relaxed) {
                // Stopping: take what the thread still hands over until it ends.
                rx.recv().await
            } else {
                tokio::select! {
                    got = rx.recv() => got,
                    _ = shutdown.recv() => {
                        stop.store(true, std::sync::atomic::Ordering::Relaxed);
                        continue;
                    }
                }
            };
            let Some((batch, seen)) = got else {
                break;
            };
            let n = batch.len() as u64;
            if let Err(error) = sink.handle(batch, seen).await {
                tracing::warn!(message = "Cannot store captured flows; batch dropped.", interface = %c.interface, %error);
                set(&status, |s| s.our_drops += n);
            }
        }
        match thread.await {
            Ok(Ok(())) => {
                set(&status, |s| s.state = "stopped".into());
                return;
            }
            Ok(Err(reason)) => {
                tracing::error!(message = "Live capture failed; retrying.", interface = %c.interface, %reason, retry_in_s = backoff.as_secs());
                set(&status, |s| {
                    s.state = "failed".into();
                    s.error = Some(reason);
                });
            }
            Err(e) => {
                set(&status, |s| {
                    s.state = "failed".into();
                    s.error = Some(format!("capture thread ended: {e}"));
                });
            }
        }
        if shutdown.is_shutdown() {
            return;
        }
        tokio::select! {
            _ = tokio::time::sleep(backoff) => {}
            _ = shutdown.recv() => return,
        }
        backoff = (backoff * 2).min(Duration::from_secs(60));
    }
}

/// Captures until `stop`; `Err` with an actionable reason when the interface cannot be
/// opened or reading fails.
fn capture_loop(
    c: &CaptureConfig,
    flows: FlowConfig,
    status: &Mutex<CaptureStatus>,
    stop: &std::sync::atomic::AtomicBool,
    tx: &mpsc::Sender<Batch>,
) -> Result<(), String> {
    let explain = |e: pcap::Error| explain_open_error(&c.interface, &e.to_string());
    let snap = i32::try_from(c.snap_length).unwrap_or(65_535);
    let buffer = i32::try_from(c.buffer_mib.saturating_mul(1 << 20)).unwrap_or(i32::MAX);
    let mut cap = pcap::Capture::from_device(c.interface.as_str())
        .map_err(explain)?
        .promisc(c.promiscuous)
        .snaplen(snap)
        .buffer_size(buffer)
        .timeout(200)
        .immediate_mode(true)
        .open()
        // Non-blocking: with TPACKET_V3 a quiet interface never wakes a blocking read
        // (the kernel retires no empty block), so stopping would wait for a packet.
        .and_then(pcap::Capture::setnonblock)
        .map_err(explain)?;
    if let Some(f) = c.filter.as_deref().filter(|f| !f.trim().is_empty()) {
        cap.filter(f, true)
            .map_err(|e| format!("filter {f:?} for {}: {e}", c.interface))?;
    }
    let link_type = u32::try_from(cap.get_datalink().0).unwrap_or(0);
    let iface = c.interface.as_str();
    let m_packets = registry().counter(
        "palisade_capture_packets_total",
        "Packets received by a live capture, by interface.",
        &["interface"],
        &[iface],
    );
    let m_kernel = registry().counter(
        "palisade_capture_kernel_drops_total",
        "Packets the kernel (or the interface) dropped before a live capture read them, by interface.",
        &["interface"],
        &[iface],
    );
    let m_ours = registry().counter(
        "palisade_capture_dropped_flows_total",
        "Finished flows a live capture dropped because storing fell behind, by interface.",
        &["interface"],
        &[iface],
    );
    set(status, |s| {
        s.state = "capturing".into();
        s.error = None;
    });
    tracing::info!(
        message = "Live capture started.",
        interface = iface,
        link_type
    );
    let devices = flows
        .devices
        .then(|| DeviceTable::new(Oui::shared(), flows.max_devices));
    let mut builder = FlowBuilder::new(flows);
    if let Some(d) = devices {
        builder = builder.with_devices(d);
    }
    let (mut last_tick, mut tick_packets, mut kernel_seen) = (Instant::now(), 0u64, 0u64);
    let send = |builder: &mut FlowBuilder, status: &Mutex<CaptureStatus>| {
        let done = builder.take_finished();
        let seen = builder.take_devices();
        if done.is_empty() && seen.is_empty() {
            return;
        }
        let n = done.len() as u64;
        set(status, |s| s.flows += n);
        if tx.try_send((done, seen)).is_err() {
            m_ours.add(n);
            set(status, |s| s.our_drops += n);
        }
    };
    // Stops on shutdown, or when the sink side is gone (its task was aborted).
    while !stop.load(std::sync::atomic::Ordering::Relaxed) && !tx.is_closed() {
        match cap.next_packet() {
            Ok(p) => {
                // `timeval` is two i64 on the 64-bit Linux targets we build for.
                let ts_us = p
                    .header
                    .ts
                    .tv_sec
                    .saturating_mul(1_000_000)
                    .saturating_add(p.header.ts.tv_usec);
                builder.add(&Packet {
                    ts_us,
                    link_type,
                    orig_len: p.header.len,
                    data: p.data,
                });
                tick_packets += 1;
                m_packets.inc();
            }
            // Nothing waiting: rest briefly (the kernel buffer holds what arrives).
            Err(pcap::Error::TimeoutExpired) => std::thread::sleep(Duration::from_millis(10)),
            Err(e) => return Err(format!("reading from {iface}: {e}")),
        }
        let elapsed = last_tick.elapsed();
        if elapsed >= Duration::from_secs(1) {
            let now_us = palisade_core::Timestamp::now().as_micros();
            builder.expire(now_us);
            send(&mut builder, status);
            let (kernel, ifdrop) = cap
                .stats()
                .map(|s| (u64::from(s.dropped), u64::from(s.if_dropped)))
                .unwrap_or((0, 0));
            m_kernel.add((kernel + ifdrop).saturating_sub(kernel_seen));
            kernel_seen = kernel_seen.max(kernel + ifdrop);
            let rate = tick_packets as f64 / elapsed.as_secs_f64();
            set(status, |s| {
                s.packets += tick_packets;
                s.packets_per_s = rate;
                s.kernel_drops = kernel;
                s.interface_drops = ifdrop;
            });
            tick_packets = 0;
            last_tick = Instant::now();
        }
    }
    builder.finish();
    send(&mut builder, status);
    set(status, |s| s.packets += tick_packets);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use palisade_core::ShutdownTrigger;
    use palisade_store::FlowQuery;

    /// Captures on the loopback interface (needs CAP_NET_RAW: the test suite runs as
    /// root) while UDP datagrams go to a local port: the flow is stored, the status
    /// counts packets, and stopping ends the capture cleanly.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn capture_on_loopback_stores_the_flows_it_sees() {
        let dir = tempfile::tempdir().unwrap();
        let store = palisade_store::open("sqlite://", dir.path()).unwrap();
        store.migrate().await.unwrap();
        let receiver = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        let port = receiver.local_addr().unwrap().port();
        // No BPF filter: in this test's VM a kernel filter on `lo` delivered nothing
        // (libpcap itself, outside Palisade, too); flows are picked out by port below.
        let config = CaptureConfig {
            interface: "lo".into(),
            filter: None,
            snap_length: 2048,
            promiscuous: false,
            buffer_mib: 4,
            name: None,
        };
        let flows = FlowConfig {
            idle_timeout: palisade_core::duration::Span::from_secs(1),
            ..FlowConfig::default()
        };
        let trigger = ShutdownTrigger::new();
        let supervisor = Supervisor::new(trigger.subscribe());
        let tasks = start(
            &[config],
            &flows,
            store.clone(),
            None,
            None,
            None,
            &supervisor,
        );
        for _ in 0..50 {
            let up = super::super::statuses()
                .iter()
                .any(|s| s.interface == "lo" && s.state == "capturing");
            if up {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        // Each round a new sender (a new flow) sends a few datagrams; a flow ends after
        // its idle timeout (1 s, on the clock) and is stored.
        let mut stored = Vec::new();
        for _ in 0..60 {
            let sender = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
            for _ in 0..5 {
                sender.send_to(b"ping", ("127.0.0.1", port)).unwrap();
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
            stored = store
                .list_flows(&FlowQuery {
                    port: Some(port),
                    limit: 10,
                    ..FlowQuery::default()
                })
                .await
                .unwrap()
                .items;
            if !stored.is_empty() {
                break;
            }
        }
        let status = super::super::statuses()
            .into_iter()
            .find(|s| s.interface == "lo")
            .unwrap();
        assert_eq!(status.state, "capturing", "{status:?}");
        assert!(status.packets > 0, "{status:?}");
        assert!(!stored.is_empty(), "a UDP flow to port {port} was stored");
        let f = &stored[0].flow;
        assert_eq!((f.protocol.as_str(), f.dst_port), ("udp", port));
        assert!(f.orig_packets >= 1, "{f:?}");
        assert_eq!(f.source, "capture:lo");
        trigger.trigger();
        for t in tasks {
            tokio::time::timeout(Duration::from_secs(10), t)
                .await
                .unwrap()
                .unwrap();
        }
        let status = super::super::statuses()
            .into_iter()
            .find(|s| s.interface == "lo")
            .unwrap();
        assert_eq!(status.state, "stopped");
    }

    #[tokio::test]
    async fn a_bad_capture_filter_fails_with_the_filter_named() {
        let dir = tempfile::tempdir().unwrap();
        let store = palisade_store::open("sqlite://", dir.path()).unwrap();
        let config = CaptureConfig {
            interface: "lo".into(),
            filter: Some("port not-a-port".into()),
            snap_length: 2048,
            promiscuous: false,
            buffer_mib: 1,
            name: Some("bad-filter".into()),
        };
        let trigger = ShutdownTrigger::new();
        let supervisor = Supervisor::new(trigger.subscribe());
        let tasks = start(
            &[config],
            &FlowConfig::default(),
            store,
            None,
            None,
            None,
            &supervisor,
        );
        let mut failed = None;
        for _ in 0..50 {
            tokio::time::sleep(Duration::from_millis(100)).await;
            failed = super::super::statuses()
                .into_iter()
                .find(|s| s.error.as_deref().is_some_and(|e| e.contains("not-a-port")));
            if failed.is_some() {
                break;
            }
        }
        let status = failed.expect("a failed status naming the filter");
        assert_eq!(status.state, "failed");
        trigger.trigger();
        for t in tasks {
            tokio::time::timeout(Duration::from_secs(10), t)
                .await
                .unwrap()
                .unwrap();
        }
    }

    #[tokio::test]
    async fn a_capture_on_a_missing_interface_fails_with_a_reason_and_retries() {
        let dir = tempfile::tempdir().unwrap();
        let store = palisade_store::open("sqlite://", dir.path()).unwrap();
        let config = CaptureConfig {
            interface: "nonexistent9".into(),
            filter: None,
            snap_length: 2048,
            promiscuous: false,
            buffer_mib: 1,
            name: None,
        };
        let trigger = ShutdownTrigger::new();
        let supervisor = Supervisor::new(trigger.subscribe());
        let tasks = start(
            &[config],
            &FlowConfig::default(),
            store,
            None,
            None,
            None,
            &supervisor,
        );
        let mut status = CaptureStatus::default();
        for _ in 0..50 {
            tokio::time::sleep(Duration::from_millis(100)).await;
            status = super::super::statuses()
                .into_iter()
                .find(|s| s.interface == "nonexistent9")
                .unwrap();
            if status.state == "failed" {
                break;
            }
        }
        assert_eq!(status.state, "failed");
        assert!(
            status
                .error
                .as_deref()
                .unwrap_or("")
                .contains("nonexistent9"),
            "{status:?}"
        );
        trigger.trigger();
        for t in tasks {
            tokio::time::timeout(Duration::from_secs(10), t)
                .await
                .unwrap()
                .unwrap();
        }
    }
}

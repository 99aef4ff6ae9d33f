//! The one decision policy for a request, wherever it is seen: `/api/v1/check` (a
//! reverse proxy asking), the protecting proxy (the request itself), and the ingest
//! inspector (a stored log line, after the fact).
//!
//! The policy, in order:
//! 1. IP decisions (live fronts only): in block mode a client with a ban in force and
//!    no allow-list entry is refused without running the WAF; in detect-only mode the
//!    WAF still runs and the judgement carries the ban that would have applied.
//! 2. The signature engine inspects the request. When a request model is loaded
//!    ([`crate::fusion`]), its probability is fused with the rule score (`[models]`):
//!    the verdict's score and `blocked` are the fused ones, and the parts are kept in
//!    [`Judgement::fusion`] and the threat's evidence.
//!    When per-endpoint baselines are on ([`crate::baseline`], `[baselines]`), their
//!    deviation points join the score (capped per mode) and their explanations the
//!    threat; deviations strong enough alone are recorded as an anomaly threat.
//! 3. Over the threshold: block in block mode, detect in detect-only mode; a log line
//!    is always "detect" (nothing can be blocked any more).
//! 4. Any finding becomes a threat with its evidence, handed to the recorder: without
//!    waiting on the live fronts (a decision is never delayed by storage), waiting for
//!    room from the ingest inspector (ingest slows down rather than losing threats).

use std::sync::Arc;

use palisade_core::Timestamp;
use palisade_core::decision_set::BanInfo;
use palisade_core::threat::{Evidence, Threat};
pub use palisade_core::verdict::Action;
use palisade_core::verdict::Mode;
use palisade_detect::{Engine, HttpRequest, Verdict};

use crate::decisions::Decisions;
use crate::detection::Detection;
use crate::recorder::ThreatRecorder;

/// Where a request was seen.
#[derive(Debug, Clone, Copy)]
pub enum Front<'a> {
    /// A reverse proxy asking `/api/v1/check` (threats say `check`).
    Check,
    /// The protecting proxy with this configured name.
    Proxy(&'a str),
    /// A stored log event: inspected after the fact, so bans and the mode do not apply.
    Log {
        /// The event's source name.
        source: &'a str,
        /// The stored event's id.
        event_id: i64,
        /// When the request happened.
        ts: Timestamp,
    },
}

impl Front<'_> {
    fn source(&self) -> &str {
        match self {
            Front::Check => "check",
            Front::Proxy(name) => name,
            Front::Log { source, .. } => source,
        }
    }
}

/// The outcome of [`Guard::judge`].
#[derive(Debug, Clone)]
pub struct Judgement {
    /// What to do.
    pub action: Action,
    /// The engine's verdict; `None` when a ban refused the request before inspection.
    pub verdict: Option<Verdict>,
    /// The ban in force against the client (in detect-only mode: the one that would
    /// have applied).
    pub ban: Option<BanInfo>,
    /// The blocking threshold in force.
    pub threshold: u32,
    /// The rule score and model probability behind the verdict, when a model is loaded.
    pub fusion: Option<palisade_models::Fused>,
    /// The per-endpoint baselines' part, when they are on.
    pub baseline: Option<crate::baseline::BaselinePart>,
}

/// The detection engine, the IP decisions and the threat recorder, behind one call.
#[derive(Clone)]
pub struct Guard {
    detection: Arc<Detection>,
    decisions: Option<Arc<Decisions>>,
    threats: ThreatRecorder,
    models: Option<(
        Arc<palisade_models::ModelSlot>,
        palisade_models::FusionPolicy,
    )>,
    baselines: Option<(
        Arc<palisade_models::Baselines>,
        palisade_models::BaselinePolicy,
    )>,
    flows: Option<Arc<palisade_models::flow::FlowScorer>>,
    predictions: Option<crate::predictions::PredictionTap>,
}

impl Guard {
    /// A guard; without `decisions` no IP decision is enforced.
    pub fn new(
        detection: Arc<Detection>,
        decisions: Option<Arc<Decisions>>,
        threats: ThreatRecorder,
    ) -> Guard {
        Guard {
            detection,
            decisions,
            threats,
            models: None,
            baselines: None,
            flows: None,
            predictions: None,
        }
    }

    /// The guard handing a record of every model prediction to `tap`
    /// ([`crate::predictions`], `[kafka_sink] predictions_topic`).
    pub fn with_predictions(mut self, tap: crate::predictions::PredictionTap) -> Guard {
        self.predictions = Some(tap);
        self
    }

    /// The guard with per-endpoint baselines judging (and learning from) every request.
    pub fn with_baselines(mut self, baselines: Arc<palisade_models::Baselines>) -> Guard {
        let policy = palisade_models::BaselinePolicy::from(baselines.config());
        self.baselines = Some((baselines, policy));
        self
    }

    /// The per-endpoint baselines, when they are on.
    pub fn baselines(&self) -> Option<&Arc<palisade_models::Baselines>> {
        self.baselines.as_ref().map(|(b, _)| b)
    }

    /// Tells the baselines the status the upstream answered a judged request with (the
    /// protecting proxy knows it only after the judgement), so that the endpoint's
    /// status mix is learnt from live traffic as well as from log lines. Only a request
    /// the baselines learnt teaches its status (an anomaly's 5xx is not normal), with
    /// the weight it was learnt with (a sampled request stands for several).
    pub fn answered(&self, judgement: &Judgement, status: u16) {
        if let (Some((baselines, _)), Some(part)) = (&self.baselines, &judgement.baseline)
            && part.observation.learnt_from
        {
            baselines.learn_status(&part.observation.endpoint, status, part.observation.weight);
        }
    }

    /// The guard with a request model fused into every judgement by `policy`.
    pub fn with_models(
        mut self,
        slot: Arc<palisade_models::ModelSlot>,
        policy: palisade_models::FusionPolicy,
    ) -> Guard {
        self.models = Some((slot, policy));
        self
    }

    /// The guard with the flow model judging flows from captures (the flow sinks of
    /// imports and live captures take it from here).
    pub fn with_flow_model(mut self, scorer: Arc<palisade_models::flow::FlowScorer>) -> Guard {
        self.flows = Some(scorer);
        self
    }

    /// The flow model's scorer, when it is configured.
    pub fn flow_model(&self) -> Option<&Arc<palisade_models::flow::FlowScorer>> {
        self.flows.as_ref()
    }

    /// The request model slot, when models are configured.
    pub fn models(&self) -> Option<&Arc<palisade_models::ModelSlot>> {
        self.models.as_ref().map(|(slot, _)| slot)
    }

    /// The swappable engine and mode.
    pub fn detection(&self) -> &Arc<Detection> {
        &self.detection
    }

    /// Where threats go.
    pub fn threats(&self) -> &ThreatRecorder {
        &self.threats
    }

    /// Step 1 of the policy alone, for a front that can refuse before it has read the
    /// request (the proxy, before the body): `Some` when a ban refuses `client`.
    pub fn refuse_banned(&self, client: std::net::IpAddr) -> Option<Judgement> {
        let (engine, mode) = self.detection.current();
        if mode != Mode::Block {
            return None;
        }
        let ban = self.decisions.as_ref()?.verdict(client)?;
        Some(Judgement {
            action: Action::Ban,
            verdict: None,
            ban: Some(ban),
            threshold: engine.config().threshold,
            fusion: None,
            baseline: None,
        })
    }

    /// Judges one request seen at `front`, recording any threat it raises.
    pub fn judge(&self, request: &HttpRequest, front: Front<'_>) -> Judgement {
        let (judgement, threat) = self.policy().assess(request, front);
        if let Some(threat) = threat {
            if matches!(front, Front::Log { .. }) {
                self.threats.record_blocking(threat);
            } else {
                self.threats.record(threat);
            }
        }
        judgement
    }

    /// The policy with the engine and mode in force now, read once: for judging many
    /// requests (a stored batch) without taking the engine's lock for each.
    pub fn policy(&self) -> Policy<'_> {
        let (engine, mode) = self.detection.current();
        Policy {
            engine,
            mode,
            decisions: self.decisions.as_deref(),
            // The policy in force for the model in force: a calibrated point travels
            // with its model file (and changes when the slot swaps it).
            model: self.models.as_ref().and_then(|(slot, policy)| {
                let model = slot.current()?;
                let policy = policy.for_model(&model.metadata);
                Some((model, policy))
            }),
            baselines: self.baselines.as_ref().map(|(b, p)| (b.as_ref(), *p)),
            predictions: self.predictions.as_ref(),
        }
    }
}

/// The decision policy with one engine and mode (see the module documentation).
pub struct Policy<'a> {
    engine: Engine,
    mode: Mode,
    decisions: Option<&'a Decisions>,
    model: Option<(Arc<palisade_models::Model>, palisade_models::FusionPolicy)>,
    baselines: Option<(
        &'a palisade_models::Baselines,
        palisade_models::BaselinePolicy,
    )>,
    predictions: Option<&'a crate::predictions::PredictionTap>,
}

impl Policy<'_> {
    /// Judges a request and builds the threat it raises, without recording it (the
    /// caller records it: [`Guard::judge`] at once, the ingest inspector in event
    /// order once a batch is judged).
    pub fn assess(&self, request: &HttpRequest, front: Front<'_>) -> (Judgement, Option<Threat>) {
        self.assess_with_status(request, front, None)
    }

    /// [`Policy::assess`] with the response status when it is known (a log line), for
    /// the baselines' status mix.
    pub fn assess_with_status(
        &self,
        request: &HttpRequest,
        front: Front<'_>,
        status: Option<u16>,
    ) -> (Judgement, Option<Threat>) {
        match self.inspect(request, front) {
            Inspection::Refused(judgement) => (judgement, None),
            Inspection::Inspected(inspected, parsed) => {
                let observation = self.baselines.map(|(baselines, _)| {
                    baselines.observe_parsed(
                        request,
                        parsed.as_ref(),
                        status,
                        crate::baseline::learnable(&inspected.verdict),
                    )
                });
                self.settle(
                    inspected,
                    observation,
                    &mut RequestAt::Given(request),
                    front,
                )
            }
        }
    }

    /// The per-endpoint baselines, when they are on: the one part of a judgement that
    /// reads and changes learnt state (their observation, before [`Policy::settle`]).
    pub(crate) fn baselines(&self) -> Option<&palisade_models::Baselines> {
        self.baselines.map(|(b, _)| b)
    }

    /// Steps 1 and 2 of the policy but the baselines: what reads no learnt state, so
    /// runs on any thread in any order. The engine's parse comes back with the rest
    /// when it is reusable, for the baselines' arguments.
    pub(crate) fn inspect(&self, request: &HttpRequest, front: Front<'_>) -> Inspection {
        let threshold = self.engine.config().threshold;
        let live = !matches!(front, Front::Log { .. });
        let ban = if live {
            request
                .client_ip
                .zip(self.decisions)
                .and_then(|(ip, d)| d.verdict(ip))
        } else {
            None
        };
        if ban.is_some() && self.mode == Mode::Block {
            return Inspection::Refused(Judgement {
                action: Action::Ban,
                verdict: None,
                ban,
                threshold,
                fusion: None,
                baseline: None,
            });
        }
        // The engine's parse is handed on to the baselines, which would otherwise parse
        // the request again for its arguments.
        let (mut verdict, parsed) = self.engine.inspect_parsed(request);
        // An advisory model changes no verdict: it is consulted only when the rules
        // found something, so that its opinion is recorded on the threat, and benign
        // requests do not pay for a second parse and a prediction.
        let fusion = self
            .model
            .as_ref()
            .filter(|(_, policy)| !policy.is_advisory() || !verdict.findings.is_empty())
            .map(|(model, policy)| {
                crate::fusion::apply(model, policy, (request, parsed.as_ref()), &mut verdict)
            });
        Inspection::Inspected(
            Inspected {
                verdict,
                fusion,
                ban,
                threshold,
                live,
            },
            parsed,
        )
    }

    /// Steps 2 (the baselines' part, from their `observation` of the request, `None`
    /// when they are off) to 4 of the policy: the verdict's final score, the action and
    /// the threat. Reads no learnt state either; the observation did. `request` is
    /// read only when a threat or a prediction is built.
    pub(crate) fn settle(
        &self,
        inspected: Inspected,
        observation: Option<palisade_models::Observation>,
        request: &mut RequestAt<'_>,
        front: Front<'_>,
    ) -> (Judgement, Option<Threat>) {
        let Inspected {
            mut verdict,
            fusion,
            ban,
            threshold,
            live,
        } = inspected;
        // Log lines and detect-only mode count the baseline part at its detect cap.
        let detect = !live || self.mode == Mode::Detect;
        let baseline = self
            .baselines
            .zip(observation)
            .map(|((_, policy), observation)| {
                crate::baseline::score(&policy, observation, detect, &mut verdict)
            });
        let inspected = match (verdict.blocked, live, self.mode) {
            (false, _, _) => Action::Allow,
            (true, true, Mode::Block) => Action::Block,
            (true, _, _) => Action::Detect,
        };
        // In detect-only mode a banned client is let through and reported.
        let action = if ban.is_some() {
            Action::Detect
        } else {
            inspected
        };
        // Each builder reads the request only when it builds a threat, so a judgement
        // that raises nothing rebuilds no stored request.
        let threat = crate::fusion::threat(
            request,
            &verdict,
            fusion.as_ref(),
            inspected,
            front.source(),
            self.model.as_ref().is_some_and(|(_, p)| p.is_advisory()),
        );
        let threat = match &baseline {
            Some(part) => crate::baseline::threat(
                threat,
                request,
                &verdict,
                part,
                fusion.as_ref().map_or(0, |f| f.model_points),
                inspected,
                front.source(),
            ),
            None => threat,
        }
        .map(|mut t| {
            if let Front::Log { event_id, ts, .. } = front {
                t.ts = ts;
                t.event_id = Some(event_id);
            }
            t
        });
        if let (Some(tap), Some(f), Some((model, _))) = (self.predictions, &fusion, &self.model) {
            tap.offer(prediction(
                request.get(),
                &front,
                model,
                f,
                &verdict,
                action,
                threat.as_ref(),
            ));
        }
        let judgement = Judgement {
            action,
            verdict: Some(verdict),
            ban,
            threshold,
            fusion,
            baseline,
        };
        (judgement, threat)
    }
}

/// What [`Policy::inspect`] gives.
pub(crate) enum Inspection {
    /// A ban refused the request before inspection: the whole judgement.
    Refused(Judgement),
    /// Inspected, the baselines' part still to come ([`Policy::settle`]), with the
    /// engine's parse when the baselines can reuse it.
    Inspected(Inspected, Option<palisade_detect::ParsedRequest>),
}

/// A judgement before the baselines' part: the engine's (and the model's) verdict.
pub(crate) struct Inspected {
    verdict: Verdict,
    fusion: Option<palisade_models::Fused>,
    ban: Option<BanInfo>,
    threshold: u32,
    live: bool,
}

impl Inspected {
    /// Whether the baselines may learn from the request ([`crate::baseline::learnable`]).
    pub(crate) fn learnable(&self) -> bool {
        crate::baseline::learnable(&self.verdict)
    }
}

/// The request a judgement is settled for: at hand, or rebuilt from its stored event
/// the first time it is read (the ingest inspector settles a judgement after the
/// request it inspected was refilled with the next one, and most judgements raise
/// nothing, so read nothing of it).
pub(crate) enum RequestAt<'a> {
    /// The request itself.
    Given(&'a HttpRequest),
    /// The stored event, and a buffer to rebuild the request in.
    Stored {
        /// The stored log event.
        event: &'a palisade_core::Event,
        /// Where the request is rebuilt.
        buffer: &'a mut HttpRequest,
        /// Whether `buffer` holds it already.
        filled: bool,
    },
}

impl RequestAt<'_> {
    /// The request.
    pub(crate) fn get(&mut self) -> &HttpRequest {
        match self {
            RequestAt::Given(request) => request,
            RequestAt::Stored {
                event,
                buffer,
                filled,
            } => {
                if !*filled {
                    // The inspector inspected this event: it is a request.
                    buffer.refill_from_log_event(event);
                    *filled = true;
                }
                buffer
            }
        }
    }
}

/// The record of one model prediction ([`crate::predictions`]).
fn prediction(
    request: &HttpRequest,
    front: &Front<'_>,
    model: &palisade_models::Model,
    fused: &palisade_models::Fused,
    verdict: &Verdict,
    action: Action,
    threat: Option<&Threat>,
) -> crate::predictions::PredictionRecord {
    let (ts, event_id) = match front {
        Front::Log { event_id, ts, .. } => (*ts, Some(*event_id)),
        _ => (threat.map_or_else(Timestamp::now, |t| t.ts), None),
    };
    crate::predictions::PredictionRecord {
        ts,
        model_version: model.metadata.model_version.clone(),
        probability: fused.probability,
        malicious: fused.probability >= model.metadata.threshold,
        class: fused.category.as_str().to_owned(),
        class_probability: fused.category_probability,
        rule_score: fused.rule_score,
        model_points: fused.model_points,
        score: verdict.score,
        decision: action.as_str().to_owned(),
        client_ip: request.client_ip,
        method: palisade_detect::text::first_chars(&request.method, 32),
        uri: palisade_detect::text::first_chars(&request.uri, 2048),
        source: front.source().to_owned(),
        event_id,
        threat: threat.map(|t| crate::predictions::PredictedThreat {
            category: t.category.clone(),
            score: t.score,
            decision: t.decision.as_str().to_owned(),
        }),
    }
}

/// Builds the threat a verdict with findings stands for; `source` says which front saw
/// the request (`check`, a proxy's name, an ingest source). The request is read only
/// when there is a finding.
pub(crate) fn threat_of(
    request: &mut RequestAt<'_>,
    verdict: &Verdict,
    decision: Action,
    source: &str,
) -> Option<Threat> {
    let top = verdict
        .findings
        .iter()
        .max_by_key(|f| (f.severity, std::cmp::Reverse(f.rule_id)))?;
    let request = request.get();
    let mut rule_ids: Vec<u32> = Vec::new();
    for f in &verdict.findings {
        if !rule_ids.contains(&f.rule_id) {
            rule_ids.push(f.rule_id);
        }
    }
    Some(Threat {
        rule_ids,
        evidence: verdict
            .findings
            .iter()
            .map(|f| Evidence {
                rule_id: f.rule_id,
                location: f.location.clone(),
                part: f.name_of_part.clone(),
                decoded_value: f.decoded_value.clone(),
                matched: f.matched.clone(),
            })
            .collect(),
        tags: tags_of(verdict),
        ..threat_about(
            request,
            source,
            decision,
            top.category.as_str().to_owned(),
            top.severity,
            verdict.score,
        )
    })
}

/// A threat about `request` with no rule, evidence or tag yet: the fields every kind
/// of threat a judgement raises (the rules', the model's, the baselines') fills alike,
/// the client, method and target bounded the same way.
pub(crate) fn threat_about(
    request: &HttpRequest,
    source: &str,
    decision: Action,
    category: String,
    severity: palisade_core::severity::Severity,
    score: u32,
) -> Threat {
    Threat {
        ts: Timestamp::now(),
        category,
        severity,
        score,
        rule_ids: Vec::new(),
        client_ip: request.client_ip,
        method: Some(palisade_detect::text::first_chars(&request.method, 32)),
        uri: Some(palisade_detect::text::first_chars(&request.uri, 2048)),
        source: source.to_owned(),
        event_id: None,
        decision,
        evidence: Vec::new(),
        tags: Vec::new(),
    }
}

/// Most tags kept on one threat, and the longest tag kept (characters).
const MAX_TAGS: usize = 64;
/// Tags are short identifiers; a longer one is cut rather than stored whole.
const MAX_TAG_CHARS: usize = 128;

/// The findings' tags, each once, in finding order, bounded.
fn tags_of(verdict: &Verdict) -> Vec<String> {
    let mut tags: Vec<String> = Vec::new();
    for tag in verdict.findings.iter().flat_map(|f| f.tags.iter()) {
        if tags.len() >= MAX_TAGS {
            break;
        }
        let tag = palisade_detect::text::first_chars(tag, MAX_TAG_CHARS);
        if !tag.is_empty() && !tags.contains(&tag) {
            tags.push(tag);
        }
    }
    tags
}

#[cfg(test)]
mod tests {
    use super::*;
    use palisade_models::file::{FORMAT_VERSION, Metadata};
    use palisade_models::linear::{LogisticHead, SoftmaxHead};
    use palisade_models::metrics::Confusion;
    use palisade_models::slot::ModelSource;
    use palisade_models::{
        Category, FeatureSettings, FusionPolicy, Graded, Model, ModelSlot, ModelsConfig,
        OperatingPoint, OperatingPointMode,
    };

    /// A model that says `p = 0.8` for every request (its only weight is the bias),
    /// with a calibrated point that gives 0.8 five points.
    fn calibrated_model(path: &std::path::Path) {
        let features = FeatureSettings {
            buckets_log2: 10,
            ..FeatureSettings::default()
        };
        let dim = features.dimension();
        let mut threat = vec![0.0; dim];
        threat[1 << 10] = 4f32.ln();
        let meta = Metadata {
            format_version: FORMAT_VERSION,
            model_version: "calibrated-test".into(),
            data_digest: "test".into(),
            training_data: vec![],
            generated_attacks: 0,
            generated_normal: 0,
            seed: 1,
            epochs: 1,
            features,
            classes: Category::ALL
                .iter()
                .map(|c| c.as_str().to_owned())
                .collect(),
            threshold: 0.5,
            held_out: None,
            is_real: false,
            threat_scale: 0.0,
            class_scale: 0.0,
            operating_point: Some(OperatingPoint {
                points: Graded {
                    from_probability: 0.6,
                    points_per_logit: 100.0,
                    max_points: 5,
                },
                threshold: 5,
                paranoia: 1,
                baseline_points: 5,
                report_points: 4,
                target_fpr: 0.0025,
                met_target: true,
                model_alone: true,
                description: "test".into(),
                validation: Confusion::default(),
                advisory: Confusion::default(),
                candidates: 1,
            }),
        };
        Model::new(
            meta,
            LogisticHead::from_weights(threat),
            SoftmaxHead::from_weights(vec![0.0; dim * 9], 9),
        )
        .save(path)
        .unwrap();
    }

    fn guard(path: &std::path::Path, mode: OperatingPointMode) -> Guard {
        let detection = Arc::new(Detection::builtin(Default::default(), Mode::Block).unwrap());
        let (recorder, _rx) = ThreatRecorder::channel(4);
        let config = ModelsConfig {
            operating_point: mode,
            ..ModelsConfig::default()
        };
        Guard::new(detection, None, recorder).with_models(
            Arc::new(ModelSlot::new(ModelSource::File(path.to_owned()))),
            FusionPolicy::from(&config),
        )
    }

    #[test]
    fn a_calibrated_model_tips_a_request_the_advisory_one_does_not() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("m.pmodel");
        calibrated_model(&path);
        let request = HttpRequest {
            method: "GET".into(),
            uri: "/products?page=2".into(),
            ..Default::default()
        };
        let (fixed, threat) = guard(&path, OperatingPointMode::Fixed)
            .policy()
            .assess(&request, Front::Check);
        assert_eq!(fixed.action, Action::Allow);
        assert!(threat.is_none());
        let (calibrated, threat) = guard(&path, OperatingPointMode::Calibrated)
            .policy()
            .assess(&request, Front::Check);
        assert_eq!(calibrated.action, Action::Block);
        let fused = calibrated.fusion.unwrap();
        assert!(fused.calibrated && fused.model_points == 5, "{fused:?}");
        let threat = threat.unwrap();
        assert!(
            threat
                .evidence
                .iter()
                .any(|e| e.matched.contains("calibrated operating point")),
            "{threat:?}"
        );
        // A log line goes through the same policy.
        let (logged, _) = guard(&path, OperatingPointMode::Calibrated)
            .policy()
            .assess(
                &request,
                Front::Log {
                    source: "access",
                    event_id: 1,
                    ts: Timestamp::now(),
                },
            );
        assert_eq!(logged.action, Action::Detect);
    }
}

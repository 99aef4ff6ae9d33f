//! Requests the proxy refuses because they cannot be inspected or forwarded safely as
//! sent, whatever the detection mode: a request target or head hyper's parser refuses,
//! a body whose chunked framing is broken, a protocol upgrade that announces a body (a request-smuggling shape), a body that is
//! not valid in its content coding, a decompression bomb.
//!
//! Each is recorded as a threat, so an operator sees what was refused and why: the
//! refusal is its first piece of evidence (rule ids 9751xx, the proxy's own protocol
//! checks), followed by whatever the engine finds in what could be read, judged through
//! the [`Guard`]'s policy like any request. The decision is `block`: the request was
//! refused.

use palisade_core::Timestamp;
use palisade_core::severity::Severity;
use palisade_core::threat::{Evidence, Threat};
use palisade_core::verdict::Action;
use palisade_detect::HttpRequest;
use palisade_pipeline::{Front, Guard};

/// Why the proxy refused a request it could not inspect or forward as sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// The request target has characters hyper's HTTP parser refuses (`"`, `<`, `>`,
    /// a backtick, `{`, … outside what RFC 3986 allows); the proxy answered 400.
    UnparsableTarget {
        /// The refused characters, each once.
        characters: String,
    },
    /// hyper's parser refused the head for its framing or syntax (conflicting lengths,
    /// a transfer coding it will not read, an invalid header name, a folded line, an
    /// unknown version); the proxy answered 400.
    MalformedHead {
        /// hyper's reason.
        reason: String,
    },
    /// The body's chunked framing is broken (a chunk size that is not hex, too long, or
    /// data that does not end where the size says): servers would split it differently.
    BrokenChunking {
        /// What the body reader said.
        reason: String,
    },
    /// A protocol upgrade (WebSocket handshake) with `Content-Length` or
    /// `Transfer-Encoding`: forwarding it would let the body be read as the next
    /// request on the upstream connection.
    UpgradeWithBody,
    /// The body is not valid in the content coding it claims.
    CorruptCoding {
        /// What the decoder said.
        reason: String,
    },
    /// The body expands past the decompression ratio limit.
    DecompressionBomb {
        /// What was found.
        reason: String,
    },
}

impl Refusal {
    /// The proxy's rule id for the refusal.
    pub fn rule_id(&self) -> u32 {
        match self {
            Refusal::UnparsableTarget { .. } => 975100,
            Refusal::CorruptCoding { .. } => 975110,
            Refusal::DecompressionBomb { .. } => 975120,
            Refusal::UpgradeWithBody => 975130,
            Refusal::MalformedHead { .. } => 975140,
            Refusal::BrokenChunking { .. } => 975150,
        }
    }

    /// A short description, for logs.
    pub fn name(&self) -> &'static str {
        match self {
            Refusal::UnparsableTarget { .. } => "request target the HTTP parser refuses",
            Refusal::CorruptCoding { .. } => "body not valid in its content coding",
            Refusal::DecompressionBomb { .. } => "compressed body over the decompression ratio",
            Refusal::UpgradeWithBody => "protocol upgrade announcing a body",
            Refusal::MalformedHead { .. } => "request head the HTTP parser refuses",
            Refusal::BrokenChunking { .. } => "body with broken chunked framing",
        }
    }

    fn evidence(&self, request: &HttpRequest) -> Evidence {
        let header = |name: &str| {
            request
                .headers
                .iter()
                .filter(|(k, _)| k.eq_ignore_ascii_case(name))
                .map(|(k, v)| format!("{k}: {v}"))
                .collect::<Vec<_>>()
                .join("; ")
        };
        let (location, part, value, matched) = match self {
            Refusal::UnparsableTarget { characters } => (
                "uri_raw",
                String::new(),
                request.uri.clone(),
                characters.clone(),
            ),
            Refusal::UpgradeWithBody => (
                "header",
                "upgrade".to_owned(),
                header("upgrade"),
                [header("content-length"), header("transfer-encoding")]
                    .into_iter()
                    .filter(|h| !h.is_empty())
                    .collect::<Vec<_>>()
                    .join("; "),
            ),
            Refusal::MalformedHead { reason } => (
                "anomaly",
                "head".to_owned(),
                format!("{} {} {}", request.method, request.uri, request.protocol),
                reason.clone(),
            ),
            Refusal::BrokenChunking { reason } => (
                "body",
                "transfer-encoding".to_owned(),
                header("transfer-encoding"),
                reason.clone(),
            ),
            Refusal::CorruptCoding { reason } | Refusal::DecompressionBomb { reason } => (
                "body",
                "content-encoding".to_owned(),
                header("content-encoding"),
                reason.clone(),
            ),
        };
        Evidence {
            rule_id: self.rule_id(),
            location: location.to_owned(),
            part,
            decoded_value: value.chars().take(500).collect(),
            matched: matched.chars().take(200).collect(),
        }
    }
}

/// Records the threat a refused request stands for and returns the verdict kept with
/// its event: `ban` when the client is banned (no threat: the ban explains it), else
/// `block`.
pub fn record(guard: &Guard, request: &HttpRequest, proxy: &str, refusal: &Refusal) -> Action {
    let (judgement, found) = guard.policy().assess(request, Front::Proxy(proxy));
    if judgement.action == Action::Ban {
        return Action::Ban;
    }
    let engine_found = found.is_some();
    let mut threat = found.unwrap_or_else(|| Threat {
        tags: Vec::new(),
        ts: Timestamp::now(),
        category: "protocol".to_owned(),
        severity: Severity::Critical,
        score: 0,
        rule_ids: Vec::new(),
        client_ip: request.client_ip,
        method: Some(request.method.chars().take(32).collect()),
        uri: Some(request.uri.chars().take(2048).collect()),
        source: proxy.to_owned(),
        event_id: None,
        decision: Action::Block,
        evidence: Vec::new(),
    });
    threat.rule_ids.insert(0, refusal.rule_id());
    threat.evidence.insert(0, refusal.evidence(request));
    threat.score = threat.score.saturating_add(Severity::Critical.points());
    threat.severity = Severity::Critical;
    threat.decision = Action::Block;
    tracing::info!(
        message = "Request refused: it cannot be inspected or forwarded as sent.",
        proxy = %proxy,
        client = %request.client_ip.map(|c| c.to_string()).unwrap_or_default(),
        method = %request.method,
        path = %request.uri.split('?').next().unwrap_or("").chars().take(200).collect::<String>(),
        rule = refusal.rule_id(),
        reason = refusal.name(),
        also_matched = engine_found,
    );
    guard.threats().record(threat);
    Action::Block
}

//! The request model's share of a judgement: it fuses the model's probability into
//! the engine's verdict (policy in [`palisade_models::fusion`]) and records, on the
//! threat, which parts fired and their values.

use palisade_core::severity::Severity;
use palisade_core::threat::{Evidence, Threat};
use palisade_core::verdict::Action;
use palisade_detect::{HttpRequest, ParsedRequest, Verdict};
use palisade_models::{Fused, FusionPolicy, Model};

use crate::guard::{RequestAt, threat_about, threat_of};

/// The rule id the model's evidence carries (no rule has id 0).
pub const MODEL_EVIDENCE_ID: u32 = 0;

/// Scores `request` with `model` and rewrites the verdict's score and `blocked` to
/// the fused ones; returns the parts. `parsed` is the engine's parse of it when
/// reusable (no second parse).
pub fn apply(
    model: &Model,
    policy: &FusionPolicy,
    (request, parsed): (&HttpRequest, Option<&ParsedRequest>),
    verdict: &mut Verdict,
) -> Fused {
    let p = model.predict_parsed(request, parsed);
    let fused = policy.fuse(verdict.score, verdict.threshold, &p);
    verdict.score = fused.score;
    verdict.blocked = fused.blocked;
    fused
}

/// The threat a judgement raises: the rules' threat with the model's evidence added
/// when the model contributed or is advisory (`advisory`), or a model-only threat
/// when the model alone blocked. The request is read only when a threat is built.
pub(crate) fn threat(
    request: &mut RequestAt<'_>,
    verdict: &Verdict,
    fused: Option<&Fused>,
    decision: Action,
    source: &str,
    advisory: bool,
) -> Option<Threat> {
    let rules = threat_of(request, verdict, decision, source);
    // The model's evidence goes on a threat when it added points, blocked alone, or
    // is advisory (its opinion on what the rules found is the point of running it).
    let Some(f) = fused.filter(|f| f.model_points > 0 || f.blocked_by_model_alone || advisory)
    else {
        return rules;
    };
    let evidence = Evidence {
        rule_id: MODEL_EVIDENCE_ID,
        location: "model".to_owned(),
        part: "http threat detector".to_owned(),
        decoded_value: format!(
            "probability {:.4}, class {} ({:.2})",
            f.probability,
            f.category.as_str(),
            f.category_probability
        ),
        matched: format!(
            "rules {} + model {} = {}{}{}",
            f.rule_score,
            f.model_points,
            f.score,
            if f.calibrated {
                " (calibrated operating point)"
            } else {
                ""
            },
            if f.blocked_by_model_alone {
                " (model alone over block_probability)"
            } else {
                ""
            }
        ),
    };
    match rules {
        Some(mut t) => {
            t.score = f.score;
            t.evidence.push(evidence);
            Some(t)
        }
        // The model's points (calibrated, or a `model_weight` at the threshold) or its
        // `block_probability` blocked what the rules found nothing in: a model threat.
        None if f.blocked => Some(Threat {
            evidence: vec![evidence],
            ..threat_about(
                request.get(),
                source,
                decision,
                f.category.as_str().to_owned(),
                Severity::Warning,
                f.score,
            )
        }),
        None => None,
    }
}

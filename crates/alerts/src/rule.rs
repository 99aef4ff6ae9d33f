//! Alert rules: which threats a rule takes (minimum severity, categories, sources), how
//! it groups them (a key built from chosen fields, and a window) and where its
//! notifications go. Parsed once from the stored JSON spec into a [`Rule`], so the
//! stage's per-threat work is comparisons only.

use std::fmt::Write as _;

use palisade_core::duration::Span;
use palisade_core::severity::Severity;
use palisade_core::threat::Threat;
use serde::{Deserialize, Serialize};

/// A field a rule groups threats by.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum GroupField {
    /// The client address.
    ClientIp,
    /// The threat category.
    Category,
    /// Where the threat was seen (a log source, a proxy, `check`).
    Source,
    /// The first rule id that matched.
    RuleId,
    /// The request path (without query).
    Path,
}

impl GroupField {
    const fn name(self) -> &'static str {
        match self {
            GroupField::ClientIp => "client_ip",
            GroupField::Category => "category",
            GroupField::Source => "source",
            GroupField::RuleId => "rule_id",
            GroupField::Path => "path",
        }
    }
}

/// A rule as the API takes and shows it (stored as JSON).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RuleSpec {
    /// Least severity a threat needs.
    #[serde(default = "default_min_severity")]
    #[schema(value_type = String)]
    pub min_severity: Severity,
    /// Threat categories taken (empty: every category).
    #[serde(default)]
    pub categories: Vec<String>,
    /// Sources taken (empty: every source).
    #[serde(default)]
    pub sources: Vec<String>,
    /// Fields whose values make the group key (empty: one group for the rule).
    #[serde(default = "default_group_by")]
    pub group_by: Vec<GroupField>,
    /// How long after resolution a group still reopens its alert (and a dismissed
    /// alert absorbs its group).
    #[serde(default = "default_window")]
    #[schema(value_type = String, example = "10m")]
    pub window: Span,
    /// Channel ids notified (empty: every enabled channel).
    #[serde(default)]
    pub channels: Vec<i64>,
    /// Overrides `[alerts] group_wait`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<String>)]
    pub group_wait: Option<Span>,
    /// Overrides `[alerts] group_interval`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<String>)]
    pub group_interval: Option<Span>,
    /// Overrides `[alerts] repeat_interval`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<String>)]
    pub repeat_interval: Option<Span>,
}

fn default_min_severity() -> Severity {
    Severity::Warning
}

fn default_group_by() -> Vec<GroupField> {
    vec![GroupField::ClientIp, GroupField::Category]
}

fn default_window() -> Span {
    Span::from_secs(600)
}

/// Why a rule spec was refused: the field and what is wrong.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {message}")]
pub struct RuleError {
    /// The JSON field.
    pub field: &'static str,
    /// What is wrong.
    pub message: String,
}

impl RuleSpec {
    /// Checks the limits a spec must keep.
    pub fn validate(&self) -> Result<(), RuleError> {
        let err = |field, message: &str| {
            Err(RuleError {
                field,
                message: message.to_owned(),
            })
        };
        let list_ok =
            |l: &[String]| l.len() <= 64 && l.iter().all(|s| !s.is_empty() && s.len() <= 128);
        if !list_ok(&self.categories) {
            return err("categories", "at most 64 names of 1 to 128 characters");
        }
        if !list_ok(&self.sources) {
            return err("sources", "at most 64 names of 1 to 128 characters");
        }
        if self.group_by.len() > 5 {
            return err("group_by", "at most 5 fields");
        }
        if self.channels.len() > 64 || self.channels.iter().any(|c| *c <= 0) {
            return err("channels", "at most 64 positive channel ids");
        }
        let s = Span::from_secs;
        if !self.window.within(s(1), s(30 * 86_400)) {
            return err("window", "must be between 1s and 30d");
        }
        if self.group_wait.is_some_and(|w| !w.within(s(0), s(3600))) {
            return err("group_wait", "must be between 0s and 1h");
        }
        if self
            .group_interval
            .is_some_and(|w| !w.within(s(1), s(86_400)))
        {
            return err("group_interval", "must be between 1s and 1d");
        }
        if self
            .repeat_interval
            .is_some_and(|w| !w.within(s(60), s(30 * 86_400)))
        {
            return err("repeat_interval", "must be between 1m and 30d");
        }
        Ok(())
    }

    /// Whether a threat is one this rule takes.
    pub fn matches(&self, t: &Threat) -> bool {
        t.severity >= self.min_severity
            && (self.categories.is_empty() || self.categories.contains(&t.category))
            && (self.sources.is_empty() || self.sources.contains(&t.source))
    }

    /// The group key of a threat: `field=value` pairs in the rule's order (`-` for a
    /// missing value), so it reads well in the API and notifications.
    pub fn group_key(&self, t: &Threat) -> String {
        let mut key = String::new();
        for (i, f) in self.group_by.iter().enumerate() {
            if i > 0 {
                key.push(' ');
            }
            let _ = write!(key, "{}=", f.name());
            match f {
                GroupField::ClientIp => match t.client_ip {
                    Some(ip) => {
                        let _ = write!(key, "{ip}");
                    }
                    None => key.push('-'),
                },
                GroupField::Category => key.push_str(&t.category),
                GroupField::Source => key.push_str(&t.source),
                GroupField::RuleId => match t.rule_ids.first() {
                    Some(id) => {
                        let _ = write!(key, "{id}");
                    }
                    None => key.push('-'),
                },
                GroupField::Path => {
                    let uri = t.uri.as_deref().unwrap_or("-");
                    let path = uri.split(['?', '#']).next().unwrap_or(uri);
                    key.extend(path.chars().take(200));
                }
            }
        }
        if key.is_empty() {
            key.push_str("all");
        }
        key
    }
}

/// The rules a new install starts with: every serious threat from one client per
/// category, and every critical one on its own (a critical finding should never wait
/// behind a group).
pub fn builtin_rules() -> Vec<(String, RuleSpec)> {
    vec![
        (
            "Attacks by client and category".to_owned(),
            RuleSpec {
                min_severity: Severity::Error,
                categories: Vec::new(),
                sources: Vec::new(),
                group_by: default_group_by(),
                window: default_window(),
                channels: Vec::new(),
                group_wait: None,
                group_interval: None,
                repeat_interval: None,
            },
        ),
        (
            "Critical findings".to_owned(),
            RuleSpec {
                min_severity: Severity::Critical,
                categories: Vec::new(),
                sources: Vec::new(),
                group_by: vec![GroupField::Category, GroupField::RuleId],
                window: Span::from_secs(3600),
                channels: Vec::new(),
                group_wait: Some(Span::from_secs(1)),
                group_interval: None,
                repeat_interval: None,
            },
        ),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;
    use palisade_core::Timestamp;
    use palisade_core::verdict::Action;

    fn threat(sev: Severity, cat: &str, ip: Option<&str>) -> Threat {
        Threat {
            tags: Vec::new(),
            ts: Timestamp(0),
            category: cat.into(),
            severity: sev,
            score: 5,
            rule_ids: vec![942100],
            client_ip: ip.map(|i| i.parse().unwrap()),
            method: Some("GET".into()),
            uri: Some("/login?id=1".into()),
            source: "web".into(),
            event_id: None,
            decision: Action::Detect,
            evidence: Vec::new(),
        }
    }

    #[test]
    fn matching_takes_severity_categories_and_sources() {
        let spec: RuleSpec =
            serde_json::from_str(r#"{"min_severity":"error","categories":["sqli"]}"#).unwrap();
        assert!(spec.matches(&threat(Severity::Error, "sqli", None)));
        assert!(spec.matches(&threat(Severity::Critical, "sqli", None)));
        assert!(!spec.matches(&threat(Severity::Warning, "sqli", None)));
        assert!(!spec.matches(&threat(Severity::Error, "xss", None)));
        let only: RuleSpec = serde_json::from_str(r#"{"sources":["api"]}"#).unwrap();
        assert!(!only.matches(&threat(Severity::Error, "xss", None)));
    }

    #[test]
    fn group_keys_name_their_fields() {
        let spec: RuleSpec = serde_json::from_str("{}").unwrap();
        assert_eq!(
            spec.group_key(&threat(Severity::Error, "sqli", Some("203.0.113.7"))),
            "client_ip=203.0.113.7 category=sqli"
        );
        assert_eq!(
            spec.group_key(&threat(Severity::Error, "sqli", None)),
            "client_ip=- category=sqli"
        );
        let spec: RuleSpec =
            serde_json::from_str(r#"{"group_by":["path","rule_id","source"]}"#).unwrap();
        assert_eq!(
            spec.group_key(&threat(Severity::Error, "sqli", None)),
            "path=/login rule_id=942100 source=web"
        );
        let spec: RuleSpec = serde_json::from_str(r#"{"group_by":[]}"#).unwrap();
        assert_eq!(spec.group_key(&threat(Severity::Error, "x", None)), "all");
    }

    #[test]
    fn bad_specs_name_the_field() {
        let spec: RuleSpec = serde_json::from_str(r#"{"window":"90d"}"#).unwrap();
        assert_eq!(spec.validate().unwrap_err().field, "window");
        let spec: RuleSpec = serde_json::from_str(r#"{"channels":[0]}"#).unwrap();
        assert_eq!(spec.validate().unwrap_err().field, "channels");
        assert!(serde_json::from_str::<RuleSpec>(r#"{"bogus":1}"#).is_err());
        for (_, r) in builtin_rules() {
            r.validate().unwrap();
            let back: RuleSpec = serde_json::from_value(serde_json::to_value(&r).unwrap())
                .unwrap_or_else(|e| panic!("{e}: {}", serde_json::to_value(&r).unwrap()));
            assert_eq!(back, r);
        }
    }
}

//! CycloneDX JSON (1.2 – 1.6): `components`, nested components included, with their
//! `purl` and `cpe`; an `operating-system` component (1.4+) names the platform.

use palisade_core::vuln::{Software, SoftwareSource};
use serde_json::Value;

use super::{InventoryError, item, platform};

/// How deep nested components are followed.
const MAX_DEPTH: usize = 16;

pub(super) fn parse(body: &[u8]) -> Result<(Vec<Software>, usize), InventoryError> {
    let doc: Value = serde_json::from_slice(body).map_err(|e| InventoryError::Invalid {
        format: "CycloneDX",
        why: e.to_string(),
    })?;
    if doc
        .get("bomFormat")
        .and_then(Value::as_str)
        .is_some_and(|f| f != "CycloneDX")
    {
        return Err(InventoryError::Invalid {
            format: "CycloneDX",
            why: "bomFormat is not CycloneDX".into(),
        });
    }
    let mut items = Vec::new();
    let mut skipped = 0;
    if let Some(list) = doc.get("components").and_then(Value::as_array) {
        walk(list, 0, &mut items, &mut skipped);
    }
    if let Some(c) = doc.get("metadata").and_then(|m| m.get("component"))
        && c.get("type").and_then(Value::as_str) == Some("operating-system")
    {
        walk(std::slice::from_ref(c), 0, &mut items, &mut skipped);
    }
    Ok((items, skipped))
}

fn walk(list: &[Value], depth: usize, items: &mut Vec<Software>, skipped: &mut usize) {
    if depth > MAX_DEPTH {
        *skipped += list.len();
        return;
    }
    for c in list {
        let s = |k: &str| c.get(k).and_then(Value::as_str);
        match (s("name"), s("type")) {
            (Some(name), Some("operating-system")) => {
                match platform(
                    SoftwareSource::Cyclonedx,
                    name,
                    s("version").unwrap_or_default(),
                ) {
                    Some(p) => items.push(p),
                    None => *skipped += 1,
                }
            }
            (Some(name), _) if !name.trim().is_empty() => {
                let name = match s("group") {
                    Some(g) if !g.is_empty() && s("purl").is_none() => format!("{g}:{name}"),
                    _ => name.to_owned(),
                };
                items.push(item(
                    SoftwareSource::Cyclonedx,
                    &name,
                    s("version").unwrap_or_default(),
                    s("purl"),
                    s("cpe"),
                    None,
                ));
            }
            _ => *skipped += 1,
        }
        if let Some(nested) = c.get("components").and_then(Value::as_array) {
            walk(nested, depth + 1, items, skipped);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nested_components_and_platforms() {
        let (items, skipped) = parse(
            br#"{"bomFormat": "CycloneDX", "specVersion": "1.5",
                 "metadata": {"tools": {"components": []}},
                 "components": [
                   {"type": "library", "group": "org.apache.logging.log4j", "name": "log4j-core",
                    "version": "2.14.1",
                    "purl": "pkg:maven/org.apache.logging.log4j/log4j-core@2.14.1",
                    "components": [{"type": "library", "name": "inner", "version": "1"}]},
                   {"type": "operating-system", "name": "debian", "version": "12.4"},
                   {"type": "library", "version": "1"},
                   {"type": "library", "group": "g", "name": "n", "version": "2"}
                 ]}"#,
        )
        .unwrap();
        assert_eq!(skipped, 1);
        let names: Vec<&str> = items.iter().map(|i| i.name.as_str()).collect();
        assert_eq!(names, ["log4j-core", "inner", "debian", "g:n"]);
        assert_eq!(
            items[2].cpe.as_deref(),
            Some("cpe:2.3:o:debian:debian_linux:12:*:*:*:*:*:*:*")
        );
        assert!(parse(br#"{"bomFormat": "SPDX"}"#).is_err());
        assert!(parse(b"{").is_err());
    }
}

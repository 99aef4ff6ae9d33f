//! SPDX JSON (2.2, 2.3): `packages` with `versionInfo` and their purl and CPE external
//! references (`PACKAGE-MANAGER`/`purl`, `SECURITY`/`cpe23Type`).

use palisade_core::vuln::{Software, SoftwareSource};
use serde_json::Value;

use super::{InventoryError, item};

pub(super) fn parse(body: &[u8]) -> Result<(Vec<Software>, usize), InventoryError> {
    let doc: Value = serde_json::from_slice(body).map_err(|e| InventoryError::Invalid {
        format: "SPDX",
        why: e.to_string(),
    })?;
    let mut items = Vec::new();
    let mut skipped = 0;
    for p in doc
        .get("packages")
        .and_then(Value::as_array)
        .map_or(&[][..], Vec::as_slice)
    {
        let s = |k: &str| p.get(k).and_then(Value::as_str);
        let Some(name) = s("name").filter(|n| !n.trim().is_empty()) else {
            skipped += 1;
            continue;
        };
        let version = s("versionInfo")
            .filter(|v| !matches!(*v, "NOASSERTION" | "NONE" | "UNKNOWN"))
            .unwrap_or_default();
        let refs = p
            .get("externalRefs")
            .and_then(Value::as_array)
            .map_or(&[][..], Vec::as_slice);
        let reference = |kind: &str| {
            refs.iter()
                .find(|r| {
                    r.get("referenceType")
                        .and_then(Value::as_str)
                        .is_some_and(|t| t.eq_ignore_ascii_case(kind))
                })
                .and_then(|r| r.get("referenceLocator").and_then(Value::as_str))
        };
        let cpe = reference("cpe23Type").or_else(|| reference("cpe22Type"));
        items.push(item(
            SoftwareSource::Spdx,
            name,
            version,
            reference("purl"),
            cpe,
            None,
        ));
    }
    Ok((items, skipped))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn packages_with_references() {
        let (items, skipped) = parse(
            br#"{"spdxVersion": "SPDX-2.3", "packages": [
                 {"name": "github.com/ProtonMail/go-crypto", "versionInfo": "v1.1.6",
                  "externalRefs": [
                    {"referenceCategory": "SECURITY", "referenceType": "cpe23Type",
                     "referenceLocator": "cpe:2.3:a:ProtonMail:go-crypto:v1.1.6:*:*:*:*:*:*:*"},
                    {"referenceCategory": "PACKAGE-MANAGER", "referenceType": "purl",
                     "referenceLocator": "pkg:golang/github.com/ProtonMail/go-crypto@v1.1.6"}]},
                 {"name": "root", "versionInfo": "NOASSERTION"},
                 {"SPDXID": "x"}]}"#,
        )
        .unwrap();
        assert_eq!(skipped, 1);
        assert_eq!(items.len(), 2);
        assert_eq!(items[0].version, "v1.1.6");
        assert!(items[0].purl.as_deref().unwrap().starts_with("pkg:golang/"));
        assert!(items[0].cpe.is_some());
        assert_eq!(items[1].version, "");
    }
}

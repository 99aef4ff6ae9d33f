//! The IEEE OUI registry (MA-L assignments): the vendor behind a MAC's first three bytes.
//!
//! Read at run time from Debian's `ieee-data` package (`/usr/share/ieee-data/oui.csv`,
//! columns `Registry,Assignment,Organization Name,Organization Address`), so the
//! binary carries no copy that goes stale. When the file is absent the registry is empty:
//! devices get no vendor, and [`Oui::status`] says why (shown in health).

use std::collections::HashMap;
use std::path::Path;
use std::sync::{Arc, OnceLock};

/// Where Debian's `ieee-data` puts the registry.
pub const DEFAULT_OUI_PATH: &str = "/usr/share/ieee-data/oui.csv";

/// The registry.
#[derive(Debug, Default)]
pub struct Oui {
    vendors: HashMap<u32, Box<str>>,
    status: String,
}

impl Oui {
    /// Loads the registry from `path`; an unreadable file gives an empty registry whose
    /// status names the problem.
    pub fn load(path: &Path) -> Oui {
        match std::fs::read_to_string(path) {
            Ok(text) => {
                let vendors = parse(&text);
                let status = format!("{} vendors from {}", vendors.len(), path.display());
                Oui { vendors, status }
            }
            Err(e) => Oui {
                vendors: HashMap::new(),
                status: format!(
                    "no vendor names: cannot read {} ({e}); install Debian's ieee-data package",
                    path.display()
                ),
            },
        }
    }

    /// The registry at [`DEFAULT_OUI_PATH`], loaded once per process.
    pub fn shared() -> Arc<Oui> {
        static SHARED: OnceLock<Arc<Oui>> = OnceLock::new();
        SHARED
            .get_or_init(|| Arc::new(Oui::load(Path::new(DEFAULT_OUI_PATH))))
            .clone()
    }

    /// True when vendors can be named.
    pub fn is_loaded(&self) -> bool {
        !self.vendors.is_empty()
    }

    /// How many vendors were read, or why none were.
    pub fn status(&self) -> &str {
        &self.status
    }

    /// The vendor of a MAC; none for locally administered (often randomised) or
    /// multicast addresses, or an unassigned prefix.
    pub fn vendor(&self, mac: [u8; 6]) -> Option<&str> {
        if mac[0] & 0x03 != 0 {
            return None;
        }
        let prefix = u32::from(mac[0]) << 16 | u32::from(mac[1]) << 8 | u32::from(mac[2]);
        self.vendors.get(&prefix).map(|v| &**v)
    }
}

/// Parses the CSV (fields may be quoted, with `""` for a quote).
fn parse(text: &str) -> HashMap<u32, Box<str>> {
    let mut out = HashMap::new();
    for line in text.lines().skip(1) {
        let fields = split_csv(line, 3);
        let (Some(hex), Some(name)) = (fields.get(1), fields.get(2)) else {
            continue;
        };
        if hex.len() != 6 {
            continue;
        }
        if let Ok(prefix) = u32::from_str_radix(hex, 16) {
            let name = name.trim();
            if !name.is_empty() {
                out.insert(prefix, name.into());
            }
        }
    }
    out
}

/// The first `n` fields of a CSV line.
fn split_csv(line: &str, n: usize) -> Vec<String> {
    let mut fields = Vec::with_capacity(n);
    let mut cur = String::new();
    let mut quoted = false;
    let mut chars = line.chars().peekable();
    while let Some(c) = chars.next() {
        match (c, quoted) {
            ('"', true) if chars.peek() == Some(&'"') => {
                cur.push('"');
                chars.next();
            }
            ('"', _) => quoted = !quoted,
            (',', false) => {
                fields.push(std::mem::take(&mut cur));
                if fields.len() == n {
                    return fields;
                }
            }
            (c, _) => cur.push(c),
        }
    }
    fields.push(cur);
    fields
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vendors_by_prefix_and_a_missing_file_degrades() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("oui.csv");
        std::fs::write(
            &path,
            "Registry,Assignment,Organization Name,Organization Address\n\
             MA-L,001132,Synology Incorporated,\"3F., No.106, Chang An W. Rd. Taipei TW 103\"\n\
             MA-L,F01898,\"Apple, Inc.\",1 Infinite Loop Cupertino CA US 95014\n\
             MA-L,bad,Nobody,\n",
        )
        .unwrap();
        let oui = Oui::load(&path);
        assert!(oui.is_loaded());
        assert_eq!(
            oui.vendor([0x00, 0x11, 0x32, 0x17, 0x49, 0xf0]),
            Some("Synology Incorporated")
        );
        assert_eq!(oui.vendor([0xf0, 0x18, 0x98, 0, 0, 1]), Some("Apple, Inc."));
        assert_eq!(
            oui.vendor([0x02, 0x11, 0x32, 0, 0, 1]),
            None,
            "locally administered"
        );
        assert_eq!(oui.vendor([0x00, 0x00, 0x01, 0, 0, 1]), None);
        let missing = Oui::load(&dir.path().join("nope.csv"));
        assert!(!missing.is_loaded());
        assert!(
            missing.status().contains("ieee-data"),
            "{}",
            missing.status()
        );
    }
}

//! Software inventories as people upload them: CycloneDX JSON and SPDX JSON SBOMs,
//! `dpkg -l` / `dpkg-query -W` output and `rpm -qa` output (also CBL-Mariner's
//! `container-manifest-2`). The format is detected from the content; each parser is a
//! file of its own and returns the same [`Software`] items.
//!
//! Every parser is total: a line or component it cannot read is counted in
//! `skipped`, never a panic and never a failed upload, and text is capped (names at
//! [`MAX_NAME`] bytes, versions at [`MAX_VERSION`]) so that one odd document cannot
//! bloat the store. An inventory of packages also names the platform when it can (the
//! Debian release from `base-files`, the RPM distribution from its `*-release`
//! package): a platform is what CPE "running on" conditions check.

mod cyclonedx;
mod dpkg;
mod rpm;
mod spdx;

use palisade_core::vuln::{Software, SoftwareSource};

/// Longest name kept, in bytes.
pub const MAX_NAME: usize = 256;
/// Longest version kept, in bytes.
pub const MAX_VERSION: usize = 128;
/// Longest purl or CPE kept, in bytes.
pub const MAX_ID: usize = 512;

/// The formats understood.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// CycloneDX JSON (1.2 – 1.6).
    CycloneDx,
    /// SPDX JSON (2.2, 2.3).
    Spdx,
    /// `dpkg -l` or `dpkg-query -W` output.
    Dpkg,
    /// `rpm -qa` output or an RPM container manifest.
    Rpm,
}

impl Format {
    /// The source the items get.
    pub fn source(self) -> SoftwareSource {
        match self {
            Format::CycloneDx => SoftwareSource::Cyclonedx,
            Format::Spdx => SoftwareSource::Spdx,
            Format::Dpkg => SoftwareSource::Dpkg,
            Format::Rpm => SoftwareSource::Rpm,
        }
    }

    /// Reads a format name (`cyclonedx`, `spdx`, `dpkg`, `rpm`).
    pub fn parse(name: &str) -> Option<Format> {
        match name.trim().to_ascii_lowercase().as_str() {
            "cyclonedx" | "cdx" => Some(Format::CycloneDx),
            "spdx" => Some(Format::Spdx),
            "dpkg" | "deb" => Some(Format::Dpkg),
            "rpm" => Some(Format::Rpm),
            _ => None,
        }
    }
}

/// A parsed inventory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Inventory {
    /// The format found.
    pub format: Format,
    /// The software, in document order.
    pub items: Vec<Software>,
    /// Components or lines that could not be read.
    pub skipped: usize,
}

/// Why an inventory could not be read at all.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InventoryError {
    /// Nothing recognisable.
    #[error(
        "not a recognised inventory: expected CycloneDX or SPDX JSON, `dpkg -l` / `dpkg-query -W` output or `rpm -qa` output"
    )]
    Unrecognised,
    /// JSON that is not what its markers say.
    #[error("invalid {format} document: {why}")]
    Invalid {
        /// The format it claimed to be.
        format: &'static str,
        /// What is wrong.
        why: String,
    },
    /// More items than allowed.
    #[error("the inventory lists more than {0} items")]
    TooMany(usize),
}

/// Detects the format of `body`.
pub fn detect(body: &[u8]) -> Option<Format> {
    let text = String::from_utf8_lossy(&body[..body.len().min(64 * 1024)]);
    let head = text.trim_start_matches('\u{feff}').trim_start();
    if head.starts_with('{') {
        if head.contains("\"bomFormat\"") || head.contains("\"specVersion\"") {
            return Some(Format::CycloneDx);
        }
        if head.contains("\"spdxVersion\"") || head.contains("\"SPDXID\"") {
            return Some(Format::Spdx);
        }
        return None;
    }
    if dpkg::looks_like(head) {
        return Some(Format::Dpkg);
    }
    if rpm::looks_like(head) {
        return Some(Format::Rpm);
    }
    None
}

/// Parses `body` as `format` (or the detected one), with at most `max_items` items.
pub fn parse(
    body: &[u8],
    format: Option<Format>,
    max_items: usize,
) -> Result<Inventory, InventoryError> {
    let format = format
        .or_else(|| detect(body))
        .ok_or(InventoryError::Unrecognised)?;
    let (items, skipped) = match format {
        Format::CycloneDx => cyclonedx::parse(body)?,
        Format::Spdx => spdx::parse(body)?,
        Format::Dpkg => dpkg::parse(&String::from_utf8_lossy(body)),
        Format::Rpm => rpm::parse(&String::from_utf8_lossy(body)),
    };
    if items.len() > max_items {
        return Err(InventoryError::TooMany(max_items));
    }
    if items.is_empty() && skipped == 0 {
        return Err(InventoryError::Unrecognised);
    }
    Ok(Inventory {
        format,
        items,
        skipped,
    })
}

/// One `rpm -qa` line (`name-version-release.arch`) as a software item.
pub(crate) fn rpm_item(nvra: &str, source: SoftwareSource) -> Option<Software> {
    rpm::nvra_item(nvra, source)
}

/// `s` cut to at most `max` bytes on a character boundary, trimmed.
pub(crate) fn cap(s: &str, max: usize) -> String {
    let s = s.trim();
    if s.len() <= max {
        return s.to_owned();
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    s[..end].to_owned()
}

/// A software item with capped text.
pub(crate) fn item(
    source: SoftwareSource,
    name: &str,
    version: &str,
    purl: Option<&str>,
    cpe: Option<&str>,
    distro: Option<&str>,
) -> Software {
    let opt = |v: Option<&str>, max| v.map(|s| cap(s, max)).filter(|s| !s.is_empty());
    Software {
        source,
        name: cap(name, MAX_NAME),
        version: cap(version, MAX_VERSION),
        purl: opt(purl, MAX_ID),
        cpe: opt(cpe, MAX_ID),
        distro: opt(distro, 32),
    }
}

/// The platform an OS name and version describe, as a software item with its CPE
/// (`debian 12` → `cpe:2.3:o:debian:debian_linux:12`).
pub(crate) fn platform(source: SoftwareSource, os: &str, version: &str) -> Option<Software> {
    let os = os.trim().to_ascii_lowercase();
    let (vendor, product, version) = match os.as_str() {
        "debian" => ("debian", "debian_linux", major(version)),
        "ubuntu" => ("canonical", "ubuntu_linux", version.to_owned()),
        "rhel" | "redhat" | "red hat enterprise linux" => {
            ("redhat", "enterprise_linux", major(version))
        }
        "centos" => ("centos", "centos", major(version)),
        "fedora" => ("fedoraproject", "fedora", major(version)),
        "alpine" => ("alpinelinux", "alpine_linux", version.to_owned()),
        "euleros" => ("huawei", "euleros", version.to_owned()),
        "mariner" | "cbl-mariner" => ("microsoft", "cbl-mariner", version.to_owned()),
        "amazon" | "amzn" => ("amazon", "linux", version.to_owned()),
        "windows" => ("microsoft", "windows", String::new()),
        "freebsd" => ("freebsd", "freebsd", version.to_owned()),
        _ => return None,
    };
    let v = if version.is_empty() {
        "*".to_owned()
    } else {
        version.clone()
    };
    let cpe = crate::cpe::Cpe::new(crate::cpe::Part::OperatingSystem, vendor, product, &v);
    Some(item(
        source,
        &os,
        &version,
        None,
        Some(&cpe.to_string()),
        None,
    ))
}

/// The major version (`12.4+deb12u5` → `12`).
fn major(version: &str) -> String {
    version
        .trim()
        .split(|c: char| !c.is_ascii_digit())
        .next()
        .unwrap_or_default()
        .to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn detection() {
        assert_eq!(
            detect(br#"{"bomFormat": "CycloneDX"}"#),
            Some(Format::CycloneDx)
        );
        assert_eq!(
            detect(b"\xef\xbb\xbf {\"spdxVersion\": \"SPDX-2.3\"}"),
            Some(Format::Spdx)
        );
        assert_eq!(
            detect(b"ii  bash  5.2.15-2+b2  amd64  GNU Bourne Again SHell\n"),
            Some(Format::Dpkg)
        );
        assert_eq!(
            detect(b"bash\t5.2.15-2+b2\tamd64\tinstall ok installed\n"),
            Some(Format::Dpkg)
        );
        assert_eq!(
            detect(b"bzip2-1.0.6-28.eulerosv2r8.aarch64\nbash-4.4-1.el8.x86_64\n"),
            Some(Format::Rpm)
        );
        assert_eq!(detect(b"{\"hello\": 1}"), None);
        assert_eq!(detect(b"just some text\n"), None);
        assert_eq!(detect(b""), None);
        assert!(matches!(
            parse(b"nothing", None, 10),
            Err(InventoryError::Unrecognised)
        ));
    }

    #[test]
    fn caps_respect_characters() {
        assert_eq!(cap("  é\u{e9}xyz ", 3), "é");
        assert_eq!(cap("abc", 10), "abc");
    }
}

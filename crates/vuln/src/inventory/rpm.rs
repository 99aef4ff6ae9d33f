//! `rpm -qa` output (`name-version-release.arch`, one per line) and CBL-Mariner's
//! `container-manifest-2` (tab-separated `name`, `version-release`, …). The
//! distribution comes from the release tag (`el8` → rhel, `fc39` → fedora,
//! `eulerosv2r8` → euleros, `cm2` → mariner, `amzn2` → amazon) and the platform from the
//! `*-release` package.

use palisade_core::vuln::{Software, SoftwareSource};

use super::{item, platform};

const ARCHES: &[&str] = &[
    "x86_64", "aarch64", "noarch", "i686", "i386", "ppc64le", "s390x", "armv7hl", "src",
];

/// Whether the text looks like `rpm -qa` output.
pub(super) fn looks_like(head: &str) -> bool {
    let lines: Vec<&str> = head
        .lines()
        .filter(|l| !l.trim().is_empty())
        .take(20)
        .collect();
    !lines.is_empty()
        && lines.iter().all(|l| {
            let first = l.split('\t').next().unwrap_or_default();
            split_nvra(first).is_some() || (l.contains('\t') && l.split('\t').count() >= 2)
        })
}

/// `name-version-release.arch` → (name, version, release).
fn split_nvra(s: &str) -> Option<(&str, &str, &str)> {
    let s = s.trim();
    if s.is_empty() || s.contains(char::is_whitespace) {
        return None;
    }
    let s = match s.rsplit_once('.') {
        Some((rest, arch)) if ARCHES.contains(&arch) => rest,
        _ => s,
    };
    let (rest, release) = s.rsplit_once('-')?;
    let (name, version) = rest.rsplit_once('-')?;
    (!name.is_empty() && version.starts_with(|c: char| c.is_ascii_digit() || c == ':'))
        .then_some((name, version, release))
}

/// The distribution a release tag names.
fn distro_of(release: &str) -> &'static str {
    let r = release.to_ascii_lowercase();
    let tags = r.split(['.', '_']).collect::<Vec<_>>();
    let has = |p: &str| {
        tags.iter()
            .any(|t| t.starts_with(p) && t[p.len()..].chars().all(|c| c.is_ascii_digit()))
    };
    if r.contains("euleros") {
        "euleros"
    } else if has("el") {
        "rhel"
    } else if has("fc") {
        "fedora"
    } else if has("cm") {
        "mariner"
    } else if has("amzn") {
        "amazon"
    } else {
        "rpm"
    }
}

/// One `name-version-release.arch` as a software item.
pub(super) fn nvra_item(nvra: &str, source: SoftwareSource) -> Option<Software> {
    let (name, version, release) = split_nvra(nvra)?;
    Some(item(
        source,
        name,
        &format!("{version}-{release}"),
        None,
        None,
        Some(distro_of(release)),
    ))
}

pub(super) fn parse(text: &str) -> (Vec<Software>, usize) {
    let mut items = Vec::new();
    let mut skipped = 0;
    let mut platform_item: Option<Software> = None;
    for line in text.lines() {
        let l = line.trim();
        if l.is_empty() {
            continue;
        }
        let (name, version, release) = if l.contains('\t') {
            let f: Vec<&str> = l.split('\t').collect();
            match f.get(1).and_then(|vr| vr.rsplit_once('-')) {
                Some((v, r)) if !f[0].is_empty() => (f[0], v, r),
                _ => {
                    skipped += 1;
                    continue;
                }
            }
        } else {
            match split_nvra(l) {
                Some(nvr) => nvr,
                None => {
                    skipped += 1;
                    continue;
                }
            }
        };
        let distro = distro_of(release);
        items.push(item(
            SoftwareSource::Rpm,
            name,
            &format!("{version}-{release}"),
            None,
            None,
            Some(distro),
        ));
        if platform_item.is_none() {
            let os = match name {
                "redhat-release" | "redhat-release-server" => Some("rhel"),
                "centos-release" => Some("centos"),
                "fedora-release" | "fedora-release-common" => Some("fedora"),
                "euleros-release" => Some("euleros"),
                "mariner-release" => Some("mariner"),
                "system-release" if distro == "amazon" => Some("amazon"),
                _ => None,
            };
            platform_item = os.and_then(|os| platform(SoftwareSource::Rpm, os, version));
        }
    }
    items.extend(platform_item);
    (items, skipped)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_versions_and_releases() {
        assert_eq!(
            split_nvra("bind-license-9.11.4-10.P2.h7.eulerosv2r8.noarch"),
            Some(("bind-license", "9.11.4", "10.P2.h7.eulerosv2r8"))
        );
        assert_eq!(
            split_nvra("openssl-1:1.0.2k-21.el7_9.x86_64"),
            Some(("openssl", "1:1.0.2k", "21.el7_9"))
        );
        assert_eq!(split_nvra("nothing"), None);
        assert_eq!(distro_of("21.el7_9"), "rhel");
        assert_eq!(distro_of("3.fc39"), "fedora");
        assert_eq!(distro_of("12.cm2"), "mariner");
        assert_eq!(distro_of("1.h5.eulerosv2r8"), "euleros");
        assert_eq!(distro_of("1"), "rpm");
        let (items, skipped) = parse(
            "euleros-release-2.0SP8-12.eulerosv2r8.aarch64\nopenssh-7.8p1-3.h5.eulerosv2r8.aarch64\n???\n",
        );
        assert_eq!(skipped, 1);
        assert_eq!(items[1].version, "7.8p1-3.h5.eulerosv2r8");
        assert_eq!(items[1].distro.as_deref(), Some("euleros"));
        assert!(
            items[2]
                .cpe
                .as_deref()
                .unwrap()
                .starts_with("cpe:2.3:o:huawei:euleros:2.0sp8")
        );
        let (items, _) = parse("glibc\t2.35-2.cm2\t1653816591\tx\n");
        assert_eq!(
            (items[0].name.as_str(), items[0].version.as_str()),
            ("glibc", "2.35-2.cm2")
        );
    }
}

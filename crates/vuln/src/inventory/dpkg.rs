//! `dpkg -l` (fixed-width columns after a header) and `dpkg-query -W` TSV
//! (`Package<TAB>Version<TAB>Architecture<TAB>Status`). Only installed packages count
//! (`ii`, `hi`, and TSV rows whose status ends in `installed`). The Debian release
//! comes from `base-files`; a version with `ubuntu` in it makes the list Ubuntu's.

use palisade_core::vuln::{Software, SoftwareSource};

use super::{item, platform};

/// Whether the text looks like dpkg output.
pub(super) fn looks_like(head: &str) -> bool {
    if head.starts_with("Desired=") || head.starts_with("||/") {
        return true;
    }
    let lines: Vec<&str> = head
        .lines()
        .filter(|l| !l.trim().is_empty())
        .take(20)
        .collect();
    !lines.is_empty()
        && lines.iter().all(|l| {
            is_status_line(l)
                || (l.split('\t').count() >= 3 && l.contains("install"))
                || l.starts_with('|')
                || l.starts_with("+++")
        })
}

/// `ii  name version …`: a two- or three-letter status of dpkg's letters, then at
/// least name and version.
fn is_status_line(l: &str) -> bool {
    let mut words = l.split_whitespace();
    let status_ok = words.next().is_some_and(|s| {
        (2..=3).contains(&s.len()) && s.chars().all(|c| "uihrpncfwtUIHRPNCFWT".contains(c))
    });
    status_ok && words.count() >= 2
}

pub(super) fn parse(text: &str) -> (Vec<Software>, usize) {
    let mut rows: Vec<(String, String)> = Vec::new();
    let mut skipped = 0;
    for line in text.lines() {
        let l = line.trim_end();
        if l.is_empty() || l.starts_with("Desired=") || l.starts_with('|') || l.starts_with("+++") {
            continue;
        }
        if l.contains('\t') {
            let f: Vec<&str> = l.split('\t').collect();
            match f.as_slice() {
                [name, version, _arch, status, ..] if status.trim().ends_with("installed") => {
                    rows.push((name.trim().to_owned(), version.trim().to_owned()));
                }
                [name, version] | [name, version, _] if !name.is_empty() => {
                    rows.push((name.trim().to_owned(), version.trim().to_owned()));
                }
                [_, _, _, _, ..] => {} // not installed
                _ => skipped += 1,
            }
            continue;
        }
        let f: Vec<&str> = l.split_whitespace().collect();
        match f.as_slice() {
            [status, name, version, ..] if status.len() <= 3 => {
                if matches!(status.get(..2), Some("ii" | "hi")) {
                    rows.push(((*name).to_owned(), (*version).to_owned()));
                }
            }
            _ => skipped += 1,
        }
    }
    let distro = if rows.iter().any(|(_, v)| v.contains("ubuntu")) {
        "ubuntu"
    } else {
        "debian"
    };
    let mut items: Vec<Software> = Vec::with_capacity(rows.len() + 1);
    for (name, version) in &rows {
        // `libssl3:amd64` → `libssl3`.
        let name = name.split(':').next().unwrap_or(name);
        items.push(item(
            SoftwareSource::Dpkg,
            name,
            version,
            None,
            None,
            Some(distro),
        ));
        if name == "base-files" && distro == "debian" {
            items.extend(platform(SoftwareSource::Dpkg, "debian", version));
        }
    }
    if distro == "ubuntu" {
        items.extend(platform(SoftwareSource::Dpkg, "ubuntu", ""));
    }
    (items, skipped)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_forms() {
        let l = "Desired=Unknown/Install/Remove/Purge/Hold\n\
                 ||/ Name    Version          Architecture Description\n\
                 +++-=======-================-============-=====\n\
                 ii  base-files 12.4+deb12u11 amd64 Debian base system\n\
                 ii  libssl3:amd64 3.0.11-1~deb12u2 amd64 Secure Sockets Layer toolkit\n\
                 rc  oldpkg 1.0-1 amd64 removed\n\
                 garbage\n";
        assert!(looks_like(l));
        let (items, skipped) = parse(l);
        assert_eq!(skipped, 1);
        let names: Vec<&str> = items.iter().map(|i| i.name.as_str()).collect();
        assert_eq!(names, ["base-files", "debian", "libssl3"]);
        assert_eq!(items[2].distro.as_deref(), Some("debian"));
        assert_eq!(
            items[1].cpe.as_deref(),
            Some("cpe:2.3:o:debian:debian_linux:12:*:*:*:*:*:*:*")
        );
        let q = "openssh-server\t1:8.9p1-3ubuntu0.6\tamd64\tinstall ok installed\n\
                 gone\t1.0\tamd64\tdeinstall ok config-files\n";
        assert!(looks_like(q));
        let (items, _) = parse(q);
        assert_eq!(items.len(), 2, "the package and the Ubuntu platform");
        assert_eq!(items[0].distro.as_deref(), Some("ubuntu"));
    }
}

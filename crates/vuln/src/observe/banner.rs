//! Software named in what servers say about themselves: HTTP `Server` and
//! `X-Powered-By` answers, SSH identification banners, and syslog lines (package
//! installs by dpkg/apt/yum/dnf, sshd's own version at debug level).
//!
//! Only `product/version` tokens with a version that starts with a digit are taken
//! (`Apache/2.4.49`, `PHP/8.1.2`, `OpenSSL/1.1.1k`, `Jetty(9.4.43.v20210629)`); a
//! bare product (`nginx`, `Express`) names no version and so nothing to match. A
//! distribution in the comment (`(Ubuntu)`, `(Debian)`, `(Red Hat)`) or in the version
//! (`7.4.3-4ubuntu2.19`, `OpenSSH_8.9p1 Ubuntu-3ubuntu0.1`) marks the software as the
//! distribution's build (backported fixes: see `identify.rs`) and names the platform;
//! `(Win64)` names Windows as the platform.

use palisade_core::vuln::{Software, SoftwareSource};

use crate::inventory::{cap, item, platform};

/// Longest header or line looked at, in bytes.
const MAX_TEXT: usize = 1024;
/// Most products taken from one header.
const MAX_TOKENS: usize = 8;

/// Distribution names as they appear in banners → the distro tag.
const DISTROS: &[(&str, &str)] = &[
    ("ubuntu", "ubuntu"),
    ("debian", "debian"),
    ("red hat", "rhel"),
    ("rhel", "rhel"),
    ("centos", "centos"),
    ("fedora", "fedora"),
    ("rocky", "rhel"),
    ("almalinux", "rhel"),
    ("amazon", "amazon"),
    ("alpine", "alpine"),
    ("suse", "suse"),
    ("raspbian", "debian"),
];

fn distro_in(text: &str) -> Option<&'static str> {
    let lower = text.to_ascii_lowercase();
    DISTROS
        .iter()
        .find(|(needle, _)| lower.contains(needle))
        .map(|(_, tag)| *tag)
}

/// Products named in a `Server` or `X-Powered-By` value.
pub fn http_header(value: &str) -> Vec<Software> {
    let value = cap(value, MAX_TEXT);
    let mut items: Vec<Software> = Vec::new();
    // `Jetty(9.4.43)`: a version in parentheses glued to the name is `Jetty/9.4.43`.
    let chars: Vec<char> = value.chars().collect();
    let mut text = String::with_capacity(value.len());
    let mut i = 0;
    while i < chars.len() {
        let glued = chars[i] == '('
            && i > 0
            && chars[i - 1].is_ascii_alphanumeric()
            && chars.get(i + 1).is_some_and(char::is_ascii_digit);
        if glued {
            text.push('/');
            i += 1;
            while i < chars.len() && chars[i] != ')' {
                text.push(chars[i]);
                i += 1;
            }
        } else {
            text.push(chars[i]);
        }
        i += 1;
    }
    // Tokens at the top level; parenthesised comments apart.
    let mut tokens: Vec<String> = Vec::new();
    let mut comments = String::new();
    let mut cur = String::new();
    let mut depth = 0usize;
    for c in text.chars() {
        match c {
            '(' => depth += 1,
            ')' => {
                depth = depth.saturating_sub(1);
                comments.push(' ');
            }
            _ if depth > 0 => comments.push(c),
            c if c.is_whitespace() || c == ',' => {
                if !cur.is_empty() {
                    tokens.push(std::mem::take(&mut cur));
                }
            }
            c => cur.push(c),
        }
    }
    if !cur.is_empty() {
        tokens.push(cur);
    }
    let distro = distro_in(&comments);
    for t in tokens.iter().take(MAX_TOKENS) {
        let Some((name, version)) = t.split_once('/') else {
            continue;
        };
        let name = name.trim();
        let version = version.trim();
        if !valid_name(name) || !version.starts_with(|c: char| c.is_ascii_digit()) {
            continue;
        }
        // A distribution build in the version itself (`7.4.3-4ubuntu2.19`).
        let own = distro_in(version).or(distro);
        let name = match name.to_ascii_lowercase().as_str() {
            // Tomcat's connector names the connector, not Tomcat.
            "apache-coyote" => continue,
            _ => name,
        };
        items.push(item(SoftwareSource::Http, name, version, None, None, own));
    }
    let lower = comments.to_ascii_lowercase();
    if let Some(d) = distro {
        items.extend(platform(SoftwareSource::Http, d, ""));
    } else if lower.contains("win64") || lower.contains("win32") || lower.contains("windows") {
        items.extend(platform(SoftwareSource::Http, "windows", ""));
    }
    items
}

fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 64
        && name.starts_with(|c: char| c.is_ascii_alphabetic())
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | ' '))
}

/// Products named in an SSH identification string
/// (`SSH-2.0-OpenSSH_8.9p1 Ubuntu-3ubuntu0.1`, `SSH-2.0-dropbear_2020.81`).
pub fn ssh_banner(text: &str) -> Vec<Software> {
    let text = cap(text, MAX_TEXT);
    let Some(start) = text.find("SSH-") else {
        return Vec::new();
    };
    let rest = &text[start + 4..];
    // Protocol version, then the software version, then an optional comment.
    let Some((_proto, software)) = rest.split_once('-') else {
        return Vec::new();
    };
    let (soft, comment) = software.split_once(' ').unwrap_or((software, ""));
    let Some((name, version)) = soft.split_once('_') else {
        return Vec::new();
    };
    if !valid_name(name) || !version.starts_with(|c: char| c.is_ascii_digit()) {
        return Vec::new();
    }
    let distro = distro_in(comment);
    let mut items = vec![item(SoftwareSource::Ssh, name, version, None, None, distro)];
    if let Some(d) = distro {
        items.extend(platform(SoftwareSource::Ssh, d, ""));
    }
    items
}

/// Software named in one syslog line (`program` is the syslog tag, if any).
pub fn syslog_line(program: Option<&str>, message: &str) -> Vec<Software> {
    let message = cap(message, MAX_TEXT);
    let program = program.unwrap_or_default().to_ascii_lowercase();
    // sshd at debug level: "Local version string SSH-2.0-OpenSSH_9.2p1 Debian-2+deb12u2"
    // and "sshd version OpenSSH_9.2p1, OpenSSL 3.0.11 19 Sep 2023".
    if program.starts_with("sshd") || message.contains("version string SSH-") {
        if let Some(pos) = message.find("Local version string ") {
            return ssh_banner(&message[pos + 21..])
                .into_iter()
                .map(|mut s| {
                    s.source = SoftwareSource::Syslog;
                    s
                })
                .collect();
        }
        if let Some(pos) = message.find("sshd version ") {
            let mut items = Vec::new();
            for part in message[pos + 13..].split(',') {
                let part = part.trim();
                let (name, version) = match part.split_once('_') {
                    Some((n, v)) if n.eq_ignore_ascii_case("openssh") => (n, v),
                    _ => match part.split_once(' ') {
                        Some((n, v)) if n.eq_ignore_ascii_case("openssl") => {
                            (n, v.split_whitespace().next().unwrap_or_default())
                        }
                        _ => continue,
                    },
                };
                if version.starts_with(|c: char| c.is_ascii_digit()) {
                    items.push(item(
                        SoftwareSource::Syslog,
                        name,
                        version,
                        None,
                        None,
                        None,
                    ));
                }
            }
            return items;
        }
        return Vec::new();
    }
    // dpkg.log: "status installed openssl:amd64 3.0.11-1~deb12u2".
    if let Some(pos) = message.find("status installed ") {
        let f: Vec<&str> = message[pos + 17..].split_whitespace().collect();
        if let [pkg, version, ..] = f.as_slice() {
            let name = pkg.split(':').next().unwrap_or(pkg);
            return vec![deb(name, version)];
        }
        return Vec::new();
    }
    // apt / dpkg terminal log: "Setting up nginx (1.22.1-9) ...".
    if let Some(rest) = message.strip_prefix("Setting up ")
        && let Some((pkg, tail)) = rest.split_once(" (")
        && let Some((version, _)) = tail.split_once(')')
    {
        let name = pkg.split(':').next().unwrap_or(pkg);
        return vec![deb(name, version)];
    }
    // yum / dnf: "Installed: httpd-2.4.6-97.el7.centos.x86_64", "Updated: …",
    // "Upgraded: …" (also with an epoch: "openssl-1:1.0.2k-21.el7_9.x86_64").
    if matches!(program.as_str(), "yum" | "dnf" | "rpm" | "")
        || program.starts_with("dnf")
        || program.starts_with("yum")
    {
        for verb in ["Installed: ", "Updated: ", "Upgraded: ", "Reinstalled: "] {
            if let Some(rest) = message.trim_start().strip_prefix(verb) {
                let nvra = rest.split_whitespace().next().unwrap_or_default();
                return crate::inventory::rpm_item(nvra, SoftwareSource::Syslog)
                    .into_iter()
                    .collect();
            }
        }
    }
    Vec::new()
}

fn deb(name: &str, version: &str) -> Software {
    let distro = if version.contains("ubuntu") {
        "ubuntu"
    } else {
        "debian"
    };
    item(
        SoftwareSource::Syslog,
        name,
        version,
        None,
        None,
        Some(distro),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(items: &[Software]) -> Vec<(String, String, Option<String>)> {
        items
            .iter()
            .map(|s| (s.name.clone(), s.version.clone(), s.distro.clone()))
            .collect()
    }

    #[test]
    fn server_headers() {
        let items = http_header("Apache/2.4.49 (Unix)");
        assert_eq!(names(&items), [("Apache".into(), "2.4.49".into(), None)]);
        let items = http_header("Apache/2.4.41 (Ubuntu) OpenSSL/1.1.1f PHP/7.4.3");
        assert_eq!(items.len(), 4, "three products and the Ubuntu platform");
        assert!(
            items[..3]
                .iter()
                .all(|s| s.distro.as_deref() == Some("ubuntu"))
        );
        assert!(
            items[3]
                .cpe
                .as_deref()
                .unwrap()
                .contains(":canonical:ubuntu_linux:")
        );
        let items = http_header("nginx/1.20.0");
        assert_eq!(names(&items), [("nginx".into(), "1.20.0".into(), None)]);
        assert!(http_header("nginx").is_empty());
        assert!(http_header("Express").is_empty());
        assert!(http_header("cloudflare").is_empty());
        let items = http_header("Microsoft-IIS/10.0");
        assert_eq!(items[0].name, "Microsoft-IIS");
        let items = http_header("Apache/2.4.54 (Win64) OpenSSL/1.1.1p PHP/8.1.10");
        assert!(
            items
                .last()
                .unwrap()
                .cpe
                .as_deref()
                .unwrap()
                .contains(":microsoft:windows:")
        );
        let items = http_header("Jetty(9.4.43.v20210629)");
        assert_eq!(
            names(&items),
            [("Jetty".into(), "9.4.43.v20210629".into(), None)]
        );
        let items = http_header("PHP/7.4.3-4ubuntu2.19");
        assert_eq!(items[0].distro.as_deref(), Some("ubuntu"));
        assert!(http_header("Apache-Coyote/1.1").is_empty());
        for junk in [
            "",
            "(((",
            ")))",
            "/1.0",
            "a/",
            "((x)) y/1 (",
            &"A/1 ".repeat(5000),
        ] {
            let _ = http_header(junk);
        }
    }

    #[test]
    fn ssh_banners() {
        let items = ssh_banner("SSH-2.0-OpenSSH_8.9p1 Ubuntu-3ubuntu0.1");
        assert_eq!(items[0].name, "OpenSSH");
        assert_eq!(items[0].version, "8.9p1");
        assert_eq!(items[0].distro.as_deref(), Some("ubuntu"));
        let items = ssh_banner("SSH-2.0-dropbear_2020.81");
        assert_eq!(names(&items), [("dropbear".into(), "2020.81".into(), None)]);
        assert!(ssh_banner("HTTP/1.1 200 OK").is_empty());
        assert!(ssh_banner("SSH-2.0-").is_empty());
    }

    #[test]
    fn syslog_lines() {
        let items = syslog_line(
            Some("sshd"),
            "debug1: Local version string SSH-2.0-OpenSSH_9.2p1 Debian-2+deb12u2",
        );
        assert_eq!(items[0].version, "9.2p1");
        assert_eq!(items[0].source, SoftwareSource::Syslog);
        assert_eq!(items[0].distro.as_deref(), Some("debian"));
        let items = syslog_line(
            Some("sshd"),
            "debug1: sshd version OpenSSH_9.2p1, OpenSSL 3.0.11 19 Sep 2023",
        );
        assert_eq!(
            names(&items),
            [
                ("OpenSSH".into(), "9.2p1".into(), None),
                ("OpenSSL".into(), "3.0.11".into(), None)
            ]
        );
        assert!(syslog_line(Some("sshd"), "Accepted password for root from 10.0.0.1").is_empty());
        let items = syslog_line(
            None,
            "2024-05-01 10:00:00 status installed openssl:amd64 3.0.11-1~deb12u2",
        );
        assert_eq!(
            names(&items),
            [(
                "openssl".into(),
                "3.0.11-1~deb12u2".into(),
                Some("debian".into())
            )]
        );
        let items = syslog_line(Some("apt"), "Setting up nginx (1.22.1-9) ...");
        assert_eq!(items[0].name, "nginx");
        let items = syslog_line(Some("yum"), "Installed: httpd-2.4.6-97.el7.centos.x86_64");
        assert_eq!(
            names(&items),
            [(
                "httpd".into(),
                "2.4.6-97.el7.centos".into(),
                Some("rhel".into())
            )]
        );
        assert!(syslog_line(Some("cron"), "Installed: x-1-1.el7.x86_64").is_empty());
        assert!(syslog_line(Some("kernel"), "eth0 up").is_empty());
    }
}

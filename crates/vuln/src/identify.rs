//! From a piece of software as reported (`openssh-server 1:9.2p1-2+deb12u2` from dpkg,
//! `pkg:maven/org.apache.logging.log4j/log4j-core@2.14.1`, `Apache/2.4.49` from a
//! `Server` header) to what NVD calls it: a CPE part, vendor and product, and the
//! *upstream* version to compare with NVD's ranges.
//!
//! # Normalisation
//!
//! 1. A CPE the source gave wins (SPDX and some CycloneDX documents carry one).
//! 2. Known names (distribution package names, Maven coordinates, banner product
//!    tokens) map to NVD's vendor and product through [`ALIASES`]: `apache2`,
//!    `httpd` and `Apache` are `apache:http_server`; `log4j-core` is `apache:log4j`;
//!    `libssl3` is `openssl:openssl`.
//! 3. Otherwise the name is the product (with `-` also tried as `_`) and the vendor is
//!    one of the usual NVD spellings: the name itself, `<name>_project`, `<name>js`,
//!    the Maven group's organisation (`org.apache.x` → `apache`), the npm scope, the Go
//!    module's owner. A CVE whose vendor is none of these is not matched: a product
//!    name alone (`core`, `utils`) says too little.
//!
//! # Versions of distribution packages
//!
//! A Debian or RPM package version is `epoch:upstream-revision` (Debian) or
//! `version-release` (RPM). NVD ranges speak of the upstream version, so the epoch, the
//! revision and repacking suffixes (`+dfsg`, `~deb12u1`) are removed before comparing;
//! the package keeps its `distro`, which makes any match a
//! [`Confidence::NeedsDistroAdvisory`](palisade_core::vuln::Confidence) one (see
//! `applicability.rs`): distributions backport fixes without changing the upstream
//! version, so `openssh 1:9.2p1-2+deb12u3` is fixed for CVE-2024-6387 although 9.2p1 is in
//! NVD's range.

use palisade_core::vuln::{Software, SoftwareSource};

use crate::cpe::{ANY, Cpe, NA, Part};
use crate::purl::Purl;

/// What NVD calls one piece of software, with the version to compare.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    /// Application, OS or hardware.
    pub part: Part,
    /// NVD vendors this may be listed under (lower case), most likely first.
    pub vendors: Vec<String>,
    /// NVD products this may be listed under (lower case).
    pub products: Vec<String>,
    /// The upstream version (epoch, revision and repack suffixes removed); empty when
    /// unknown.
    pub version: String,
    /// The CPE update given separately (`p1`, `beta9`), if any.
    pub update: Option<String>,
    /// The software it runs on, in CPE terms (`node.js` for npm packages), if known.
    pub target_sw: Option<String>,
    /// The distribution that built it, for distribution packages.
    pub distro: Option<String>,
}

impl Identity {
    /// The version with the update appended: what ranges compare.
    pub fn full_version(&self) -> String {
        match &self.update {
            Some(u) => format!("{}-{u}", self.version),
            None => self.version.clone(),
        }
    }

    /// Whether NVD's `vendor:product` is this software.
    pub fn is(&self, vendor: &str, product: &str) -> bool {
        self.products.iter().any(|p| p == product) && self.vendors.iter().any(|v| v == vendor)
    }
}

/// Where a name is known: `os` for distribution packages, banners and components
/// without a package URL; otherwise a purl type (`maven`, `npm`, `pypi`, `cargo`,
/// `composer`, `gem`, `golang`).
type Contexts = &'static [&'static str];

/// NVD `(vendor, product)` pairs a name maps to.
type Targets = &'static [(&'static str, &'static str)];

/// Known names (lower case), each valid in some contexts → NVD `(vendor, product)`
/// pairs. The families of the correctness table are here, plus common packages whose
/// NVD names differ from their package names. A name is only trusted where it means
/// that product: `protobuf` is `google:protobuf-python` on PyPI, not a Go module's name.
pub const ALIASES: &[(Contexts, &[&str], Targets)] = &[
    (
        &["os"],
        &[
            "apache",
            "apache2",
            "apache2-bin",
            "httpd",
            "apache-httpd",
            "httpd-core",
            "apache_http_server",
            "http_server",
        ],
        &[("apache", "http_server")],
    ),
    (
        &["os"],
        &[
            "nginx",
            "nginx-core",
            "nginx-full",
            "nginx-light",
            "nginx-extras",
            "nginx-common",
        ],
        &[("f5", "nginx"), ("nginx", "nginx")],
    ),
    (&["os"], &["openresty"], &[("openresty", "openresty")]),
    (
        &["os"],
        &[
            "openssh",
            "openssh-server",
            "openssh-client",
            "openssh-clients",
            "openssh-sftp-server",
            "ssh",
        ],
        &[("openbsd", "openssh")],
    ),
    (
        &["os"],
        &[
            "openssl",
            "libssl3",
            "libssl3t64",
            "libssl1.1",
            "libssl1.0.0",
            "libssl1.0.2",
            "libssl-dev",
            "openssl-libs",
        ],
        &[("openssl", "openssl")],
    ),
    // Log4Shell and its kin are in log4j-core; log4j-api alone is not affected.
    (
        &["os", "maven"],
        &["log4j-core", "log4j", "liblog4j2-java", "log4j2"],
        &[("apache", "log4j")],
    ),
    (
        &["os", "maven"],
        &[
            "tomcat",
            "tomcat8",
            "tomcat9",
            "tomcat10",
            "tomcat-embed-core",
            "apache-tomcat",
            "tomcat-catalina",
            "catalina",
            "libtomcat9-java",
            "libtomcat10-java",
        ],
        &[("apache", "tomcat")],
    ),
    (
        &["os"],
        &[
            "php",
            "php-fpm",
            "php-cli",
            "php-common",
            "php-cgi",
            "libapache2-mod-php",
            "libapache-mod-php",
        ],
        &[("php", "php")],
    ),
    (
        &["os", "composer"],
        &["wordpress"],
        &[("wordpress", "wordpress")],
    ),
    (
        &["os", "npm"],
        &["jquery", "libjs-jquery"],
        &[("jquery", "jquery")],
    ),
    (
        &["os", "pypi"],
        &["django", "python3-django", "python-django"],
        &[("djangoproject", "django")],
    ),
    (
        &["os"],
        &["node", "nodejs", "node.js"],
        &[("nodejs", "node.js")],
    ),
    (
        &["maven"],
        &[
            "spring-core",
            "spring-web",
            "spring-webmvc",
            "spring-beans",
            "spring-context",
            "spring-expression",
        ],
        &[
            ("vmware", "spring_framework"),
            ("pivotal_software", "spring_framework"),
        ],
    ),
    (
        &["os"],
        &[
            "curl",
            "libcurl",
            "libcurl4",
            "libcurl3-gnutls",
            "libcurl4-openssl-dev",
            "libcurl-minimal",
            "curl-minimal",
        ],
        &[("haxx", "curl"), ("haxx", "libcurl")],
    ),
    (
        &["os"],
        &["libwebp", "libwebp7", "libwebp6", "webp"],
        &[("webmproject", "libwebp"), ("google", "libwebp")],
    ),
    (
        &["os"],
        &["xz", "xz-utils", "xz-libs", "liblzma5", "liblzma"],
        &[("tukaani", "xz")],
    ),
    (&["os"], &["busybox"], &[("busybox", "busybox")]),
    (
        &["os"],
        &["ffmpeg", "libavcodec", "libavformat", "libavutil"],
        &[("ffmpeg", "ffmpeg")],
    ),
    (
        &["os"],
        &["cups-filters"],
        &[("openprinting", "cups-filters")],
    ),
    (
        &["os", "gem"],
        &["rails", "railties", "actionpack", "activerecord"],
        &[("rubyonrails", "rails")],
    ),
    (
        &["os"],
        &["microsoft-iis", "iis"],
        &[("microsoft", "internet_information_services")],
    ),
    (&["os"], &["lighttpd"], &[("lighttpd", "lighttpd")]),
    (
        &["os", "maven"],
        &["jetty", "jetty-server", "jetty-http"],
        &[("eclipse", "jetty")],
    ),
    (
        &["os"],
        &["sudo"],
        &[("sudo_project", "sudo"), ("todd_miller", "sudo")],
    ),
    (&["os"], &["bash"], &[("gnu", "bash")]),
    (
        &["os"],
        &["glibc", "libc6", "libc-bin"],
        &[("gnu", "glibc")],
    ),
    (
        &["os"],
        &["dropbear", "dropbear-bin"],
        &[("dropbear_ssh_project", "dropbear_ssh")],
    ),
    (
        &["os"],
        &["exim", "exim4", "exim4-daemon-light"],
        &[("exim", "exim")],
    ),
    (&["os"], &["samba"], &[("samba", "samba")]),
    (
        &["os"],
        &["vim", "vim-tiny", "vim-common"],
        &[("vim", "vim")],
    ),
    (
        &["os", "pypi"],
        &["urllib3", "python3-urllib3"],
        &[("python", "urllib3")],
    ),
    (
        &["os"],
        &["harfbuzz", "libharfbuzz0b"],
        &[("harfbuzz_project", "harfbuzz")],
    ),
    (
        &["os"],
        &["openjpeg", "libopenjp2-7"],
        &[("uclouvain", "openjpeg")],
    ),
    (&["os"], &["libxpm", "libxpm4"], &[("x.org", "libxpm")]),
    (&["pypi"], &["tensorflow"], &[("google", "tensorflow")]),
    (&["cargo"], &["tokio"], &[("tokio", "tokio")]),
    (&["os"], &["gitea"], &[("gitea", "gitea")]),
    (&["os", "maven"], &["gradle"], &[("gradle", "gradle")]),
    (&["os"], &["putty"], &[("putty", "putty")]),
    (&["os"], &["winscp"], &[("winscp", "winscp")]),
    (
        &["os"],
        &["globalprotect", "globalprotect-openconnect"],
        &[("paloaltonetworks", "globalprotect")],
    ),
    (&["pypi"], &["protobuf"], &[("google", "protobuf-python")]),
    (&["npm"], &["express"], &[("expressjs", "express")]),
    (&["npm"], &["lodash"], &[("lodash", "lodash")]),
    (&["npm"], &["moment"], &[("momentjs", "moment")]),
    (&["npm"], &["jsonwebtoken"], &[("auth0", "jsonwebtoken")]),
    (
        &["maven"],
        &["jackson-databind"],
        &[("fasterxml", "jackson-databind")],
    ),
];

/// The NVD names a known name maps to in `context` (`os` or a purl type). Version
/// numbers glued to a name segment (`php8.2-fpm`, `tomcat9`, `libwebp7`) are tried
/// without them too.
pub fn alias(name: &str, context: &str) -> Option<&'static [(&'static str, &'static str)]> {
    let name = name.trim().to_ascii_lowercase();
    let lookup = |n: &str| {
        ALIASES
            .iter()
            .find(|(contexts, names, _)| contexts.contains(&context) && names.contains(&n))
            .map(|(_, _, to)| *to)
    };
    lookup(&name).or_else(|| {
        let unversioned: Vec<&str> = name
            .split('-')
            .map(|seg| {
                let t = seg.trim_end_matches(|c: char| c.is_ascii_digit() || c == '.');
                if t.is_empty() { seg } else { t }
            })
            .collect();
        let unversioned = unversioned.join("-");
        (unversioned != name)
            .then(|| lookup(&unversioned))
            .flatten()
    })
}

/// The CPE `target_sw` of a package ecosystem (NVD names what a library runs on).
fn target_of(kind: &str) -> Option<&'static str> {
    match kind {
        "npm" => Some("node.js"),
        "pypi" => Some("python"),
        "cargo" => Some("rust"),
        "gem" => Some("ruby"),
        "golang" => Some("go"),
        "composer" => Some("php"),
        _ => None,
    }
}

/// Everything a piece of software may be called by NVD (one identity per alias
/// target, or one with guessed vendors); empty when it cannot be identified.
pub fn identify(s: &Software) -> Vec<Identity> {
    let distro = s.distro.clone().or_else(|| match s.source {
        SoftwareSource::Dpkg => Some("debian".to_owned()),
        SoftwareSource::Rpm => Some("rpm".to_owned()),
        _ => None,
    });
    let mut out: Vec<Identity> = Vec::new();
    if let Some(cpe) = s.cpe.as_deref().and_then(|c| Cpe::parse(c).ok()) {
        let version = if cpe.version == ANY || cpe.version == NA {
            upstream_version(&s.version, distro.is_some())
        } else {
            cpe.version.clone()
        };
        let update = (cpe.update != ANY && cpe.update != NA).then(|| cpe.update.clone());
        out.push(Identity {
            part: cpe.part,
            vendors: vec![cpe.vendor],
            products: vec![cpe.product],
            version,
            update,
            target_sw: (cpe.target_sw != ANY && cpe.target_sw != NA).then_some(cpe.target_sw),
            distro: if cpe.part == Part::Application {
                distro.clone()
            } else {
                None
            },
        });
        // A CPE alone (an OS, a product named by its CPE) says it all; with a purl, the
        // package's own names are tried too (SBOM tools guess CPEs).
        if s.purl.is_none() {
            return out;
        }
    }
    let purl = s.purl.as_deref().and_then(|p| Purl::parse(p).ok());
    let distro = match &purl {
        Some(p) if p.is_distro_package() => distro.or_else(|| Some(distro_of_purl(p))),
        _ => distro,
    };
    let (name, namespace, kind) = match &purl {
        Some(p) => (p.name.clone(), p.namespace.clone(), p.kind.as_str()),
        None => (s.name.to_ascii_lowercase(), String::new(), ""),
    };
    let raw_version = match (&purl, s.version.trim()) {
        (_, v) if !v.is_empty() => v.to_owned(),
        (Some(p), _) => p.version.clone().unwrap_or_default(),
        (None, _) => String::new(),
    };
    let version = upstream_version(&raw_version, distro.is_some());
    let target_sw = target_of(kind).map(str::to_owned);
    // Distribution packages and banners are the `os` context; a language package is
    // known by its ecosystem's names only.
    let context = match &purl {
        Some(p) if !p.is_distro_package() => p.kind.as_str(),
        _ => "os",
    };
    if let Some(to) = alias(&name, context).or_else(|| alias(&s.name, context)) {
        let named = to.iter().map(|(vendor, product)| Identity {
            part: Part::Application,
            vendors: vec![(*vendor).to_owned()],
            products: vec![(*product).to_owned()],
            version: version.clone(),
            update: None,
            target_sw: target_sw.clone(),
            distro: distro.clone(),
        });
        return merge(out, named);
    }
    let name = name.trim();
    if name.is_empty() {
        return out;
    }
    let mut products = vec![name.to_owned()];
    push_distinct(&mut products, name.replace('-', "_"));
    let mut vendors = Vec::new();
    match kind {
        "maven" => {
            // org.apache.commons → apache; com.fasterxml.jackson.core → fasterxml.
            let labels: Vec<&str> = namespace.split('.').collect();
            if let Some(org) = labels.get(1).or(labels.first()) {
                push_distinct(&mut vendors, (*org).to_ascii_lowercase());
            }
        }
        "npm" | "composer" => {
            let scope = namespace.trim_start_matches('@');
            if !scope.is_empty() {
                push_distinct(&mut vendors, scope.to_ascii_lowercase());
            }
        }
        "golang" => {
            // github.com/owner/repo → owner.
            if let Some(owner) = namespace.split('/').nth(1) {
                push_distinct(&mut vendors, owner.to_ascii_lowercase());
            }
        }
        _ => {}
    }
    for p in products.clone() {
        push_distinct(&mut vendors, p.clone());
        push_distinct(&mut vendors, format!("{p}_project"));
        push_distinct(&mut vendors, format!("{p}js"));
    }
    merge(
        out,
        std::iter::once(Identity {
            part: Part::Application,
            vendors,
            products,
            version,
            update: None,
            target_sw,
            distro,
        }),
    )
}

/// `out` plus the identities of `more` that are not already in it.
fn merge(mut out: Vec<Identity>, more: impl Iterator<Item = Identity>) -> Vec<Identity> {
    for id in more {
        if !out
            .iter()
            .any(|o| o.part == id.part && o.vendors == id.vendors && o.products == id.products)
        {
            out.push(id);
        }
    }
    out
}

fn push_distinct(list: &mut Vec<String>, v: String) {
    if !v.is_empty() && !list.contains(&v) {
        list.push(v);
    }
}

/// `pkg:deb/debian/…` → `debian`; `pkg:rpm/redhat/…` → `redhat`.
fn distro_of_purl(p: &Purl) -> String {
    if let Some(d) = p.qualifier("distro") {
        let name: String = d.chars().take_while(|c| c.is_ascii_alphabetic()).collect();
        if !name.is_empty() {
            return name.to_ascii_lowercase();
        }
    }
    if p.namespace.is_empty() {
        p.kind.clone()
    } else {
        p.namespace.to_ascii_lowercase()
    }
}

/// The upstream part of a version: for distribution packages the epoch (`1:`), the
/// Debian revision or RPM release (after the last `-`) and repack suffixes (`+dfsg`,
/// `~deb12u1`, `+really` keeps what follows it) go; other versions are only trimmed.
pub fn upstream_version(version: &str, distro_package: bool) -> String {
    let v = version.trim();
    if !distro_package {
        return v.to_owned();
    }
    let v = match v.split_once(':') {
        Some((epoch, rest)) if !epoch.is_empty() && epoch.bytes().all(|b| b.is_ascii_digit()) => {
            rest
        }
        _ => v,
    };
    let v = v.rsplit_once('-').map_or(v, |(up, _)| up);
    let v = v.rsplit_once("+really").map_or(v, |(_, after)| after);
    let v = v.split(['+', '~']).next().unwrap_or(v);
    v.to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sw(source: SoftwareSource, name: &str, version: &str) -> Software {
        Software {
            source,
            name: name.into(),
            version: version.into(),
            purl: None,
            cpe: None,
            distro: None,
        }
    }

    #[test]
    fn distribution_versions_become_upstream() {
        for (v, up) in [
            ("1:9.2p1-2+deb12u2", "9.2p1"),
            ("3.0.11-1~deb12u2", "3.0.11"),
            ("2.4.57-2", "2.4.57"),
            ("2.9.14+dfsg-1.3~deb12u1", "2.9.14"),
            ("12.4+deb12u5", "12.4"),
            ("1.0.2k-19.el7", "1.0.2k"),
            ("2:4.2+really4.1-1", "4.1"),
            ("8.2.7", "8.2.7"),
        ] {
            assert_eq!(upstream_version(v, true), up, "{v}");
        }
        assert_eq!(upstream_version(" 2.0-beta9 ", false), "2.0-beta9");
    }

    #[test]
    fn known_names_map_to_nvd() {
        let ids = identify(&sw(
            SoftwareSource::Dpkg,
            "openssh-server",
            "1:9.2p1-2+deb12u2",
        ));
        assert_eq!(ids.len(), 1);
        assert!(ids[0].is("openbsd", "openssh"));
        assert_eq!(ids[0].version, "9.2p1");
        assert_eq!(ids[0].distro.as_deref(), Some("debian"));
        let ids = identify(&sw(SoftwareSource::Http, "Apache", "2.4.49"));
        assert!(ids[0].is("apache", "http_server"));
        assert_eq!(ids[0].distro, None);
        let ids = identify(&sw(SoftwareSource::Dpkg, "nginx", "1.22.1-9"));
        assert_eq!(ids.len(), 2, "f5:nginx and nginx:nginx");
        assert!(identify(&sw(SoftwareSource::Dpkg, "php8.2-fpm", "8.2.7-1"))[0].is("php", "php"));
        assert!(identify(&sw(SoftwareSource::Dpkg, "php8.2", "8.2.7-1"))[0].is("php", "php"));
        assert!(identify(&sw(SoftwareSource::Rpm, "tomcat9", "9.0.50"))[0].is("apache", "tomcat"));
        assert!(
            identify(&sw(SoftwareSource::Dpkg, "libssl3", "3.0.11-1"))[0].is("openssl", "openssl")
        );
    }

    #[test]
    fn purls_and_cpes() {
        let mut s = sw(SoftwareSource::Cyclonedx, "log4j-core", "2.14.1");
        s.purl = Some("pkg:maven/org.apache.logging.log4j/log4j-core@2.14.1".into());
        let ids = identify(&s);
        assert!(ids[0].is("apache", "log4j"));
        let mut s = sw(SoftwareSource::Cyclonedx, "commons-text", "1.9");
        s.purl = Some("pkg:maven/org.apache.commons/commons-text@1.9".into());
        let ids = identify(&s);
        assert!(ids[0].is("apache", "commons-text"));
        assert!(ids[0].is("apache", "commons_text"));
        let mut s = sw(SoftwareSource::Cyclonedx, "express-jwt", "0.1.3");
        s.purl = Some("pkg:npm/express-jwt@0.1.3".into());
        let ids = identify(&s);
        assert!(ids[0].is("express-jwt_project", "express-jwt"));
        assert_eq!(ids[0].target_sw.as_deref(), Some("node.js"));
        let mut s = sw(SoftwareSource::Spdx, "x", "1.2");
        s.cpe = Some("cpe:2.3:a:vendor:thing:*:*:*:*:*:*:*:*".into());
        let ids = identify(&s);
        assert!(ids[0].is("vendor", "thing"));
        assert_eq!(ids[0].version, "1.2");
        let mut s = sw(SoftwareSource::Cyclonedx, "openssl", "3.0.11-1~deb12u2");
        s.purl = Some("pkg:deb/debian/openssl@3.0.11-1~deb12u2?distro=debian-12".into());
        let ids = identify(&s);
        assert_eq!(ids[0].distro.as_deref(), Some("debian"));
        assert_eq!(ids[0].version, "3.0.11");
    }

    #[test]
    fn unknown_names_get_guessed_vendors_only() {
        let ids = identify(&sw(SoftwareSource::Dpkg, "libfoo-bar", "1.0-1"));
        assert_eq!(ids[0].products, vec!["libfoo-bar", "libfoo_bar"]);
        assert!(ids[0].vendors.contains(&"libfoo_bar_project".to_owned()));
        assert!(!ids[0].is("anyone", "libfoo-bar"));
        assert!(identify(&sw(SoftwareSource::Dpkg, "  ", "1")).is_empty());
    }
}

//! Package URLs (`pkg:maven/org.apache.logging.log4j/log4j-core@2.14.1`), the
//! identifiers SBOMs give components: the ecosystem, namespace and name say which
//! package it is far better than a bare name does.
//!
//! Parsed per the purl specification: `pkg:type/namespace/name@version?qualifiers#subpath`,
//! percent-decoded, type lower-cased; namespaces and names are lower-cased too for
//! the types the specification says are case-insensitive.

/// A parsed package URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Purl {
    /// Ecosystem: `maven`, `npm`, `pypi`, `deb`, `rpm`, `golang`, `composer`, …
    pub kind: String,
    /// Group, scope, owner or distribution (segments joined by `/`), maybe empty.
    pub namespace: String,
    /// The package name.
    pub name: String,
    /// The version, when given.
    pub version: Option<String>,
    /// Qualifiers (`distro=debian-12`, `arch=amd64`), in order.
    pub qualifiers: Vec<(String, String)>,
}

/// Why a package URL could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PurlError {
    /// Not `pkg:`.
    #[error("not a package URL (must start with pkg:)")]
    Scheme,
    /// No type or no name.
    #[error("a package URL needs a type and a name")]
    Missing,
}

impl Purl {
    /// Parses a package URL.
    pub fn parse(text: &str) -> Result<Purl, PurlError> {
        let text = text.trim();
        let rest = text
            .get(..4)
            .filter(|p| p.eq_ignore_ascii_case("pkg:"))
            .map(|_| &text[4..])
            .ok_or(PurlError::Scheme)?;
        let rest = rest.trim_start_matches('/');
        let rest = rest.split_once('#').map_or(rest, |(r, _)| r);
        let (rest, query) = match rest.split_once('?') {
            Some((r, q)) => (r, Some(q)),
            None => (rest, None),
        };
        let (path, version) = match rest.rsplit_once('@') {
            // An `@` inside the namespace (npm scopes are written %40) is not a version.
            Some((p, v)) if !v.contains('/') => (p, Some(decode(v))),
            _ => (rest, None),
        };
        let mut segments: Vec<String> = path
            .split('/')
            .filter(|s| !s.is_empty())
            .map(decode)
            .collect();
        if segments.len() < 2 {
            return Err(PurlError::Missing);
        }
        let kind = segments.remove(0).to_ascii_lowercase();
        let mut name = segments.pop().unwrap_or_default();
        let mut namespace = segments.join("/");
        if matches!(
            kind.as_str(),
            "npm" | "pypi" | "deb" | "rpm" | "apk" | "github" | "bitbucket" | "composer" | "gem"
        ) {
            namespace = namespace.to_ascii_lowercase();
            name = name.to_ascii_lowercase();
        }
        if kind == "pypi" {
            name = name.replace('_', "-");
        }
        if name.is_empty() {
            return Err(PurlError::Missing);
        }
        let qualifiers = query
            .map(|q| {
                q.split('&')
                    .filter_map(|kv| kv.split_once('='))
                    .map(|(k, v)| (k.to_ascii_lowercase(), decode(v)))
                    .collect()
            })
            .unwrap_or_default();
        Ok(Purl {
            kind,
            namespace,
            name,
            version: version.filter(|v| !v.is_empty()),
            qualifiers,
        })
    }

    /// A qualifier's value.
    pub fn qualifier(&self, key: &str) -> Option<&str> {
        self.qualifiers
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    /// Whether it is a distribution package (deb, rpm, apk, …): its version carries the
    /// distribution's release and maybe backported fixes.
    pub fn is_distro_package(&self) -> bool {
        matches!(
            self.kind.as_str(),
            "deb" | "rpm" | "apk" | "alpm" | "ebuild"
        )
    }
}

fn decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%'
            && let Some(hex) = b.get(i + 1..i + 3)
            && let (Some(h), Some(l)) = (hex_val(hex[0]), hex_val(hex[1]))
        {
            out.push(h * 16 + l);
            i += 3;
            continue;
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn hex_val(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ecosystems() {
        let p =
            Purl::parse("pkg:maven/org.apache.logging.log4j/log4j-core@2.14.1?type=jar").unwrap();
        assert_eq!(p.kind, "maven");
        assert_eq!(p.namespace, "org.apache.logging.log4j");
        assert_eq!(p.name, "log4j-core");
        assert_eq!(p.version.as_deref(), Some("2.14.1"));
        assert_eq!(p.qualifier("type"), Some("jar"));
        let p = Purl::parse("pkg:npm/%40angular/core@9.1.0").unwrap();
        assert_eq!(
            (p.namespace.as_str(), p.name.as_str()),
            ("@angular", "core")
        );
        let p = Purl::parse("pkg:golang/github.com/ProtonMail/go-crypto@v0.0.0-2021").unwrap();
        assert_eq!(p.namespace, "github.com/ProtonMail");
        assert_eq!(p.version.as_deref(), Some("v0.0.0-2021"));
        let p = Purl::parse("pkg:deb/debian/openssl@3.0.11-1~deb12u2?arch=amd64&distro=debian-12")
            .unwrap();
        assert!(p.is_distro_package());
        assert_eq!(p.qualifier("distro"), Some("debian-12"));
        let p = Purl::parse("pkg:pypi/Django_Rest@3.0").unwrap();
        assert_eq!(p.name, "django-rest");
        let p = Purl::parse("pkg:npm/lodash").unwrap();
        assert_eq!(p.version, None);
    }

    #[test]
    fn junk_is_an_error_not_a_panic() {
        for bad in [
            "", "pkg:", "pkg:npm", "pkg:npm/", "http://x", "pkg:/@1", "p%",
        ] {
            assert!(Purl::parse(bad).is_err(), "{bad}");
        }
        assert!(Purl::parse("pkg:npm/a%zz@1").is_ok());
    }
}

//! CPE names: the 2.3 formatted string NVD uses
//! (`cpe:2.3:a:apache:http_server:2.4.49:*:*:*:*:*:*:*`) and the older 2.2 URI
//! (`cpe:/a:apache:http_server:2.4.49`) that CIRCL's legacy answers still carry.
//!
//! Attributes are kept unescaped and in lower case (`16.10.3\(3794\)` becomes
//! `16.10.3(3794)`), so that comparing them is comparing text. `*` is ANY and `-` is NA,
//! as in the specification (NISTIR 7695).

use std::fmt;

/// The logical value ANY.
pub const ANY: &str = "*";
/// The logical value NA (not applicable).
pub const NA: &str = "-";

/// The three kinds of thing a CPE names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Part {
    /// An application.
    Application,
    /// An operating system (or firmware).
    OperatingSystem,
    /// Hardware.
    Hardware,
}

impl Part {
    /// The one-letter code.
    pub const fn code(self) -> char {
        match self {
            Part::Application => 'a',
            Part::OperatingSystem => 'o',
            Part::Hardware => 'h',
        }
    }

    fn parse(s: &str) -> Option<Part> {
        match s {
            "a" => Some(Part::Application),
            "o" => Some(Part::OperatingSystem),
            "h" => Some(Part::Hardware),
            _ => None,
        }
    }
}

/// A parsed CPE name.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Cpe {
    /// a, o or h.
    pub part: Part,
    /// The vendor (`apache`).
    pub vendor: String,
    /// The product (`http_server`).
    pub product: String,
    /// The version, `*` or `-`.
    pub version: String,
    /// The update (`p1`, `beta9`, `milestone1`), `*` or `-`.
    pub update: String,
    /// The edition.
    pub edition: String,
    /// The language.
    pub language: String,
    /// The software edition.
    pub sw_edition: String,
    /// The software the product runs on (`node.js`, `wordpress`, `windows`).
    pub target_sw: String,
    /// The hardware it runs on.
    pub target_hw: String,
    /// Anything else.
    pub other: String,
}

/// Why a CPE name could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CpeError {
    /// Not `cpe:2.3:` or `cpe:/`.
    #[error("not a CPE name (must start with cpe:2.3: or cpe:/)")]
    Prefix,
    /// The part is not a, o or h.
    #[error("the part must be a, o or h")]
    Part,
    /// Too few or too many attributes.
    #[error("a CPE 2.3 name has 11 attributes after cpe:2.3: (got {0})")]
    Attributes(usize),
    /// Vendor or product missing.
    #[error("the vendor and product must be given")]
    Missing,
}

impl Cpe {
    /// Parses a 2.3 formatted string or a 2.2 URI.
    pub fn parse(text: &str) -> Result<Cpe, CpeError> {
        let text = text.trim();
        if let Some(rest) = strip_prefix_ci(text, "cpe:2.3:") {
            let fields = split_escaped(rest);
            if fields.len() != 11 {
                return Err(CpeError::Attributes(fields.len()));
            }
            Cpe::from_fields(fields)
        } else if let Some(rest) = strip_prefix_ci(text, "cpe:/") {
            let mut fields: Vec<String> = rest
                .split(':')
                .map(|f| {
                    let f = percent_decode(f).to_ascii_lowercase();
                    if f.is_empty() { ANY.to_owned() } else { f }
                })
                .collect();
            // 2.2 has 7 components; the edition may pack sw_edition etc. with `~`.
            fields.resize(7, ANY.to_owned());
            fields.truncate(7);
            let mut out: Vec<String> = fields[..5].to_vec();
            let edition = fields[5].clone();
            let language = fields[6].clone();
            let packed: Vec<&str> = edition.split('~').collect();
            if packed.len() == 6 && packed[0].is_empty() {
                out.push(or_any(packed[1]));
                out.push(language);
                out.extend(packed[2..].iter().map(|s| or_any(s)));
            } else {
                out.push(edition);
                out.push(language);
                out.extend([ANY, ANY, ANY, ANY].map(str::to_owned));
            }
            Cpe::from_fields(out)
        } else {
            Err(CpeError::Prefix)
        }
    }

    fn from_fields(mut f: Vec<String>) -> Result<Cpe, CpeError> {
        let part = Part::parse(&f[0]).ok_or(CpeError::Part)?;
        if f[1] == ANY || f[2] == ANY || f[1].is_empty() || f[2].is_empty() {
            return Err(CpeError::Missing);
        }
        let mut take = |i: usize| std::mem::take(&mut f[i]);
        Ok(Cpe {
            part,
            vendor: take(1),
            product: take(2),
            version: take(3),
            update: take(4),
            edition: take(5),
            language: take(6),
            sw_edition: take(7),
            target_sw: take(8),
            target_hw: take(9),
            other: take(10),
        })
    }

    /// A CPE for an identified product: ANY everywhere else.
    pub fn new(part: Part, vendor: &str, product: &str, version: &str) -> Cpe {
        Cpe {
            part,
            vendor: vendor.to_ascii_lowercase(),
            product: product.to_ascii_lowercase(),
            version: if version.is_empty() {
                ANY.to_owned()
            } else {
                version.to_ascii_lowercase()
            },
            update: ANY.to_owned(),
            edition: ANY.to_owned(),
            language: ANY.to_owned(),
            sw_edition: ANY.to_owned(),
            target_sw: ANY.to_owned(),
            target_hw: ANY.to_owned(),
            other: ANY.to_owned(),
        }
    }

    /// `vendor:product`.
    pub fn product_key(&self) -> String {
        format!("{}:{}", self.vendor, self.product)
    }
}

impl fmt::Display for Cpe {
    /// The 2.3 formatted string (punctuation other than `.`, `-` and `_` escaped, as
    /// NVD writes it).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "cpe:2.3:{}", self.part.code())?;
        for v in [
            &self.vendor,
            &self.product,
            &self.version,
            &self.update,
            &self.edition,
            &self.language,
            &self.sw_edition,
            &self.target_sw,
            &self.target_hw,
            &self.other,
        ] {
            f.write_str(":")?;
            if v == ANY || v == NA {
                f.write_str(v)?;
                continue;
            }
            for c in v.chars() {
                if !(c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-')) && c.is_ascii() {
                    f.write_str("\\")?;
                }
                write!(f, "{c}")?;
            }
        }
        Ok(())
    }
}

fn or_any(s: &str) -> String {
    if s.is_empty() {
        ANY.to_owned()
    } else {
        s.to_owned()
    }
}

fn strip_prefix_ci<'a>(text: &'a str, prefix: &str) -> Option<&'a str> {
    let head = text.get(..prefix.len())?;
    head.eq_ignore_ascii_case(prefix)
        .then(|| &text[prefix.len()..])
}

/// Splits on `:` not preceded by a backslash, removing the escapes, in lower case.
fn split_escaped(s: &str) -> Vec<String> {
    let mut out = Vec::with_capacity(11);
    let mut cur = String::new();
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => {
                if let Some(next) = chars.next() {
                    cur.push(next.to_ascii_lowercase());
                }
            }
            ':' => out.push(std::mem::take(&mut cur)),
            _ => cur.push(c.to_ascii_lowercase()),
        }
    }
    out.push(cur);
    out
}

fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%'
            && let Some(h) = b.get(i + 1..i + 3)
            && let Ok(v) = u8::from_str_radix(std::str::from_utf8(h).unwrap_or("zz"), 16)
        {
            out.push(v);
            i += 3;
            continue;
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formatted_strings() {
        let c = Cpe::parse("cpe:2.3:a:apache:http_server:2.4.49:*:*:*:*:*:*:*").unwrap();
        assert_eq!(c.part, Part::Application);
        assert_eq!(c.product_key(), "apache:http_server");
        assert_eq!(c.version, "2.4.49");
        assert_eq!(c.update, "*");
        let c = Cpe::parse("cpe:2.3:a:apache:log4j:2.0:beta9:*:*:*:*:*:*").unwrap();
        assert_eq!((c.version.as_str(), c.update.as_str()), ("2.0", "beta9"));
        let c =
            Cpe::parse("cpe:2.3:o:ricon:s9922l_firmware:16.10.3\\(3794\\):*:*:*:*:*:*:*").unwrap();
        assert_eq!(c.version, "16.10.3(3794)");
        let c =
            Cpe::parse("cpe:2.3:a:netapp:solidfire_\\&_hci_storage_node:-:*:*:*:*:*:*:*").unwrap();
        assert_eq!(c.product, "solidfire_&_hci_storage_node");
        assert_eq!(c.version, NA);
        let c = Cpe::parse("cpe:2.3:a:lodash:lodash:*:*:*:*:*:node.js:*:*").unwrap();
        assert_eq!(c.target_sw, "node.js");
        assert_eq!(
            c.to_string(),
            "cpe:2.3:a:lodash:lodash:*:*:*:*:*:node.js:*:*"
        );
        assert_eq!(Cpe::parse(&c.to_string()).unwrap(), c);
    }

    #[test]
    fn uris() {
        let c = Cpe::parse("cpe:/a:microsoft:hevc_video_extensions:1.0.32762.0").unwrap();
        assert_eq!(c.product, "hevc_video_extensions");
        assert_eq!(c.version, "1.0.32762.0");
        assert_eq!(c.update, "*");
        let c = Cpe::parse("cpe:/o:microsoft:windows_10:1607::~~ltsb~~x64~").unwrap();
        assert_eq!(c.sw_edition, "ltsb");
        assert_eq!(c.target_hw, "x64");
    }

    #[test]
    fn junk_is_an_error_not_a_panic() {
        for bad in [
            "",
            "cpe:",
            "cpe:2.3:x:a:b:*:*:*:*:*:*:*:*",
            "cpe:2.3:a:b",
            "cpe:2.3:a:*:*:*:*:*:*:*:*:*:*",
            "cpe:/",
            "cpe:/a",
            "cpe:/a:%zz:",
            "cpe:2.3:a:\\",
        ] {
            assert!(Cpe::parse(bad).is_err(), "{bad}");
        }
    }
}

//! Guessing a source's format from its first lines, so that `format = "auto"` works
//! for the common cases without the user knowing the format's name.

use crate::apache_error::ApacheErrorParser;
use crate::{FormatSpec, JsonFieldMap, LineParser, SyslogOptions, SyslogParser, nginx};

/// Guesses the format from the first lines of a source (skip blank lines); None when nothing fits
/// at least most of the sample. Order: JSON object lines -> Json; combined; common; apache error
/// log; syslog (which also covers auth.log). Syslog comes last because its parser is the most
/// permissive (a timestamp and one word suffice), so it must not shadow a stricter format.
///
/// "Most" means more than half of the non-blank lines, so one cut-short or hostile line
/// in a sample does not hide the format, while a sample of mixed junk gives `None`.
pub fn sniff(sample: &[&[u8]]) -> Option<FormatSpec> {
    let lines: Vec<&[u8]> = sample
        .iter()
        .map(|l| trim(l))
        .filter(|l| !l.is_empty())
        .collect();
    if lines.is_empty() {
        return None;
    }
    let fits = |ok: &dyn Fn(&[u8]) -> bool| {
        let n = lines.iter().filter(|l| ok(l)).count();
        n * 2 > lines.len()
    };
    if fits(&|l| {
        l.first() == Some(&b'{')
            && serde_json::from_slice::<serde_json::Map<String, serde_json::Value>>(l).is_ok()
    }) {
        return Some(FormatSpec::Json(JsonFieldMap::default()));
    }
    if let Ok(combined) = nginx::combined()
        && fits(&|l| combined.parse(l).is_ok())
    {
        return Some(FormatSpec::Combined);
    }
    if let Ok(common) = nginx::common()
        && fits(&|l| common.parse(l).is_ok())
    {
        return Some(FormatSpec::Common);
    }
    if fits(&|l| ApacheErrorParser.parse(l).is_ok()) {
        return Some(FormatSpec::ApacheError);
    }
    // A fixed leap year: detection must not depend on the clock, and `Feb 29` is valid.
    let syslog = SyslogParser::new(SyslogOptions { year: Some(2000) });
    if fits(&|l| syslog.parse(l).is_ok()) {
        return Some(FormatSpec::Syslog(SyslogOptions::default()));
    }
    None
}

fn trim(mut l: &[u8]) -> &[u8] {
    while let [rest @ .., b'\r' | b'\n' | b' ' | b'\t'] = l {
        l = rest;
    }
    while let [b' ' | b'\t', rest @ ..] = l {
        l = rest;
    }
    l
}

#[cfg(test)]
mod tests {
    use super::*;

    const COMBINED: &[u8] =
        br#"1.2.3.4 - - [10/Oct/2000:13:55:36 -0700] "GET / HTTP/1.0" 200 7 "-" "ua""#;
    const COMMON: &[u8] = br#"1.2.3.4 - - [10/Oct/2000:13:55:36 -0700] "GET / HTTP/1.0" 200 7"#;
    const ERROR: &[u8] = b"[Sun Dec 04 04:47:44 2005] [notice] ok";

    #[test]
    fn picks_each_format() {
        assert_eq!(
            sniff(&[COMBINED, b"", COMBINED]),
            Some(FormatSpec::Combined)
        );
        assert_eq!(sniff(&[COMMON, b"  ", COMMON]), Some(FormatSpec::Common));
        assert_eq!(sniff(&[ERROR, ERROR]), Some(FormatSpec::ApacheError));
        let syslog = Some(FormatSpec::Syslog(SyslogOptions::default()));
        assert_eq!(
            sniff(&[
                b"Dec 10 06:55:46 LabSZ sshd[24200]: Invalid user webmaster from 173.234.31.186",
                b"<34>1 2003-10-11T22:14:15.003Z mymachine.example.com su - ID47 - 'su root' failed",
                b"<13>Feb  5 17:32:18 10.0.0.99 Use the BFG!",
            ]),
            syslog
        );
        assert_eq!(
            sniff(&[b"{\"time\":1}", b"{\"a\":2}\r"]),
            Some(FormatSpec::Json(JsonFieldMap::default()))
        );
    }

    #[test]
    fn majority_wins_and_junk_is_none() {
        assert_eq!(
            sniff(&[COMBINED, COMBINED, b"junk"]),
            Some(FormatSpec::Combined)
        );
        assert_eq!(sniff(&[COMBINED, b"junk"]), None);
        assert_eq!(sniff(&[b"hello", b"world"]), None);
        assert_eq!(sniff(&[]), None);
        assert_eq!(sniff(&[b"", b"   "]), None);
    }
}

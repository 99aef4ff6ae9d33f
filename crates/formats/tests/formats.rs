//! Custom formats through the public API: nginx `log_format` and Apache `LogFormat`
//! strings round-trip on hand-written lines, and bad strings are refused with a
//! `FormatError` that says how to fix them.

use palisade_formats::{FormatError, FormatSpec, build};

fn extra<'a>(ev: &'a palisade_core::Event, key: &str) -> Option<&'a str> {
    ev.extra
        .iter()
        .find(|(k, _)| k == key)
        .map(|(_, v)| v.as_str())
}

#[test]
fn nginx_timing_format() {
    let fmt = r#"$remote_addr - $remote_user [$time_local] "$request" $status $body_bytes_sent "$http_referer" "$http_user_agent" "$http_x_forwarded_for" host=$host rt=$request_time urt=$upstream_response_time"#;
    let p = build(&FormatSpec::from_name(&format!("nginx:{fmt}")).unwrap()).unwrap();
    let ev = p
        .parse(br#"203.0.113.5 - admin [05/Mar/2024:17:02:11 +0100] "GET /wp-login.php?redirect_to=%2Fwp-admin%2F HTTP/1.1" 403 153 "-" "python-requests/2.31" "198.51.100.1" host=blog.example.org rt=1.004 urt=1.001"#)
        .unwrap();
    assert_eq!(ev.ts.to_string(), "2024-03-05T16:02:11Z");
    assert_eq!(ev.user.as_deref(), Some("admin"));
    assert_eq!(ev.path.as_deref(), Some("/wp-login.php"));
    assert_eq!(ev.query.as_deref(), Some("redirect_to=%2Fwp-admin%2F"));
    assert_eq!(ev.status, Some(403));
    assert_eq!(ev.host.as_deref(), Some("blog.example.org"));
    assert_eq!(ev.duration_us, Some(1_004_000));
    assert_eq!(extra(&ev, "http_x_forwarded_for"), Some("198.51.100.1"));
    assert_eq!(extra(&ev, "upstream_response_time"), Some("1.001"));
    assert!(p.name().starts_with("nginx:"));
}

#[test]
fn apache_vhost_format() {
    let fmt = r#"%v %h %l %u %t "%r" %>s %b "%{Referer}i" "%{User-Agent}i" %D"#;
    let p = build(&FormatSpec::from_name(&format!("apache:{fmt}")).unwrap()).unwrap();
    let ev = p
        .parse(br#"shop.example 2001:db8::2 - - [05/Mar/2024:17:02:11 +0000] "POST /cart?add=1 HTTP/2.0" 500 - "https://shop.example/" "Mozilla/5.0" 250123"#)
        .unwrap();
    assert_eq!(ev.host.as_deref(), Some("shop.example"));
    assert_eq!(ev.client_ip, Some("2001:db8::2".parse().unwrap()));
    assert_eq!(ev.method.as_deref(), Some("POST"));
    assert_eq!(ev.query.as_deref(), Some("add=1"));
    assert_eq!(ev.status, Some(500));
    assert_eq!(ev.bytes, None);
    assert_eq!(ev.duration_us, Some(250_123));
    assert_eq!(ev.referer.as_deref(), Some("https://shop.example/"));
}

#[test]
fn bad_format_strings() {
    for spec in [
        FormatSpec::Nginx("$remote_addr$remote_user".into()),
        FormatSpec::Nginx("${status".into()),
        FormatSpec::Nginx("no variables".into()),
    ] {
        let e = build(&spec).err().expect("refused");
        assert!(matches!(e, FormatError::BadNginxFormat { .. }), "{e}");
    }
    for spec in [
        FormatSpec::Apache("%h %J".into()),
        FormatSpec::Apache("%h %{User-Agent".into()),
        FormatSpec::Apache("%h%u".into()),
    ] {
        let e = build(&spec).err().expect("refused");
        assert!(matches!(e, FormatError::BadApacheFormat { .. }), "{e}");
    }
    let e = FormatSpec::from_name("ngnix").unwrap_err();
    assert!(e.to_string().contains("valid names are"));
}

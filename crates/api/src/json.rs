//! A JSON body extractor whose rejections are problem documents naming the field.
//!
//! The field is the JSON path of the value serde refused (`password`,
//! `items[2].name`), tracked while deserializing, never guessed from the error text: a
//! serde message quotes the submitted value (``invalid type: integer `123` ``), which
//! once ended up where the field name belongs.

use axum::body::Bytes;
use axum::extract::{FromRequest, Request};
use axum::http::{HeaderMap, StatusCode, header};
use serde::de::DeserializeOwned;
use serde_json::error::Category;

use crate::problem::Problem;

/// Like `axum::Json`, but a bad body is a 400/413/415 problem+json that says which
/// field is wrong.
pub struct ApiJson<T>(pub T);

/// Whether the request says its body is JSON (`application/json` or `application/*+json`).
fn is_json(headers: &HeaderMap) -> bool {
    let Some(value) = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
    else {
        return false;
    };
    let essence = value
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase();
    essence == "application/json"
        || essence
            .strip_prefix("application/")
            .is_some_and(|subtype| subtype.ends_with("+json"))
}

/// The field a deserialization error is about: the path of the value being read, plus
/// the name for errors that are about a key rather than a value (a missing or unknown
/// field). `path` is `.` at the top level.
fn field_of(path: &str, message: &str) -> String {
    let named = ["missing field `", "unknown field `"]
        .iter()
        .find_map(|prefix| message.strip_prefix(prefix))
        .and_then(|rest| rest.split('`').next())
        .filter(|name| !name.is_empty());
    let at_top = path == "." || path.is_empty();
    match (named, at_top) {
        (Some(name), true) => name.to_owned(),
        // serde_path_to_error has already stepped into an unknown key's path.
        (Some(name), false) if path == name || path.ends_with(&format!(".{name}")) => {
            path.to_owned()
        }
        (Some(name), false) => format!("{path}.{name}"),
        (None, false) => path.to_owned(),
        (None, true) => "body".to_owned(),
    }
}

/// Parses a JSON body into `T`; a problem naming the field when it does not fit.
pub fn parse<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, Problem> {
    let mut de = serde_json::Deserializer::from_slice(bytes);
    let value: T = serde_path_to_error::deserialize(&mut de).map_err(|e| {
        let message = e.inner().to_string();
        let field = match e.inner().classify() {
            Category::Data => field_of(&e.path().to_string(), &message),
            Category::Syntax | Category::Eof | Category::Io => "body".to_owned(),
        };
        Problem::invalid(&field, message)
    })?;
    de.end()
        .map_err(|e| Problem::invalid("body", e.to_string()))?;
    Ok(value)
}

impl<S, T> FromRequest<S> for ApiJson<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = Problem;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        if !is_json(req.headers()) {
            let mut p = Problem::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "send Content-Type: application/json",
            );
            p.field = Some("Content-Type".into());
            return Err(p);
        }
        let bytes = Bytes::from_request(req, state).await.map_err(|rejection| {
            let mut p = Problem::new(
                rejection.status(),
                format!("body: {}", rejection.body_text()),
            );
            p.field = Some("body".into());
            p
        })?;
        parse(&bytes).map(ApiJson)
    }
}

#[cfg(test)]
mod tests {
    use serde::Deserialize;

    use super::*;

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Inner {
        name: String,
    }

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Body {
        username: String,
        password: String,
        count: Option<u32>,
        items: Option<Vec<Inner>>,
    }

    fn field(json: &str) -> String {
        parse::<Body>(json.as_bytes())
            .expect_err(json)
            .field
            .unwrap_or_default()
    }

    #[test]
    fn the_field_is_the_json_key_never_the_value() {
        for (json, expected) in [
            (r#"{"username":"a","password":123}"#, "password"),
            (r#"{"username":"a","password":"123"}"#, ""),
            (r#"{"username":true,"password":"x"}"#, "username"),
            (r#"{"username":"a","password":"x","count":-1}"#, "count"),
            (r#"{"username":"a","password":"x","count":"7"}"#, "count"),
            (
                r#"{"username":"a","password":"x","items":[{"name":1}]}"#,
                "items[0].name",
            ),
            (
                r#"{"username":"a","password":"x","items":[{}]}"#,
                "items[0].name",
            ),
            (
                r#"{"username":"a","password":"x","items":[{"name":"n","x":1}]}"#,
                "items[0].x",
            ),
            (r#"{"username":"a"}"#, "password"),
            (r#"{"username":"a","password":"x","`evil`":1}"#, "`evil`"),
            (r#"{"username":"a","password":"x","extra":1}"#, "extra"),
            (r#"[]"#, "body"),
            (r#"{"username":"a","#, "body"),
            (r#"{"username":"a","password":"x"} trailing"#, "body"),
            ("", "body"),
        ] {
            if expected.is_empty() {
                assert!(parse::<Body>(json.as_bytes()).is_ok(), "{json}");
                continue;
            }
            assert_eq!(field(json), expected, "{json}");
        }
        // The detail still says what was wrong, the invalid-params list names the field.
        let p = parse::<Body>(br#"{"username":"a","password":123}"#).expect_err("type");
        assert!(
            p.detail.starts_with("password: invalid type: integer"),
            "{}",
            p.detail
        );
        assert_eq!(p.invalid_params[0].name, "password");
    }

    #[test]
    fn json_content_types() {
        let with = |v: &str| {
            let mut h = HeaderMap::new();
            h.insert(header::CONTENT_TYPE, v.parse().expect("header"));
            is_json(&h)
        };
        assert!(with("application/json"));
        assert!(with("Application/JSON; charset=utf-8"));
        assert!(with("application/merge-patch+json"));
        assert!(!with("text/plain"));
        assert!(!with("application/jsonx"));
        assert!(!is_json(&HeaderMap::new()));
    }
}

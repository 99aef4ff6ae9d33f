//! A JSON body extractor whose rejections are problem documents naming the field.

use axum::Json;
use axum::extract::rejection::JsonRejection;
use axum::extract::{FromRequest, Request};
use axum::http::StatusCode;

use crate::problem::Problem;

/// Like `axum::Json`, but a bad body is a 400/413/415 problem+json that says which
/// field is wrong when serde can tell.
pub struct ApiJson<T>(pub T);

/// Pulls the field name out of serde's messages ("missing field `password`").
fn field_of(message: &str) -> String {
    message
        .split('`')
        .nth(1)
        .filter(|f| f.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'))
        .unwrap_or("body")
        .to_owned()
}

impl<S, T> FromRequest<S> for ApiJson<T>
where
    Json<T>: FromRequest<S, Rejection = JsonRejection>,
    S: Send + Sync,
{
    type Rejection = Problem;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        match Json::<T>::from_request(req, state).await {
            Ok(Json(v)) => Ok(ApiJson(v)),
            Err(rejection) => {
                let text = rejection.body_text();
                Err(match rejection {
                    JsonRejection::MissingJsonContentType(_) => {
                        let mut p = Problem::new(
                            StatusCode::UNSUPPORTED_MEDIA_TYPE,
                            "send Content-Type: application/json",
                        );
                        p.field = Some("Content-Type".into());
                        p
                    }
                    JsonRejection::BytesRejection(_) => {
                        let mut p =
                            Problem::new(StatusCode::PAYLOAD_TOO_LARGE, format!("body: {text}"));
                        p.field = Some("body".into());
                        p
                    }
                    _ => Problem::invalid(&field_of(&text), text),
                })
            }
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn field_names_come_from_serde_messages() {
        assert_eq!(
            super::field_of("Failed to deserialize: missing field `password` at line 1"),
            "password"
        );
        assert_eq!(super::field_of("expected value at line 1 column 1"), "body");
    }
}

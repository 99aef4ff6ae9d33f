//! Webhooks signed as Standard Webhooks v1 says: `webhook-id`, `webhook-timestamp` and
//! `webhook-signature: v1,<base64 HMAC-SHA256 of "<id>.<timestamp>.<body>">`, keyed by
//! the bytes of the `whsec_<base64>` secret. Receivers verify, reject replays by the
//! timestamp and de-duplicate by the id.

use async_trait::async_trait;
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use hmac::{Hmac, Mac};
use sha2::Sha256;

use super::{Channel, Message, SendError, answer, transport};

/// The secret's prefix.
pub const SECRET_PREFIX: &str = "whsec_";

/// A signed webhook.
pub struct Webhook {
    url: String,
    key: Vec<u8>,
}

/// The key bytes of a `whsec_<base64>` secret; `None` when it is not one.
pub fn secret_key(secret: &str) -> Option<Vec<u8>> {
    let b64 = secret.strip_prefix(SECRET_PREFIX)?;
    let key = STANDARD.decode(b64).ok()?;
    (key.len() >= 16 && key.len() <= 64).then_some(key)
}

/// A new random secret (24 bytes, as the specification's examples).
pub fn generate_secret() -> Result<String, getrandom::Error> {
    let mut key = [0u8; 24];
    getrandom::getrandom(&mut key)?;
    Ok(format!("{SECRET_PREFIX}{}", STANDARD.encode(key)))
}

/// `v1,<signature>` of a message.
pub fn sign(key: &[u8], id: &str, timestamp: i64, body: &str) -> String {
    // HMAC accepts keys of any length.
    let mut mac = match Hmac::<Sha256>::new_from_slice(key) {
        Ok(m) => m,
        Err(_) => return String::new(),
    };
    mac.update(id.as_bytes());
    mac.update(b".");
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body.as_bytes());
    format!("v1,{}", STANDARD.encode(mac.finalize().into_bytes()))
}

impl Webhook {
    /// A webhook to `url` signing with `secret` (`whsec_…`).
    pub fn new(url: String, secret: &str) -> Result<Webhook, SendError> {
        let key = secret_key(secret).ok_or_else(|| SendError {
            permanent: true,
            ..SendError::transport("the webhook secret is not a whsec_<base64> secret")
        })?;
        Ok(Webhook { url, key })
    }
}

#[async_trait]
impl Channel for Webhook {
    async fn send(&self, client: &reqwest::Client, message: Message<'_>) -> Result<u16, SendError> {
        let signature = sign(&self.key, message.id, message.timestamp, message.payload);
        let response = client
            .post(&self.url)
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .header("webhook-id", message.id)
            .header("webhook-timestamp", message.timestamp.to_string())
            .header("webhook-signature", signature)
            .body(message.payload.to_owned())
            .send()
            .await
            .map_err(transport)?;
        answer(response).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signs_the_standard_webhooks_test_vector() {
        // The specification's example (standard-webhooks, libraries' test suites).
        let key = secret_key("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").unwrap();
        let sig = sign(
            &key,
            "msg_p5jXN8AQM9LWM0D4loKWxJek",
            1614265330,
            r#"{"test": 2432232314}"#,
        );
        assert_eq!(sig, "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=");
    }

    #[test]
    fn secrets_are_checked_and_generated() {
        assert!(secret_key("MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").is_none());
        assert!(secret_key("whsec_!!").is_none());
        let s = generate_secret().unwrap();
        assert_eq!(secret_key(&s).map(|k| k.len()), Some(24));
        assert_ne!(s, generate_secret().unwrap());
    }
}

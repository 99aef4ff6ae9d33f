//! Slack-compatible incoming webhooks (Slack, Mattermost, Rocket.Chat): a JSON body
//! with `text`.

use async_trait::async_trait;

use super::{Channel, Message, SendError, answer, transport};
use crate::payload::Notification;

/// A Slack incoming webhook.
pub struct Slack {
    /// The webhook URL.
    pub url: String,
}

#[async_trait]
impl Channel for Slack {
    async fn send(&self, client: &reqwest::Client, message: Message<'_>) -> Result<u16, SendError> {
        let doc: Notification = serde_json::from_str(message.payload).map_err(|e| SendError {
            permanent: true,
            ..SendError::transport(format!("unreadable notification: {e}"))
        })?;
        let body = serde_json::json!({ "text": doc.text() });
        let response = client
            .post(&self.url)
            .json(&body)
            .send()
            .await
            .map_err(transport)?;
        answer(response).await
    }
}

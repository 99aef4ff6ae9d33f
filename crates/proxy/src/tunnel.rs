//! Protocol upgrades (WebSocket): once both sides have switched protocols, bytes are
//! copied both ways until either side closes. The handshake was inspected like any
//! request; the frames that follow are not.

use hyper::upgrade::OnUpgrade;
use hyper_util::rt::TokioIo;

/// Joins the client's and the upstream's upgraded connections in a background task.
pub fn spawn(client: OnUpgrade, upstream: OnUpgrade, request_id: String) {
    tokio::spawn(async move {
        let (client, upstream) = match tokio::try_join!(client, upstream) {
            Ok(both) => both,
            Err(error) => {
                tracing::debug!(message = "Upgrade did not complete.", request_id = %request_id, %error);
                return;
            }
        };
        let mut client = TokioIo::new(client);
        let mut upstream = TokioIo::new(upstream);
        match tokio::io::copy_bidirectional(&mut client, &mut upstream).await {
            Ok((up, down)) => {
                tracing::debug!(message = "Tunnel closed.", request_id = %request_id, bytes_up = up, bytes_down = down)
            }
            Err(error) => {
                tracing::debug!(message = "Tunnel ended with an error.", request_id = %request_id, %error)
            }
        }
    });
}

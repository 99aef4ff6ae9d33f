//! Request bodies: read into memory up to the inspection limit, and, when the policy
//! allows bodies beyond it, sent on as the inspected prefix followed by the rest of the
//! client's stream.

use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::{Bytes, BytesMut};
use http_body::{Body, Frame, SizeHint};
use http_body_util::BodyExt;
use hyper::body::Incoming;

/// The outcome of reading a body up to a limit.
pub enum Buffered {
    /// The whole body fitted.
    Complete(Bytes),
    /// The first `limit` bytes (or a little more: the frame that crossed it) and the
    /// unread remainder.
    Oversize(Bytes, Incoming),
}

/// Reads frames until the body ends or passes `limit` bytes. Trailers are dropped.
pub async fn read_limited(mut body: Incoming, limit: usize) -> Result<Buffered, hyper::Error> {
    let mut buf = BytesMut::new();
    while let Some(frame) = body.frame().await {
        if let Ok(data) = frame?.into_data() {
            buf.extend_from_slice(&data);
            if buf.len() > limit {
                return Ok(Buffered::Oversize(buf.freeze(), body));
            }
        }
    }
    Ok(Buffered::Complete(buf.freeze()))
}

/// The inspected prefix, then the rest of the client's body as it arrives.
pub struct PrefixedBody {
    prefix: Option<Bytes>,
    rest: Incoming,
}

impl PrefixedBody {
    /// Glues `prefix` in front of `rest`.
    pub fn new(prefix: Bytes, rest: Incoming) -> PrefixedBody {
        PrefixedBody {
            prefix: Some(prefix).filter(|p| !p.is_empty()),
            rest,
        }
    }
}

impl Body for PrefixedBody {
    type Data = Bytes;
    type Error = hyper::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, hyper::Error>>> {
        if let Some(prefix) = self.prefix.take() {
            return Poll::Ready(Some(Ok(Frame::data(prefix))));
        }
        Pin::new(&mut self.rest).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.prefix.is_none() && self.rest.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        let mut hint = self.rest.size_hint();
        let extra = self.prefix.as_ref().map_or(0, |p| p.len() as u64);
        // Upper first: `set_lower` insists on lower <= upper.
        if let Some(upper) = hint.upper() {
            hint.set_upper(upper.saturating_add(extra));
        }
        hint.set_lower(hint.lower().saturating_add(extra));
        hint
    }
}

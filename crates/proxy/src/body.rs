//! Request bodies: read into memory up to the inspection limit, and, when the policy
//! allows bodies beyond it, sent on as the inspected prefix followed by the rest of the
//! client's stream (which must keep coming: a pause longer than the client timeout
//! ends it, so a client cannot hold a connection by trickling an upload).

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

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

/// The client stopped sending the rest of an oversized body.
#[derive(Debug, thiserror::Error)]
#[error("the client sent nothing of its body for {0:?}")]
pub struct BodyStalled(Duration);

/// The inspected prefix, then the rest of the client's body as it arrives.
pub struct PrefixedBody {
    prefix: Option<Bytes>,
    rest: Incoming,
    idle: Duration,
    deadline: Pin<Box<tokio::time::Sleep>>,
}

impl PrefixedBody {
    /// Glues `prefix` in front of `rest`; `idle` is the longest pause allowed between
    /// two pieces of `rest`.
    pub fn new(prefix: Bytes, rest: Incoming, idle: Duration) -> PrefixedBody {
        PrefixedBody {
            prefix: Some(prefix).filter(|p| !p.is_empty()),
            rest,
            idle,
            deadline: Box::pin(tokio::time::sleep(idle)),
        }
    }
}

impl Body for PrefixedBody {
    type Data = Bytes;
    type Error = crate::BoxError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, crate::BoxError>>> {
        if let Some(prefix) = self.prefix.take() {
            let next = tokio::time::Instant::now() + self.idle;
            self.deadline.as_mut().reset(next);
            return Poll::Ready(Some(Ok(Frame::data(prefix))));
        }
        match Pin::new(&mut self.rest).poll_frame(cx) {
            Poll::Ready(frame) => {
                let next = tokio::time::Instant::now() + self.idle;
                self.deadline.as_mut().reset(next);
                Poll::Ready(frame.map(|f| f.map_err(Into::into)))
            }
            Poll::Pending => {
                if self.deadline.as_mut().poll(cx).is_ready() {
                    let idle = self.idle;
                    return Poll::Ready(Some(Err(Box::new(BodyStalled(idle)))));
                }
                Poll::Pending
            }
        }
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

//! The request a log line describes: what the signature stage over stored events, the
//! engine's bench and its instruction-count example all inspect. One conversion, so
//! what is measured is what ingest inspects.

use palisade_core::{Event, EventKind};

use crate::request::HttpRequest;

impl HttpRequest {
    /// Rebuilds, from a log event, the part of the request a log keeps: method,
    /// target, protocol and the headers logs usually carry. `None` for events that are
    /// not requests.
    pub fn from_log_event(event: &Event) -> Option<HttpRequest> {
        let mut request = HttpRequest {
            headers: Vec::with_capacity(3),
            ..HttpRequest::default()
        };
        request.refill_from_log_event(event).then_some(request)
    }

    /// [`HttpRequest::from_log_event`] into this request, reusing its buffers (ingest
    /// rebuilds a request for every stored line: copying into kept buffers saves an
    /// allocation and a free per field and line). False, the request unspecified, for
    /// events that are not requests.
    pub fn refill_from_log_event(&mut self, event: &Event) -> bool {
        if event.kind != EventKind::Http {
            return false;
        }
        let Some(path) = event.path.as_deref() else {
            return false;
        };
        self.uri.clear();
        self.uri.push_str(path);
        if let Some(query) = event.query.as_deref() {
            self.uri.push('?');
            self.uri.push_str(query);
        }
        set(&mut self.method, event.method.as_deref().unwrap_or("GET"));
        set(
            &mut self.protocol,
            event.protocol.as_deref().unwrap_or("HTTP/1.1"),
        );
        // Most log formats do not record the Host header: its absence from a log line
        // says nothing about the request, so it must not read as a protocol anomaly.
        let host = event.host.as_deref().unwrap_or("unrecorded");
        let headers = [
            Some(("host", host)),
            event.user_agent.as_deref().map(|ua| ("user-agent", ua)),
            event.referer.as_deref().map(|r| ("referer", r)),
        ];
        let mut n = 0;
        for (name, value) in headers.into_iter().flatten() {
            match self.headers.get_mut(n) {
                Some((k, v)) => {
                    set(k, name);
                    set(v, value);
                }
                None => self.headers.push((name.to_owned(), value.to_owned())),
            }
            n += 1;
        }
        self.headers.truncate(n);
        self.body.clear();
        self.client_ip = event.client_ip;
        true
    }
}

/// `target = value`, in `target`'s buffer.
fn set(target: &mut String, value: &str) {
    target.clear();
    target.push_str(value);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_reused_request_keeps_nothing_of_the_line_before() {
        let full = Event {
            kind: EventKind::Http,
            method: Some("POST".into()),
            path: Some("/login".into()),
            query: Some("next=%2F".into()),
            protocol: Some("HTTP/2.0".into()),
            host: Some("shop".into()),
            user_agent: Some("curl/8".into()),
            referer: Some("https://a/".into()),
            client_ip: Some("192.0.2.1".parse().unwrap()),
            ..Event::default()
        };
        let bare = Event {
            kind: EventKind::Http,
            path: Some("/".into()),
            ..Event::default()
        };
        let mut request = HttpRequest::default();
        for event in [&full, &bare, &full, &bare] {
            assert!(request.refill_from_log_event(event));
            let fresh = HttpRequest::from_log_event(event).unwrap();
            assert_eq!(request.method, fresh.method);
            assert_eq!(request.uri, fresh.uri);
            assert_eq!(request.protocol, fresh.protocol);
            assert_eq!(request.headers, fresh.headers);
            assert_eq!(request.client_ip, fresh.client_ip);
            assert!(request.body.is_empty());
        }
        assert_eq!(
            request.headers,
            vec![("host".to_owned(), "unrecorded".to_owned())]
        );
        assert_eq!(request.method, "GET");
        assert_eq!(request.uri, "/");
        assert!(!request.refill_from_log_event(&Event {
            kind: EventKind::Auth,
            ..full.clone()
        }));
    }
}

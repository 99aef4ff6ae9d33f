//! E-mail over SMTP (RFC 5321): STARTTLS on the submission port (the default), implicit
//! TLS (port 465) or, for a relay on loopback, plain text; `AUTH PLAIN` with the
//! password from the secrets store, never over plain text. One connection per message:
//! notifications are rare and grouped, so a pooled session would buy nothing and hold
//! a socket open.
//!
//! Replies map onto the delivery rules: a 4xx reply or a broken connection is retried,
//! a 5xx reply (a refused recipient, bad credentials) is permanent.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use base64::Engine as _;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};
use serde::{Deserialize, Serialize};
use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncWrite, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

use super::{Channel, Message, SendError};
use crate::payload::Notification;

/// How the connection to the relay is protected.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Security {
    /// Plain connection upgraded with STARTTLS (port 587); refused if the relay does
    /// not offer it.
    #[default]
    Starttls,
    /// TLS from the first byte (port 465).
    Tls,
    /// No TLS: only for a relay on loopback, and never with credentials.
    None,
}

/// One e-mail channel, built from its spec and password.
pub struct Email {
    /// Relay host name (also the TLS server name).
    pub host: String,
    /// Relay port.
    pub port: u16,
    /// Connection protection.
    pub security: Security,
    /// `AUTH PLAIN` user, with `password`.
    pub username: Option<String>,
    /// The password from the secrets store.
    pub password: Option<String>,
    /// Envelope and header sender.
    pub from: String,
    /// Recipients.
    pub to: Vec<String>,
    /// Extra trusted CA certificates (PEM) for a relay with a private CA.
    pub ca_pem: Option<String>,
    /// Per-step timeout (connect, each reply).
    pub timeout: Duration,
}

/// A reply: its code and text (the last line of a multi-line reply).
struct Reply {
    code: u16,
    text: String,
}

fn failed(code: Option<u16>, message: String) -> SendError {
    SendError {
        status: code,
        retry_after: None,
        permanent: code.is_some_and(|c| c >= 500),
        message,
    }
}

/// Reads one (possibly multi-line) reply.
async fn reply<S: AsyncRead + Unpin>(
    reader: &mut BufReader<S>,
    timeout: Duration,
) -> Result<Reply, SendError> {
    let mut lines = Vec::new();
    loop {
        let mut line = String::new();
        let n = tokio::time::timeout(timeout, reader.read_line(&mut line))
            .await
            .map_err(|_| SendError::transport("the SMTP relay did not answer in time"))?
            .map_err(|e| SendError::transport(format!("SMTP connection failed: {e}")))?;
        if n == 0 {
            return Err(SendError::transport("the SMTP relay closed the connection"));
        }
        if line.len() > 4096 || lines.len() > 100 {
            return Err(SendError::transport("the SMTP relay's reply is too long"));
        }
        let line = line.trim_end().to_owned();
        let code = line
            .get(..3)
            .and_then(|c| c.parse::<u16>().ok())
            .ok_or_else(|| SendError::transport(format!("not an SMTP reply: {line:?}")))?;
        let last = line.as_bytes().get(3) != Some(&b'-');
        lines.push(line);
        if last {
            return Ok(Reply {
                code,
                text: lines.join(" | "),
            });
        }
    }
}

/// Sends one command and checks the reply's class (`2` or `3`).
async fn command<S: AsyncRead + AsyncWrite + Unpin>(
    stream: &mut BufReader<S>,
    line: &str,
    shown: &str,
    want: u16,
    timeout: Duration,
) -> Result<Reply, SendError> {
    stream
        .get_mut()
        .write_all(format!("{line}\r\n").as_bytes())
        .await
        .map_err(|e| SendError::transport(format!("SMTP write failed: {e}")))?;
    let r = reply(stream, timeout).await?;
    if r.code / 100 != want {
        return Err(failed(
            Some(r.code),
            format!("SMTP {shown}: the relay answered {}", r.text),
        ));
    }
    Ok(r)
}

/// The message: headers, a blank line and the body with CRLF line ends, dot-stuffed
/// (RFC 5321 4.5.2), ending with the lone dot.
fn data(from: &str, to: &[String], subject: &str, body: &str, id: &str, date: &str) -> String {
    let mut out = String::with_capacity(body.len() + 512);
    let clean = |s: &str| s.replace(['\r', '\n'], " ");
    out.push_str(&format!("From: {}\r\n", clean(from)));
    out.push_str(&format!("To: {}\r\n", clean(&to.join(", "))));
    out.push_str(&format!("Subject: {}\r\n", encode_header(&clean(subject))));
    out.push_str(&format!("Date: {date}\r\n"));
    out.push_str(&format!("Message-ID: <{}@palisade>\r\n", clean(id)));
    out.push_str("MIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n");
    out.push_str("Content-Transfer-Encoding: 8bit\r\n\r\n");
    for line in body.lines() {
        if line.starts_with('.') {
            out.push('.');
        }
        out.push_str(line);
        out.push_str("\r\n");
    }
    out.push_str(".\r\n");
    out
}

/// RFC 2047 encoded-word for a subject that is not plain ASCII.
fn encode_header(s: &str) -> String {
    if s.is_ascii() {
        s.to_owned()
    } else {
        format!(
            "=?utf-8?B?{}?=",
            base64::engine::general_purpose::STANDARD.encode(s)
        )
    }
}

/// A bare address for the envelope (`Name <a@b>` → `a@b`).
fn envelope(address: &str) -> &str {
    match (address.rfind('<'), address.rfind('>')) {
        (Some(a), Some(b)) if a < b => &address[a + 1..b],
        _ => address.trim(),
    }
}

/// The process's TLS provider when one is installed, else *ring*: the provider the
/// HTTP client already compiles in (aws-lc-rs, the post-quantum one, would add a C
/// build for the same TLS 1.2/1.3 a mail relay speaks).
fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    rustls::crypto::CryptoProvider::get_default()
        .cloned()
        .unwrap_or_else(|| {
            #[allow(deprecated)]
            let ring = rustls::crypto::ring::default_provider();
            Arc::new(ring)
        })
}

impl Email {
    fn tls(&self) -> Result<tokio_rustls::TlsConnector, SendError> {
        let mut roots = rustls::RootCertStore::empty();
        roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
        if let Some(pem) = &self.ca_pem {
            for cert in CertificateDer::pem_slice_iter(pem.as_bytes()) {
                let cert = cert.map_err(|e| SendError {
                    permanent: true,
                    ..SendError::transport(format!("ca_pem: {e}"))
                })?;
                roots.add(cert).map_err(|e| SendError {
                    permanent: true,
                    ..SendError::transport(format!("ca_pem: {e}"))
                })?;
            }
        }
        let config = rustls::ClientConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()
            .map_err(|e| SendError::transport(format!("TLS set-up: {e}")))?
            .with_root_certificates(roots)
            .with_no_client_auth();
        Ok(tokio_rustls::TlsConnector::from(Arc::new(config)))
    }

    fn server_name(&self) -> Result<ServerName<'static>, SendError> {
        ServerName::try_from(self.host.clone()).map_err(|e| SendError {
            permanent: true,
            ..SendError::transport(format!("host: not a TLS server name: {e}"))
        })
    }

    /// The session after the connection is protected (or not): EHLO, AUTH, the
    /// envelope, the message.
    async fn session<S: AsyncRead + AsyncWrite + Unpin>(
        &self,
        stream: &mut BufReader<S>,
        message: &[u8],
        greeted: bool,
    ) -> Result<u16, SendError> {
        let t = self.timeout;
        if !greeted {
            let hello = reply(stream, t).await?;
            if hello.code != 220 {
                return Err(failed(
                    Some(hello.code),
                    format!("SMTP greeting: {}", hello.text),
                ));
            }
        }
        command(stream, "EHLO palisade", "EHLO", 2, t).await?;
        if let (Some(user), Some(password)) = (&self.username, &self.password) {
            let token =
                base64::engine::general_purpose::STANDARD.encode(format!("\0{user}\0{password}"));
            command(stream, &format!("AUTH PLAIN {token}"), "AUTH", 2, t).await?;
        }
        command(
            stream,
            &format!("MAIL FROM:<{}>", envelope(&self.from)),
            "MAIL FROM",
            2,
            t,
        )
        .await?;
        for to in &self.to {
            command(
                stream,
                &format!("RCPT TO:<{}>", envelope(to)),
                &format!("RCPT TO {to}"),
                2,
                t,
            )
            .await?;
        }
        command(stream, "DATA", "DATA", 3, t).await?;
        stream
            .get_mut()
            .write_all(message)
            .await
            .map_err(|e| SendError::transport(format!("SMTP write failed: {e}")))?;
        let accepted = reply(stream, t).await?;
        if accepted.code / 100 != 2 {
            return Err(failed(
                Some(accepted.code),
                format!("SMTP message refused: {}", accepted.text),
            ));
        }
        // The message is accepted; a failed QUIT changes nothing.
        let _ = stream.get_mut().write_all(b"QUIT\r\n").await;
        let _ = stream.get_mut().flush().await;
        Ok(accepted.code)
    }
}

#[async_trait]
impl Channel for Email {
    async fn send(
        &self,
        _client: &reqwest::Client,
        message: Message<'_>,
    ) -> Result<u16, SendError> {
        let doc: Notification = serde_json::from_str(message.payload).map_err(|e| SendError {
            permanent: true,
            ..SendError::transport(format!("unreadable notification: {e}"))
        })?;
        let subject = doc.text();
        let body = format!(
            "{subject}\n\n{}\n\n-- \nPalisade ({}, notification {})\n",
            serde_json::to_string_pretty(&doc.data).unwrap_or_default(),
            doc.kind,
            message.id
        );
        let date = httpdate::fmt_http_date(
            std::time::UNIX_EPOCH
                + Duration::from_secs(u64::try_from(message.timestamp).unwrap_or_default()),
        )
        .replace("GMT", "+0000");
        let text = data(&self.from, &self.to, &subject, &body, message.id, &date);
        let tcp = tokio::time::timeout(
            self.timeout,
            TcpStream::connect((self.host.as_str(), self.port)),
        )
        .await
        .map_err(|_| SendError::transport("connecting to the SMTP relay timed out"))?
        .map_err(|e| SendError::transport(format!("cannot connect to the SMTP relay: {e}")))?;
        match self.security {
            Security::None => {
                self.session(&mut BufReader::new(tcp), text.as_bytes(), false)
                    .await
            }
            Security::Tls => {
                let tls = tokio::time::timeout(
                    self.timeout,
                    self.tls()?.connect(self.server_name()?, tcp),
                )
                .await
                .map_err(|_| SendError::transport("the TLS handshake timed out"))?
                .map_err(|e| SendError::transport(format!("TLS handshake failed: {e}")))?;
                self.session(&mut BufReader::new(tls), text.as_bytes(), false)
                    .await
            }
            Security::Starttls => {
                let mut plain = BufReader::new(tcp);
                let t = self.timeout;
                let hello = reply(&mut plain, t).await?;
                if hello.code != 220 {
                    return Err(failed(
                        Some(hello.code),
                        format!("SMTP greeting: {}", hello.text),
                    ));
                }
                let ehlo = command(&mut plain, "EHLO palisade", "EHLO", 2, t).await?;
                if !ehlo.text.to_ascii_uppercase().contains("STARTTLS") {
                    return Err(SendError {
                        permanent: true,
                        ..SendError::transport(
                            "the SMTP relay does not offer STARTTLS (security = \"starttls\")",
                        )
                    });
                }
                command(&mut plain, "STARTTLS", "STARTTLS", 2, t).await?;
                // Nothing the relay sent before the handshake may be read as TLS.
                if !plain.buffer().is_empty() {
                    return Err(SendError::transport(
                        "the SMTP relay sent data before the TLS handshake",
                    ));
                }
                let tls = tokio::time::timeout(
                    t,
                    self.tls()?.connect(self.server_name()?, plain.into_inner()),
                )
                .await
                .map_err(|_| SendError::transport("the TLS handshake timed out"))?
                .map_err(|e| SendError::transport(format!("TLS handshake failed: {e}")))?;
                self.session(&mut BufReader::new(tls), text.as_bytes(), true)
                    .await
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_are_dot_stuffed_and_headers_cannot_be_injected() {
        let m = data(
            "Palisade <alerts@example.com>",
            &["soc@example.com".into()],
            "[FIRING] x\r\nBcc: evil@example.com",
            "line one\n.starts with a dot\n",
            "abc",
            "Sat, 05 Dec 2026 22:00:00 +0000",
        );
        assert!(m.contains("\r\n..starts with a dot\r\n"));
        assert!(m.ends_with("\r\n.\r\n"));
        assert!(!m.contains("\r\nBcc:"), "{m}");
        assert!(m.contains("Subject: [FIRING] x  Bcc: evil@example.com\r\n"));
    }

    #[test]
    fn envelopes_and_encoded_subjects() {
        assert_eq!(
            envelope("Palisade <alerts@example.com>"),
            "alerts@example.com"
        );
        assert_eq!(envelope(" soc@example.com "), "soc@example.com");
        assert_eq!(encode_header("plain"), "plain");
        assert!(encode_header("Angriff erkannt – ü").starts_with("=?utf-8?B?"));
    }
}

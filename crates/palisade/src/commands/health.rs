//! `palisade health`: asks a running service's `/readyz`, for container health checks
//! and scripts, with nothing but a TCP socket (no HTTP client in the image).

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context as _;

use crate::config::Overrides;

/// Exit 0 when `/readyz` answers 200, 1 otherwise (printing why).
pub fn run(o: &Overrides, address: Option<&str>) -> anyhow::Result<ExitCode> {
    let target: SocketAddr = match address {
        Some(a) => a
            .parse()
            .with_context(|| format!("--address: '{a}' is not host:port"))?,
        None => {
            let listen = super::settings(o)?.listen;
            if listen.ip().is_unspecified() {
                SocketAddr::new(
                    if listen.is_ipv4() {
                        std::net::Ipv4Addr::LOCALHOST.into()
                    } else {
                        std::net::Ipv6Addr::LOCALHOST.into()
                    },
                    listen.port(),
                )
            } else {
                listen
            }
        }
    };
    match ask_ready(target) {
        Ok((200, _)) => {
            println!("ready ({target})");
            Ok(ExitCode::SUCCESS)
        }
        Ok((status, body)) => {
            println!("not ready ({target}): {status} {}", body.trim());
            Ok(ExitCode::FAILURE)
        }
        Err(error) => {
            println!("not reachable ({target}): {error}");
            Ok(ExitCode::FAILURE)
        }
    }
}

/// `GET /readyz` over HTTP/1.0; the status code and the body.
fn ask_ready(target: SocketAddr) -> std::io::Result<(u16, String)> {
    let mut stream = TcpStream::connect_timeout(&target, Duration::from_secs(3))?;
    stream.set_read_timeout(Some(Duration::from_secs(3)))?;
    stream.write_all(b"GET /readyz HTTP/1.0\r\nHost: localhost\r\n\r\n")?;
    let mut answer = Vec::new();
    stream.take(64 * 1024).read_to_end(&mut answer)?;
    let text = String::from_utf8_lossy(&answer);
    let status = text
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let body = text
        .split_once("\r\n\r\n")
        .map_or("", |(_, b)| b)
        .to_owned();
    Ok((status, body))
}

//! What the proxy's black-box tests share: a proxy on a real engine, real upstreams
//! (a raw socket server that records bytes, nginx, Node's `http`) and raw HTTP/1.1
//! over sockets.

#![allow(dead_code)]

use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use palisade_core::ShutdownTrigger;
use palisade_core::threat::Threat;
use palisade_detect::EngineConfig;
use palisade_pipeline::Guard;
use palisade_pipeline::detection::{Detection, Mode};
use palisade_pipeline::recorder::ThreatRecorder;
use palisade_proxy::{BoundProxy, ProxyConfig, ProxyContext, TrafficContext, Upstream};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;

/// A running proxy.
pub struct Proxy {
    pub addr: SocketAddr,
    pub threats: mpsc::Receiver<Threat>,
    pub detection: Arc<Detection>,
    pub stop: ShutdownTrigger,
}

/// A proxy named `shop` in block mode in front of `upstream`.
pub async fn proxy(
    upstream: &str,
    traffic: Option<TrafficContext>,
    tune: impl FnOnce(&mut ProxyConfig),
) -> Proxy {
    let detection = Arc::new(Detection::builtin(EngineConfig::default(), Mode::Block).unwrap());
    let (threats, rx) = ThreatRecorder::channel(1000);
    let mut config = ProxyConfig::new(
        "127.0.0.1:0".parse().unwrap(),
        Upstream::parse(upstream).unwrap(),
    );
    config.name = "shop".into();
    tune(&mut config);
    let mut context = ProxyContext::new(Guard::new(detection.clone(), None, threats));
    context.traffic = traffic;
    let bound = BoundProxy::bind(config, context).await.unwrap();
    let addr = bound.local_addr().unwrap();
    let stop = ShutdownTrigger::new();
    tokio::spawn(bound.serve(stop.subscribe()));
    Proxy {
        addr,
        threats: rx,
        detection,
        stop,
    }
}

impl Proxy {
    /// The next threat recorded (waits up to 5 s).
    pub async fn threat(&mut self) -> Threat {
        tokio::time::timeout(Duration::from_secs(5), self.threats.recv())
            .await
            .expect("a threat is recorded")
            .expect("recorder open")
    }
}

/// One HTTP/1.1 answer read off a socket.
#[derive(Debug)]
pub struct Answer {
    pub status: u16,
    /// The head as sent (status line and headers, case kept).
    pub head: String,
    pub body: Vec<u8>,
}

impl Answer {
    /// A header's value (name compared without case).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.head.lines().skip(1).find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.trim().eq_ignore_ascii_case(name).then(|| v.trim())
        })
    }
}

/// Reads one answer with a `Content-Length` body (or none) from `s`.
pub async fn read_answer(s: &mut TcpStream) -> Answer {
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        let n = tokio::time::timeout(Duration::from_secs(10), s.read(&mut byte))
            .await
            .expect("an answer within 10 s")
            .expect("read");
        assert_eq!(
            n,
            1,
            "connection closed mid-head: {:?}",
            String::from_utf8_lossy(&head)
        );
        head.push(byte[0]);
    }
    let head = String::from_utf8_lossy(&head).into_owned();
    let status = head
        .split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .expect("status");
    let mut answer = Answer {
        status,
        head,
        body: Vec::new(),
    };
    let len: usize = answer
        .header("content-length")
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    let mut body = vec![0u8; len];
    tokio::time::timeout(Duration::from_secs(10), s.read_exact(&mut body))
        .await
        .expect("a body within 10 s")
        .expect("body");
    answer.body = body;
    answer
}

/// Sends raw bytes on a new connection and reads one answer.
pub async fn exchange(addr: SocketAddr, raw: &[u8]) -> (TcpStream, Answer) {
    let mut s = TcpStream::connect(addr).await.unwrap();
    s.write_all(raw).await.unwrap();
    let answer = read_answer(&mut s).await;
    (s, answer)
}

/// Whether the peer closed `s` (reads EOF within 5 s).
pub async fn closed(s: &mut TcpStream) -> bool {
    let mut buf = [0u8; 64];
    matches!(
        tokio::time::timeout(Duration::from_secs(5), s.read(&mut buf)).await,
        Ok(Ok(0)) | Ok(Err(_))
    )
}

/// The bytes each connection to the raw upstream carried, in accept order.
pub type Recorded = Arc<Mutex<Vec<Vec<u8>>>>;

/// An upstream that records every byte per connection and answers each request head
/// at once with `raw saw <target>` (ignoring any announced body, the way an upstream
/// that answers first and discards later sees the stream).
pub async fn raw_upstream() -> (SocketAddr, Recorded) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let log: Recorded = Arc::default();
    let l = log.clone();
    tokio::spawn(async move {
        while let Ok((mut s, _)) = listener.accept().await {
            let idx = {
                let mut g = l.lock().unwrap();
                g.push(Vec::new());
                g.len() - 1
            };
            let l = l.clone();
            tokio::spawn(async move {
                let mut buf = [0u8; 4096];
                let mut pending = Vec::new();
                loop {
                    let n = match s.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => n,
                    };
                    l.lock().unwrap()[idx].extend_from_slice(&buf[..n]);
                    pending.extend_from_slice(&buf[..n]);
                    while let Some(end) = pending.windows(4).position(|w| w == b"\r\n\r\n") {
                        let head = String::from_utf8_lossy(&pending[..end]).into_owned();
                        pending.drain(..end + 4);
                        let target = head.split(' ').nth(1).unwrap_or("?").to_owned();
                        let body = format!("raw saw {target}\n");
                        let answer = format!(
                            "HTTP/1.1 200 OK\r\nContent-Length: {}\r\n\r\n{body}",
                            body.len()
                        );
                        if s.write_all(answer.as_bytes()).await.is_err() {
                            return;
                        }
                    }
                }
            });
        }
    });
    (addr, log)
}

/// A child process stopped (and reaped) when dropped.
pub struct ChildGuard(pub Child);

impl Drop for ChildGuard {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A free loopback port.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("port")
}

/// Waits until something accepts connections on `port`.
pub async fn wait_listening(port: u16) {
    for _ in 0..200 {
        if TcpStream::connect(("127.0.0.1", port)).await.is_ok() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("nothing listens on {port}");
}

/// Whether the port no longer accepts connections (the process that had it is gone).
pub async fn port_closed(port: u16) -> bool {
    TcpStream::connect(("127.0.0.1", port)).await.is_err()
}

/// nginx, when installed (else `None`, or a failure unless `PALISADE_SKIP_NGINX=1`).
pub fn nginx_binary() -> Option<String> {
    let found = ["/usr/sbin/nginx", "/usr/local/sbin/nginx"]
        .iter()
        .find(|p| Path::new(p).exists())
        .map(|p| (*p).to_owned());
    if found.is_none() {
        assert!(
            std::env::var("PALISADE_SKIP_NGINX").is_ok_and(|v| v == "1"),
            "nginx is not installed (scripts/test.sh installs it; PALISADE_SKIP_NGINX=1 skips)"
        );
    }
    found
}

/// nginx as an upstream: one process (`master_process off`, so stopping it leaves no
/// worker behind), answering `nginx saw <uri>` and logging each request line to
/// `access.log` in `dir`.
pub async fn nginx_upstream(dir: &Path) -> Option<(u16, ChildGuard)> {
    let nginx = nginx_binary()?;
    let port = free_port();
    let is_root = Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| o.stdout.starts_with(b"0"));
    let user = if is_root { "user root;" } else { "" };
    let r = dir.display();
    let conf = format!(
        "{user}\ndaemon off;\nmaster_process off;\nworker_processes 1;\npid {r}/nginx.pid;\n\
         error_log {r}/error.log warn;\nevents {{ worker_connections 64; }}\nhttp {{\n\
         client_body_temp_path {r}/body;\nproxy_temp_path {r}/proxy;\nfastcgi_temp_path {r}/fastcgi;\n\
         uwsgi_temp_path {r}/uwsgi;\nscgi_temp_path {r}/scgi;\n\
         log_format line '$request';\naccess_log {r}/access.log line;\n\
         server {{ listen 127.0.0.1:{port}; location / {{ return 200 \"nginx saw $request_uri\\n\"; }} }}\n}}\n"
    );
    std::fs::write(dir.join("nginx.conf"), conf).unwrap();
    let child = Command::new(nginx)
        .arg("-p")
        .arg(dir)
        .arg("-c")
        .arg(dir.join("nginx.conf"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("nginx");
    let guard = ChildGuard(child);
    wait_listening(port).await;
    Some((port, guard))
}

/// Node's `http` server as an upstream, answering `node saw <url>` and, at
/// `/__seen`, the request lines it parsed so far (JSON).
pub async fn node_upstream() -> (u16, ChildGuard) {
    let script = r#"
const http = require('http');
const seen = [];
const server = http.createServer((req, res) => {
  if (req.url === '/__seen') { res.end(JSON.stringify(seen)); return; }
  seen.push(req.method + ' ' + req.url);
  req.resume();
  req.on('end', () => res.end('node saw ' + req.url + '\n'));
});
server.listen(0, '127.0.0.1', () => console.log(server.address().port));
"#;
    let mut child = Command::new("node")
        .arg("-e")
        .arg(script)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("node is installed");
    let stdout = child.stdout.take().expect("stdout");
    let guard = ChildGuard(child);
    let port = tokio::task::spawn_blocking(move || {
        use std::io::BufRead;
        let mut line = String::new();
        std::io::BufReader::new(stdout)
            .read_line(&mut line)
            .expect("port line");
        line.trim().parse::<u16>().expect("a port")
    })
    .await
    .unwrap();
    wait_listening(port).await;
    (port, guard)
}

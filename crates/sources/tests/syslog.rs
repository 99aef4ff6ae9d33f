//! The syslog listener end to end: real UDP and TCP sockets on 127.0.0.1, the real
//! writer and a SQLite store in a temporary directory, checking what was stored.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use palisade_core::event::StoredEvent;
use palisade_core::{EventKind, ShutdownTrigger};
use palisade_sources::syslog::{BoundAddrs, SyslogConfig, serve};
use palisade_sources::{BatchWriter, SourceRegistry, SourceState, SourceStatus, WriterConfig};
use palisade_store::{DeadLetterQuery, EventQuery, SharedStore};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream, UdpSocket};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

struct Harness {
    _dir: tempfile::TempDir,
    store: SharedStore,
    status: Arc<SourceStatus>,
    stop: ShutdownTrigger,
    server: JoinHandle<()>,
    writer_task: JoinHandle<()>,
    bound: BoundAddrs,
}

fn local() -> SocketAddr {
    "127.0.0.1:0".parse().unwrap()
}

async fn start(mut config: SyslogConfig) -> Harness {
    let dir = tempfile::tempdir().unwrap();
    let store = palisade_store::open("sqlite://syslog.db", dir.path()).unwrap();
    store.migrate().await.unwrap();
    let stop = ShutdownTrigger::new();
    let shutdown = stop.subscribe();
    let (writer, writer_task) = BatchWriter::spawn(
        store.clone(),
        WriterConfig::default(),
        &palisade_core::supervisor::Supervisor::new(shutdown.clone()),
    );
    config.year = Some(2015);
    let status = SourceRegistry::default().register(&config.name, "syslog", &config.target());
    let (tx, rx) = oneshot::channel();
    let server = tokio::spawn(serve(config, writer, status.clone(), shutdown, Some(tx)));
    let bound = tokio::time::timeout(Duration::from_secs(10), rx)
        .await
        .expect("bound in time")
        .expect("bound");
    assert_eq!(status.state(), SourceState::Running);
    Harness {
        _dir: dir,
        store,
        status,
        stop,
        server,
        writer_task,
        bound,
    }
}

impl Harness {
    /// Waits until `n` rows (events + dead letters) are stored; returns the events,
    /// oldest first.
    async fn wait_for(&self, events: usize, dead_letters: usize) -> Vec<StoredEvent> {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let ev = self.events().await;
            let dl = self.dead_letters().await;
            if ev.len() >= events && dl.len() >= dead_letters {
                assert_eq!((ev.len(), dl.len()), (events, dead_letters));
                return ev;
            }
            assert!(
                Instant::now() < deadline,
                "stored {} events and {} dead letters, waiting for {events} and {dead_letters}",
                ev.len(),
                dl.len()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    async fn events(&self) -> Vec<StoredEvent> {
        let q = EventQuery {
            limit: 500,
            ..EventQuery::default()
        };
        let mut items = self.store.query_events(&q).await.unwrap().items;
        items.sort_by_key(|e| e.id);
        items
    }

    async fn dead_letters(&self) -> Vec<palisade_core::dead_letter::StoredDeadLetter> {
        let q = DeadLetterQuery {
            limit: 500,
            ..DeadLetterQuery::default()
        };
        self.store.query_dead_letters(&q).await.unwrap().items
    }

    async fn stop(self) {
        self.stop.trigger();
        tokio::time::timeout(Duration::from_secs(10), self.server)
            .await
            .expect("listener stops on shutdown")
            .unwrap();
        assert_eq!(self.status.state(), SourceState::Stopped);
        // The writer ends once every handle (the listener's) is dropped.
        tokio::time::timeout(Duration::from_secs(10), self.writer_task)
            .await
            .expect("writer stops")
            .unwrap();
    }
}

fn extra<'a>(ev: &'a StoredEvent, key: &str) -> Option<&'a str> {
    ev.event
        .extra
        .iter()
        .find(|(k, _)| k == key)
        .map(|(_, v)| v.as_str())
}

fn config(udp: bool, tcp: bool) -> SyslogConfig {
    let mut c = SyslogConfig::new("syslog-test");
    c.udp = udp.then(local);
    c.tcp = tcp.then(local);
    c
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rfc3164_over_udp_is_stored_promptly() {
    let h = start(config(true, false)).await;
    let sock = UdpSocket::bind(local()).await.unwrap();
    let started = Instant::now();
    sock.send_to(
        b"<38>Dec 10 06:55:48 LabSZ sshd[24200]: Failed password for invalid user webmaster from 173.234.31.186 port 38926 ssh2\n",
        h.bound.udp.unwrap(),
    )
    .await
    .unwrap();
    let events = h.wait_for(1, 0).await;
    // One message is written on the flush timer, not held for a full batch.
    assert!(started.elapsed() < Duration::from_secs(3));
    let ev = &events[0];
    assert_eq!(ev.event.source, "syslog-test");
    assert_eq!(ev.event.kind, EventKind::Auth);
    assert_eq!(ev.event.ts.to_string(), "2015-12-10T06:55:48Z");
    assert_eq!(ev.event.host.as_deref(), Some("LabSZ"));
    assert_eq!(ev.event.user.as_deref(), Some("webmaster"));
    assert_eq!(ev.event.client_ip, Some("173.234.31.186".parse().unwrap()));
    assert_eq!(extra(ev, "outcome"), Some("failure"));
    assert_eq!(extra(ev, "facility"), Some("auth"));
    assert_eq!(extra(ev, "severity"), Some("info"));
    assert_eq!(extra(ev, "peer"), Some("127.0.0.1"));
    // A message without a host name gets the sender's address.
    sock.send_to(b"<13>Dec 10 06:55:49 cron[1]: tick", h.bound.udp.unwrap())
        .await
        .unwrap();
    let events = h.wait_for(2, 0).await;
    assert_eq!(events[1].event.host.as_deref(), Some("127.0.0.1"));
    assert_eq!(events[1].event.kind, EventKind::Syslog);
    let snap = h.status.snapshot();
    assert_eq!((snap.lines, snap.events, snap.dead_letters), (2, 2, 0));
    assert_eq!(snap.format.as_deref(), Some("syslog"));
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rfc5424_over_tcp_with_octet_counting_batching_and_splits() {
    let h = start(config(false, true)).await;
    let mut conn = TcpStream::connect(h.bound.tcp.unwrap()).await.unwrap();
    let m1 = r#"<165>1 2003-10-11T22:14:15.003Z mymachine.example.com evntslog - ID47 [exampleSDID@32473 iut="3" eventSource="Application"] An application event log entry..."#;
    let m2 = "<86>1 2024-05-01T10:00:00Z web1 sshd 812 - - Accepted publickey for deploy from 2001:db8::5 port 50022 ssh2: ED25519 SHA256:x";
    // Several messages in one segment, octet-counted and LF-framed mixed.
    let mut segment = format!("{} {m1}{} {m2}", m1.len(), m2.len()).into_bytes();
    segment.extend_from_slice(
        b"<38>Dec 10 07:00:00 LabSZ sshd[1]: Invalid user admin from 10.9.8.7\n",
    );
    conn.write_all(&segment).await.unwrap();
    conn.flush().await.unwrap();
    let events = h.wait_for(3, 0).await;
    assert_eq!(
        events[0].event.ts.to_string(),
        "2003-10-11T22:14:15.003000Z"
    );
    assert_eq!(extra(&events[0], "msgid"), Some("ID47"));
    assert_eq!(extra(&events[0], "sd.exampleSDID@32473.iut"), Some("3"));
    assert_eq!(
        events[0].event.message.as_deref(),
        Some("An application event log entry...")
    );
    assert_eq!(events[1].event.kind, EventKind::Auth);
    assert_eq!(extra(&events[1], "outcome"), Some("success"));
    assert_eq!(extra(&events[1], "auth_method"), Some("publickey"));
    assert_eq!(
        events[1].event.client_ip,
        Some("2001:db8::5".parse().unwrap())
    );
    assert_eq!(extra(&events[2], "outcome"), Some("invalid_user"));

    // One message split over two writes, the cut inside the length prefix and again
    // inside the body.
    let m3 = "<38>1 2024-05-01T10:00:01Z web1 sshd 813 - - Failed password for root from 10.0.0.7 port 4242 ssh2";
    let framed = format!("{} {m3}", m3.len());
    let (a, b) = framed.split_at(1);
    conn.write_all(a.as_bytes()).await.unwrap();
    conn.flush().await.unwrap();
    tokio::time::sleep(Duration::from_millis(100)).await;
    let (b1, b2) = b.split_at(40);
    conn.write_all(b1.as_bytes()).await.unwrap();
    conn.flush().await.unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(
        h.events().await.len(),
        3,
        "nothing stored from half a message"
    );
    conn.write_all(b2.as_bytes()).await.unwrap();
    conn.flush().await.unwrap();
    let events = h.wait_for(4, 0).await;
    assert_eq!(events[3].event.user.as_deref(), Some("root"));
    assert_eq!(extra(&events[3], "port"), Some("4242"));

    // A last LF-framed message without its LF is complete when the sender closes.
    conn.write_all(b"<13>Dec 10 07:00:01 LabSZ app: last words")
        .await
        .unwrap();
    drop(conn);
    let events = h.wait_for(5, 0).await;
    assert_eq!(events[4].event.message.as_deref(), Some("last words"));
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversized_messages_become_dead_letters() {
    let mut c = config(true, true);
    c.max_message_bytes = 200;
    let h = start(c).await;
    let big = format!("<13>Dec 10 07:00:00 LabSZ app: {}", "x".repeat(5_000));
    // TCP, octet-counted: cut, the rest skipped, the next message intact.
    let mut conn = TcpStream::connect(h.bound.tcp.unwrap()).await.unwrap();
    let after = "<13>Dec 10 07:00:01 LabSZ app: after";
    conn.write_all(format!("{} {big}{} {after}", big.len(), after.len()).as_bytes())
        .await
        .unwrap();
    // TCP, LF-framed.
    conn.write_all(format!("{big}\n<13>Dec 10 07:00:02 LabSZ app: after lf\n").as_bytes())
        .await
        .unwrap();
    conn.flush().await.unwrap();
    // UDP.
    let sock = UdpSocket::bind(local()).await.unwrap();
    sock.send_to(big.as_bytes(), h.bound.udp.unwrap())
        .await
        .unwrap();
    let events = h.wait_for(2, 3).await;
    let messages: Vec<_> = events
        .iter()
        .map(|e| e.event.message.clone().unwrap())
        .collect();
    assert_eq!(messages, ["after", "after lf"]);
    let dead = h.dead_letters().await;
    assert_eq!(dead.len(), 3);
    for d in &dead {
        let d = &d.dead_letter;
        assert_eq!(d.raw.len(), 200);
        assert!(d.raw.starts_with("<13>Dec 10 07:00:00 LabSZ app: xxx"));
        assert!(
            d.reason.contains("over max_message_bytes (200)"),
            "{}",
            d.reason
        );
        assert_eq!(d.source, "syslog-test");
    }
    let size = format!("is {} bytes", big.len());
    assert!(dead.iter().any(|d| d.dead_letter.reason.contains(&size)));
    let snap = h.status.snapshot();
    assert_eq!((snap.events, snap.dead_letters), (2, 3));
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connections_are_limited_and_idle_ones_closed() {
    let mut c = config(false, true);
    c.max_connections = 1;
    c.idle_timeout = Duration::from_millis(1500);
    let h = start(c).await;
    let addr = h.bound.tcp.unwrap();
    let mut first = TcpStream::connect(addr).await.unwrap();
    first
        .write_all(b"<13>Dec 10 07:00:00 h app: one\n")
        .await
        .unwrap();
    h.wait_for(1, 0).await;
    // The second connection is accepted and closed at once.
    let mut second = TcpStream::connect(addr).await.unwrap();
    let mut buf = [0u8; 16];
    let n = tokio::time::timeout(Duration::from_secs(5), second.read(&mut buf))
        .await
        .expect("refused connection is closed")
        .unwrap_or(0);
    assert_eq!(n, 0);
    // The first one stays usable, then is closed after the idle timeout, which frees
    // its slot.
    first
        .write_all(b"<13>Dec 10 07:00:00 h app: two\n")
        .await
        .unwrap();
    h.wait_for(2, 0).await;
    let closed = tokio::time::timeout(Duration::from_secs(5), first.read(&mut buf))
        .await
        .expect("idle connection is closed")
        .unwrap_or(0);
    assert_eq!(closed, 0);
    let mut third = TcpStream::connect(addr).await.unwrap();
    third
        .write_all(b"<13>Dec 10 07:00:00 h app: three\n")
        .await
        .unwrap();
    h.wait_for(3, 0).await;
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bind_failures_are_shown_and_retried() {
    // Hold the port so that the listener cannot bind it.
    let holder = TcpListener::bind(local()).await.unwrap();
    let addr = holder.local_addr().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let store = palisade_store::open("sqlite://syslog.db", dir.path()).unwrap();
    store.migrate().await.unwrap();
    let stop = ShutdownTrigger::new();
    let shutdown = stop.subscribe();
    let (writer, _writer_task) = BatchWriter::spawn(
        store.clone(),
        WriterConfig::default(),
        &palisade_core::supervisor::Supervisor::new(shutdown.clone()),
    );
    let mut c = SyslogConfig::new("busy");
    c.tcp = Some(addr);
    let status = SourceRegistry::default().register("busy", "syslog", &c.target());
    let (tx, rx) = oneshot::channel();
    let server = tokio::spawn(serve(c, writer, status.clone(), shutdown, Some(tx)));
    let deadline = Instant::now() + Duration::from_secs(5);
    while status.state() != SourceState::Error {
        assert!(Instant::now() < deadline, "bind failure not reported");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let reason = status.snapshot().last_error.unwrap();
    assert!(
        reason.starts_with(&format!("binding tcp://{addr}: ")),
        "{reason}"
    );
    // Once the port is free, the retry binds it.
    drop(holder);
    let bound = tokio::time::timeout(Duration::from_secs(10), rx)
        .await
        .expect("bound after retry")
        .unwrap();
    assert_eq!(bound.tcp, Some(addr));
    assert_eq!(status.state(), SourceState::Running);
    stop.trigger();
    tokio::time::timeout(Duration::from_secs(10), server)
        .await
        .unwrap()
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_stores_everything_received() {
    let mut c = config(false, true);
    c.flush_interval = Duration::from_secs(3600);
    c.batch_size = 10_000;
    let h = start(c).await;
    let mut conn = TcpStream::connect(h.bound.tcp.unwrap()).await.unwrap();
    let mut data = Vec::new();
    for i in 0..500 {
        data.extend_from_slice(
            format!("<38>Dec 10 07:00:00 LabSZ sshd[{i}]: Failed password for root from 10.0.{}.{} port 22 ssh2\n", i / 250, i % 250)
                .as_bytes(),
        );
    }
    conn.write_all(&data).await.unwrap();
    conn.flush().await.unwrap();
    // Neither the batch size nor the timer is reached: only shutdown writes them
    // (once the listener has read them off the socket, which takes far less than this).
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(h.events().await.len(), 0);
    let store = h.store.clone();
    let status = h.status.clone();
    h.stop().await;
    assert_eq!(store.count_events().await.unwrap(), 500);
    assert_eq!(status.snapshot().events, 500);
}

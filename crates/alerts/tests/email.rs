//! The e-mail channel against a real SMTP relay on loopback (aiosmtpd, from the venv
//! `scripts/test.sh` makes; its python is `PALISADE_TEST_SMTP_PYTHON`): STARTTLS with a
//! private CA, AUTH with the password, the message as a person reads it; a wrong
//! password is a permanent failure, an untrusted certificate a refused handshake.

use std::path::Path;
use std::process::{Child, Command, Stdio};

use palisade_alerts::channel::email::Security;
use palisade_alerts::{ChannelSpec, Message, Notification};
use palisade_core::Timestamp;

struct Relay {
    child: Child,
    port: u16,
    out: tempfile::TempDir,
    cert: String,
}

impl Drop for Relay {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A private CA and a certificate for `localhost` it signed (openssl); the CA's PEM.
fn certificate(dir: &Path) -> String {
    let openssl = |args: &[&str]| {
        let status = Command::new("openssl")
            .args(args)
            .current_dir(dir)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .expect("openssl");
        assert!(status.success(), "openssl {args:?} failed");
    };
    openssl(&[
        "req",
        "-x509",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-days",
        "1",
        "-subj",
        "/CN=Palisade test CA",
        "-keyout",
        "ca.key",
        "-out",
        "ca.pem",
    ]);
    openssl(&[
        "req",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-subj",
        "/CN=localhost",
        "-keyout",
        "key.pem",
        "-out",
        "leaf.csr",
    ]);
    std::fs::write(
        dir.join("leaf.ext"),
        "subjectAltName=DNS:localhost\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n",
    )
    .expect("ext");
    openssl(&[
        "x509",
        "-req",
        "-in",
        "leaf.csr",
        "-CA",
        "ca.pem",
        "-CAkey",
        "ca.key",
        "-CAcreateserial",
        "-days",
        "1",
        "-out",
        "cert.pem",
        "-extfile",
        "leaf.ext",
    ]);
    std::fs::read_to_string(dir.join("ca.pem")).expect("ca")
}

fn relay(python: &str, keys: &Path) -> Relay {
    let cert = certificate(keys);
    let out = tempfile::tempdir().expect("out");
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/smtp_server.py");
    let mut child = Command::new(python)
        .arg(script)
        .arg("--cert")
        .arg(keys.join("cert.pem"))
        .arg("--key")
        .arg(keys.join("key.pem"))
        .args(["--user", "alerts", "--password", "s3cret pass"])
        .arg("--out")
        .arg(out.path())
        .stdout(Stdio::piped())
        .spawn()
        .expect("start the relay");
    let mut line = String::new();
    std::io::BufRead::read_line(
        &mut std::io::BufReader::new(child.stdout.take().expect("stdout")),
        &mut line,
    )
    .expect("ready line");
    let port = line
        .trim()
        .strip_prefix("ready ")
        .and_then(|p| p.parse().ok())
        .unwrap_or_else(|| panic!("the relay did not start: {line:?}"));
    Relay {
        child,
        port,
        out,
        cert,
    }
}

fn spec(port: u16, ca_pem: Option<String>) -> ChannelSpec {
    ChannelSpec::Email {
        host: "localhost".into(),
        port,
        security: Security::Starttls,
        username: Some("alerts".into()),
        from: "Palisade <alerts@example.com>".into(),
        to: vec!["soc@example.com".into(), "oncall@example.com".into()],
        ca_pem,
    }
}

async fn send(spec: &ChannelSpec, password: &str) -> Result<u16, palisade_alerts::SendError> {
    spec.validate().expect("a valid spec");
    let channel = spec.build(Some(password)).expect("build");
    let payload =
        serde_json::to_string(&Notification::test("mail", Timestamp::now())).expect("json");
    let client = reqwest::Client::new();
    channel
        .send(
            &client,
            Message {
                id: "msg_2b1c",
                timestamp: Timestamp::now().as_micros() / 1_000_000,
                payload: &payload,
            },
        )
        .await
}

#[tokio::test]
async fn mail_goes_through_starttls_and_auth_to_a_real_relay() {
    let Ok(python) = std::env::var("PALISADE_TEST_SMTP_PYTHON") else {
        eprintln!(
            "skipped: PALISADE_TEST_SMTP_PYTHON is not set (scripts/test.sh makes a venv with aiosmtpd)"
        );
        return;
    };
    let keys = tempfile::tempdir().expect("keys");
    let relay = relay(&python, keys.path());

    // Delivered: over STARTTLS trusting the relay's private CA, authenticated.
    let good = spec(relay.port, Some(relay.cert.clone()));
    let code = send(&good, "s3cret pass").await.expect("delivered");
    assert_eq!(code, 250);
    let mail = std::fs::read_to_string(relay.out.path().join("1.eml")).expect("the message");
    assert!(
        mail.contains("X-Envelope-From: alerts@example.com"),
        "{mail}"
    );
    assert!(
        mail.contains("X-Envelope-To: soc@example.com,oncall@example.com"),
        "{mail}"
    );
    assert!(
        mail.contains("Subject: [TEST] Palisade test notification for channel mail"),
        "{mail}"
    );
    assert!(mail.contains("Message-ID: <msg_2b1c@palisade>"), "{mail}");

    // A wrong password: the relay's 535 is permanent (retrying cannot help).
    let refused = send(&good, "wrong").await.expect_err("refused");
    assert_eq!(refused.status, Some(535), "{refused:?}");
    assert!(refused.permanent, "{refused:?}");

    // Without the private CA the certificate is not trusted: no credentials are sent.
    let untrusted = send(&spec(relay.port, None), "s3cret pass")
        .await
        .expect_err("untrusted");
    assert!(
        untrusted.message.contains("TLS handshake failed"),
        "{untrusted:?}"
    );
    assert!(!untrusted.permanent);
    assert!(
        !relay.out.path().join("2.eml").exists(),
        "nothing else was delivered"
    );
}

#[tokio::test]
async fn an_unreachable_relay_is_retried_not_given_up() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("addr").port();
    drop(listener);
    let e = send(&spec(port, None), "pw")
        .await
        .expect_err("nothing listens");
    assert!(!e.permanent, "{e:?}");
    assert!(e.message.contains("cannot connect"), "{e:?}");
}

#[test]
fn specs_refuse_credentials_in_clear_and_bad_mailboxes() {
    let field = |s: ChannelSpec| s.validate().expect_err("refused").field;
    let base = || spec(587, None);
    let ChannelSpec::Email {
        host,
        port,
        username,
        from,
        to,
        ca_pem,
        ..
    } = base()
    else {
        unreachable!()
    };
    assert_eq!(
        field(ChannelSpec::Email {
            host: host.clone(),
            port,
            security: Security::None,
            username: username.clone(),
            from: from.clone(),
            to: to.clone(),
            ca_pem: ca_pem.clone(),
        }),
        "security"
    );
    assert_eq!(
        field(ChannelSpec::Email {
            host: "mail.example.com".into(),
            port,
            security: Security::None,
            username: None,
            from: from.clone(),
            to: to.clone(),
            ca_pem: None,
        }),
        "security",
        "plain text only to loopback"
    );
    assert_eq!(
        field(ChannelSpec::Email {
            host: host.clone(),
            port,
            security: Security::Starttls,
            username: None,
            from: "alerts@example.com\r\nBcc: x@y".into(),
            to: to.clone(),
            ca_pem: None,
        }),
        "from"
    );
    assert_eq!(
        field(ChannelSpec::Email {
            host: host.clone(),
            port,
            security: Security::Starttls,
            username: None,
            from,
            to: vec![],
            ca_pem: Some("not a certificate".into()),
        }),
        "to"
    );
    assert!(
        ChannelSpec::Email {
            host: "127.0.0.1".into(),
            port: 25,
            security: Security::None,
            username: None,
            from: "alerts@example.com".into(),
            to,
            ca_pem: None,
        }
        .validate()
        .is_ok(),
        "a loopback relay without credentials may be plain"
    );
}

//! Security through the real binary: the first admin, user and key commands on a store
//! without a server, secret key rotation, and secrets kept out of the logs.

use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

fn cmd(data: &Path) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_palisade"));
    c.arg("--data-dir")
        .arg(data)
        .env("PALISADE_LOG", "warn")
        .env_remove("PALISADE_DATABASE_URL")
        .env_remove("PALISADE_CONFIG")
        .env_remove("PALISADE_ADMIN_PASSWORD")
        .env_remove("PALISADE_SECRETS_KEY");
    c
}

fn run(data: &Path, args: &[&str]) -> Output {
    cmd(data).args(args).output().expect("run palisade")
}

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

fn with_stdin(data: &Path, args: &[&str], input: &str) -> Output {
    let mut child = cmd(data)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(input.as_bytes())
        .expect("write");
    child.wait_with_output().expect("wait")
}

#[test]
fn user_and_key_commands_work_without_a_server() {
    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path();
    let o = with_stdin(
        d,
        &[
            "user",
            "add",
            "alice",
            "--role",
            "analyst",
            "--password-stdin",
        ],
        "alice-Password-123\n",
    );
    assert!(o.status.success(), "{}", text(&o));
    let o = with_stdin(d, &["user", "add", "weak", "--password-stdin"], "short\n");
    assert!(!o.status.success());
    assert!(text(&o).contains("password"), "{}", text(&o));
    let o = run(d, &["user", "add", "bob"]);
    assert!(text(&o).contains("password (shown once): "), "{}", text(&o));
    let o = run(d, &["user", "list"]);
    let t = text(&o);
    assert!(
        t.contains("alice") && t.contains("analyst") && t.contains("bob"),
        "{t}"
    );
    assert!(!t.contains("argon2"));
    let o = run(d, &["user", "passwd", "bob"]);
    assert!(o.status.success() && text(&o).contains("password (shown once)"));
    let o = run(d, &["user", "remove", "bob"]);
    assert!(o.status.success(), "{}", text(&o));
    assert!(!text(&run(d, &["user", "list"])).contains("bob"));

    let o = run(
        d,
        &[
            "apikey",
            "create",
            "--name",
            "sensor",
            "--scope",
            "ingest,read",
            "--quiet",
        ],
    );
    assert!(o.status.success(), "{}", text(&o));
    let key = String::from_utf8_lossy(&o.stdout).trim().to_owned();
    assert!(key.starts_with("pal_") && !key.contains(' '), "{key}");
    let o = run(d, &["apikey", "create", "--name", "x", "--scope", "root"]);
    assert!(!o.status.success() && text(&o).contains("--scope"));
    let list = text(&run(d, &["apikey", "list"]));
    assert!(
        list.contains("sensor") && list.contains("ingest,read") && !list.contains(&key),
        "{list}"
    );
    let o = run(d, &["apikey", "revoke", "1"]);
    assert!(o.status.success(), "{}", text(&o));
    assert!(text(&run(d, &["apikey", "list"])).contains("revoked"));
    assert!(!run(d, &["apikey", "revoke", "1"]).status.success());
}

/// Starts `palisade serve` with debug logs captured; returns the child, its address and
/// the first admin's password as printed once on stderr.
fn serve(data: &Path, log: &Path) -> (std::process::Child, String, String) {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("addr")
        .port();
    let mut child = cmd(data)
        .args(["serve", "--listen", &format!("127.0.0.1:{port}")])
        .env("PALISADE_LOG", "debug")
        .env("PALISADE_LOG_FORMAT", "json")
        .stderr(Stdio::piped())
        .spawn()
        .expect("serve");
    let stderr = child.stderr.take().expect("stderr");
    let log = log.to_path_buf();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut out = std::fs::File::create(&log).expect("log file");
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            let trimmed = line.trim().to_owned();
            if trimmed.len() == 24 && !trimmed.contains(' ') && !trimmed.starts_with('{') {
                let _ = tx.send(trimmed);
            }
            let _ = writeln!(out, "{line}");
        }
    });
    let password = rx.recv_timeout(Duration::from_secs(20)).unwrap_or_default();
    (child, format!("127.0.0.1:{port}"), password)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn first_admin_secrets_rotation_and_clean_logs() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().join("data");
    let log = dir.path().join("server.log");
    let (mut child, addr, password) = serve(&data, &log);
    assert_eq!(
        password.len(),
        24,
        "the first admin's password is printed once"
    );
    let client = reqwest::Client::new();
    let url = |p: &str| format!("http://{addr}{p}");
    let deadline = Instant::now() + Duration::from_secs(20);
    let token = loop {
        let r = client
            .post(url("/api/v1/auth/login"))
            .json(&serde_json::json!({"username": "admin", "password": password}))
            .send()
            .await;
        if let Ok(r) = r
            && r.status() == 200
        {
            let body: serde_json::Value = r.json().await.expect("json");
            break body["access_token"].as_str().expect("token").to_owned();
        }
        assert!(
            Instant::now() < deadline,
            "could not log in as the first admin"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let secrets = [
        ("smtp_password", "hunter2-smtp-Secret-value"),
        ("nvd_api_key", "nvd-0000-1111-2222-SECRET"),
    ];
    for (name, value) in secrets {
        let r = client
            .put(url(&format!("/api/v1/secrets/{name}")))
            .bearer_auth(&token)
            .json(&serde_json::json!({"value": value}))
            .send()
            .await
            .expect("put");
        assert_eq!(r.status(), 204);
    }
    let _ = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status();
    let _ = child.wait();

    // Rotate the key offline; every secret stays readable with the new keyring.
    let o = run(&data, &["secrets", "rotate-key"]);
    assert!(o.status.success(), "{}", text(&o));
    assert!(text(&o).contains("2 secrets re-encrypted"), "{}", text(&o));
    let listed = text(&run(&data, &["secrets", "list"]));
    assert!(
        listed.contains("smtp_password") && listed.contains("ue") && !listed.contains("unreadable"),
        "{listed}"
    );
    assert_eq!(
        std::fs::read_to_string(data.join("secrets.key"))
            .expect("keyring")
            .lines()
            .filter(|l| !l.trim().is_empty() && !l.starts_with('#'))
            .count(),
        2
    );

    // No secret, password or token ever reached the log.
    let logged = std::fs::read_to_string(&log).expect("log");
    assert!(logged.contains("Request served."), "the log was captured");
    for (_, value) in secrets {
        assert!(!logged.contains(value), "a secret value reached the log");
    }
    assert!(!logged.contains(&token), "an access token reached the log");
    assert!(
        !logged.contains(&password[..]) || logged.matches(&password[..]).count() == 1,
        "the first admin's password must be shown once only"
    );
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        for f in ["jwt.key", "secrets.key"] {
            let mode = std::fs::metadata(data.join(f))
                .expect("key file")
                .permissions()
                .mode()
                & 0o777;
            assert_eq!(mode, 0o600, "{f} must be 0600");
        }
    }
}

/// Issue 18: once an admin exists, `PALISADE_ADMIN_PASSWORD` changes nothing; the
/// server says so, and how to reset a password, instead of ignoring it silently.
#[test]
fn admin_password_variable_is_ignored_with_a_warning_once_an_admin_exists() {
    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path();
    let o = with_stdin(
        d,
        &[
            "user",
            "add",
            "admin",
            "--role",
            "admin",
            "--password-stdin",
        ],
        "first-Admin-Password-1\n",
    );
    assert!(o.status.success(), "{}", text(&o));
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("addr")
        .port();
    let mut child = cmd(d)
        .args(["serve", "--listen", &format!("127.0.0.1:{port}")])
        .env("PALISADE_ADMIN_PASSWORD", "second-Admin-Password-2")
        .stderr(Stdio::piped())
        .spawn()
        .expect("serve");
    let stderr = child.stderr.take().expect("stderr");
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if line.contains("PALISADE_ADMIN_PASSWORD") {
                let _ = tx.send(line);
            }
        }
    });
    let warning = rx.recv_timeout(Duration::from_secs(30));
    let _ = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status();
    let _ = child.wait();
    let warning = warning.expect("no warning about PALISADE_ADMIN_PASSWORD");
    assert!(warning.contains("ignored"), "{warning}");
    assert!(warning.contains("palisade user passwd admin"), "{warning}");
    assert!(!warning.contains("second-Admin-Password-2"), "{warning}");
}

/// Issue 19, finding 5: `palisade user unlock NAME` is the documented reset; it works
/// for any name (locks are kept for unknown names too) and is audited.
#[test]
fn user_unlock_clears_every_lock_of_a_name() {
    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path();
    let o = run(d, &["user", "unlock", "ghost"]);
    assert!(o.status.success(), "{}", text(&o));
    assert!(text(&o).contains("no user has this name"), "{}", text(&o));
    let o = with_stdin(
        d,
        &["user", "add", "carol", "--password-stdin"],
        "carol-Password-123\n",
    );
    assert!(o.status.success(), "{}", text(&o));
    let o = run(d, &["user", "unlock", "carol"]);
    assert!(o.status.success(), "{}", text(&o));
    assert!(text(&o).contains("unlocked 'carol'"), "{}", text(&o));
    assert!(!text(&o).contains("no user"), "{}", text(&o));
}

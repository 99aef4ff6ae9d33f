//! Debian's nginx with `auth_request` in front of a small upstream, asking the real
//! Palisade binary: an SQL injection gets nginx's 403, a normal request reaches the
//! upstream, a banned client stays banned whatever address it claims in its headers,
//! and with Palisade gone the site fails closed.

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("port")
}

fn nginx_binary() -> Option<String> {
    ["/usr/sbin/nginx", "/usr/local/sbin/nginx"]
        .iter()
        .find(|p| Path::new(p).exists())
        .map(|p| (*p).to_owned())
}

struct Guard(Child);

impl Drop for Guard {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

async fn wait_http(url: &str) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while reqwest::get(url).await.is_err() {
        assert!(Instant::now() < deadline, "{url} never answered");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nginx_auth_request_blocks_attacks_and_passes_the_rest() {
    let Some(nginx) = nginx_binary() else {
        assert!(
            std::env::var("PALISADE_SKIP_NGINX").is_ok_and(|v| v == "1"),
            "nginx is not installed (scripts/test.sh installs it; PALISADE_SKIP_NGINX=1 skips)"
        );
        return;
    };
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().join("data");
    let bin = env!("CARGO_BIN_EXE_palisade");
    let clean = |c: &mut Command| {
        c.env_remove("PALISADE_DATABASE_URL")
            .env_remove("PALISADE_CONFIG")
            .env("PALISADE_LOG", "warn");
    };
    let mut create = Command::new(bin);
    clean(&mut create);
    let out = create
        .args([
            "apikey",
            "create",
            "--name",
            "nginx-edge",
            "--scope",
            "check",
            "--quiet",
            "--data-dir",
        ])
        .arg(&data)
        .output()
        .expect("apikey create");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let key = String::from_utf8_lossy(&out.stdout).trim().to_owned();

    let (pal, front, upstream) = (free_port(), free_port(), free_port());
    let mut serve = Command::new(bin);
    clean(&mut serve);
    let admin_password = "nginx-test-Admin-Password-42";
    serve.env("PALISADE_ADMIN_PASSWORD", admin_password);
    let palisade = Guard(
        serve
            .args([
                "serve",
                "--listen",
                &format!("127.0.0.1:{pal}"),
                "--data-dir",
            ])
            .arg(&data)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("palisade"),
    );
    wait_http(&format!("http://127.0.0.1:{pal}/readyz")).await;

    // The shipped example, with ports, key and paths filled in.
    let example = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../deploy/nginx/palisade-auth-request.conf"
    ))
    .expect("example");
    let site = example
        .replace(
            "server 127.0.0.1:8080;",
            &format!("server 127.0.0.1:{pal};"),
        )
        .replace(
            "server 127.0.0.1:3000;",
            &format!("server 127.0.0.1:{upstream};"),
        )
        .replace("listen 80;", &format!("listen 127.0.0.1:{front};"))
        .replace("pal_REPLACE_WITH_YOUR_CHECK_KEY", &key);
    let root = dir.path();
    // As root, nginx would hand its workers to `nobody`, who cannot use this temp dir.
    let is_root = Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| o.stdout.starts_with(b"0"));
    let user = if is_root { "user root;" } else { "" };
    let conf = format!(
        "{user}\nmaster_process off;\ndaemon off;\npid {r}/nginx.pid;\nerror_log {r}/error.log warn;\nevents {{ worker_connections 64; }}\nhttp {{\n access_log off;\n set_real_ip_from 127.0.0.1;\n real_ip_header X-Forwarded-For;\n client_body_temp_path {r}/body;\n proxy_temp_path {r}/proxy;\n fastcgi_temp_path {r}/fastcgi;\n uwsgi_temp_path {r}/uwsgi;\n scgi_temp_path {r}/scgi;\n{site}\n server {{ listen 127.0.0.1:{upstream}; location / {{ return 200 \"upstream ok\\n\"; }} }}\n}}\n",
        r = root.display()
    );
    std::fs::write(root.join("nginx.conf"), conf).expect("conf");
    let nginx = Guard(
        Command::new(&nginx)
            .args(["-p"])
            .arg(root)
            .arg("-c")
            .arg(root.join("nginx.conf"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("nginx"),
    );
    let site_url = format!("http://127.0.0.1:{front}");
    wait_http(&site_url).await;

    let get = |path: &str| reqwest::get(format!("{site_url}{path}"));
    let ok = get("/products/list?page=2&sort=price")
        .await
        .expect("benign");
    assert_eq!(ok.status(), 200);
    assert_eq!(ok.headers()["x-palisade-decision"], "allow");
    assert_eq!(ok.text().await.expect("body"), "upstream ok\n");
    let blocked = get("/search?q=1%27%20union%20select%20password%20from%20users--")
        .await
        .expect("attack");
    assert_eq!(
        blocked.status(),
        403,
        "nginx answers 403 for an SQL injection"
    );
    let blocked = get("/download?file=../../../../etc/passwd")
        .await
        .expect("attack");
    assert_eq!(blocked.status(), 403);

    // An IP ban (nginx sends the client's address as X-Real-IP): refused before the WAF
    // runs, with the decision named; deleting the ban lets the client back in.
    let api = format!("http://127.0.0.1:{pal}");
    let client = reqwest::Client::new();
    // The first admin is created in the background once the database is ready: wait
    // for it (503 until then).
    let mut token = String::new();
    for _ in 0..200 {
        let login: serde_json::Value = client
            .post(format!("{api}/api/v1/auth/login"))
            .json(&serde_json::json!({"username": "admin", "password": admin_password}))
            .send()
            .await
            .expect("login")
            .json()
            .await
            .expect("json");
        if let Some(t) = login["access_token"].as_str() {
            token = t.to_owned();
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(!token.is_empty(), "the admin never logged in");
    // The test client stands for a load balancer on loopback forwarding for
    // 203.0.113.60 (nginx's realip module, trusting loopback, gives that client).
    let ban: serde_json::Value = client
        .post(format!("{api}/api/v1/decisions"))
        .bearer_auth(&token)
        .json(&serde_json::json!({"kind": "ban", "value": "203.0.113.60", "duration": "10m"}))
        .send()
        .await
        .expect("ban")
        .json()
        .await
        .expect("json");
    let forwarded = |path: &str| {
        reqwest::Client::new()
            .get(format!("{site_url}{path}"))
            .header("X-Forwarded-For", "203.0.113.60")
            .send()
    };
    let banned = forwarded("/products/list?page=2&sort=price")
        .await
        .expect("req");
    assert_eq!(banned.status(), 403, "a banned client is refused by nginx");
    assert_eq!(banned.headers()["x-palisade-decision"], "ban");
    // The banned client names another address in the headers it sends; the load
    // balancer appends the address it saw (the rightmost entry), nginx's realip takes
    // that one and sets X-Forwarded-For (and X-Real-IP) itself, so Palisade still sees
    // who connected.
    for (xff, real_ip) in [
        ("8.8.8.8, 203.0.113.60", None),
        ("203.0.113.60", Some("8.8.8.8")),
        ("8.8.8.8, 9.9.9.9, 203.0.113.60", Some("8.8.4.4")),
    ] {
        let mut req = client
            .get(format!("{site_url}/products/list?page=2"))
            .header("X-Forwarded-For", xff);
        if let Some(ip) = real_ip {
            req = req.header("X-Real-IP", ip);
        }
        let spoofed = req.send().await.expect("req");
        assert_eq!(
            spoofed.status(),
            403,
            "X-Forwarded-For: {xff}, X-Real-IP: {real_ip:?} from a banned client"
        );
        assert_eq!(spoofed.headers()["x-palisade-decision"], "ban");
    }
    let id = ban["id"].as_i64().expect("id");
    let deleted = client
        .delete(format!("{api}/api/v1/decisions/{id}"))
        .bearer_auth(&token)
        .send()
        .await
        .expect("delete");
    assert_eq!(deleted.status(), 204);
    assert_eq!(
        forwarded("/products/list?page=2")
            .await
            .expect("req")
            .status(),
        200
    );

    // Palisade gone: the site fails closed.
    drop(palisade);
    tokio::time::sleep(Duration::from_millis(300)).await;
    let down = get("/products/list?page=2").await.expect("req");
    assert_eq!(down.status(), 500);
    // nginx runs as one process (master_process off), so stopping it leaves nothing
    // listening behind.
    drop(nginx);
    for port in [front, upstream] {
        assert!(
            std::net::TcpStream::connect(("127.0.0.1", port)).is_err(),
            "nothing is left listening on {port}"
        );
    }
}

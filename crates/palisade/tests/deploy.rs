//! The deployment recipes shipped in `deploy/` are checked, not just written: the
//! systemd unit passes `systemd-analyze verify` against the real binary, and the
//! container recipe's health check and environment work with this binary.

use std::net::TcpListener;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn bin() -> &'static str {
    env!("CARGO_BIN_EXE_palisade")
}

fn recipe(path: &str) -> String {
    std::fs::read_to_string(format!(
        "{}/../../deploy/{path}",
        env!("CARGO_MANIFEST_DIR")
    ))
    .expect("recipe")
}

#[test]
fn the_systemd_unit_verifies() {
    if Command::new("systemd-analyze")
        .arg("--version")
        .output()
        .is_err()
    {
        eprintln!("systemd-analyze is not installed; skipping");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let unit = recipe("systemd/palisade.service").replace("/usr/local/bin/palisade", bin());
    let path = dir.path().join("palisade.service");
    std::fs::write(&path, unit).unwrap();
    let out = Command::new("systemd-analyze")
        .arg("verify")
        .arg(&path)
        .output()
        .expect("systemd-analyze");
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success() && said.trim().is_empty(), "{said}");
    let text = recipe("systemd/palisade.service");
    for hardening in [
        "DynamicUser=yes",
        "ProtectSystem=strict",
        "NoNewPrivileges=yes",
    ] {
        assert!(text.contains(hardening), "{hardening}");
    }
}

#[test]
fn role_units_verify_and_start_their_role() {
    if Command::new("systemd-analyze")
        .arg("--version")
        .output()
        .is_err()
    {
        eprintln!("systemd-analyze is not installed; skipping");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    for (file, installed, role) in [
        (
            "systemd/palisade-api.service",
            "palisade-api.service",
            "--role api",
        ),
        (
            "systemd/palisade-worker@.service",
            "palisade-worker@1.service",
            "--role worker",
        ),
    ] {
        let text = recipe(file);
        assert!(text.contains(role), "{file}: {role}");
        assert!(text.contains("DynamicUser=yes") && text.contains("PALISADE_JWT_KEY"));
        // A template is verified as an instance of itself.
        let unit_dir = dir.path().join(installed.replace(".service", ""));
        std::fs::create_dir_all(&unit_dir).unwrap();
        let template = unit_dir.join(file.trim_start_matches("systemd/"));
        std::fs::write(&template, text.replace("/usr/local/bin/palisade", bin())).unwrap();
        let path = if installed.contains('@') {
            let instance = unit_dir.join(installed);
            std::os::unix::fs::symlink(&template, &instance).unwrap();
            instance
        } else {
            template
        };
        let out = Command::new("systemd-analyze")
            .arg("verify")
            .arg(&path)
            .output()
            .expect("systemd-analyze");
        let said = String::from_utf8_lossy(&out.stderr);
        assert!(
            out.status.success() && said.trim().is_empty(),
            "{file}: {said}"
        );
    }
    let compose = recipe("container/topology.compose.yaml");
    for role in ["\"--role\", \"api\"", "\"--role\", \"worker\""] {
        assert!(compose.contains(role), "{role}");
    }
}

#[test]
fn the_container_recipe_uses_commands_and_settings_that_exist() {
    let recipe = recipe("container/Dockerfile");
    assert!(recipe.contains("\"health\"") && recipe.contains("CMD [\"serve\"]"));
    // The environment the image sets is a valid configuration.
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new(bin())
        .args(["config", "check"])
        .env_remove("PALISADE_CONFIG")
        .env("PALISADE_LISTEN", "0.0.0.0:8080")
        .env("PALISADE_DATA_DIR", dir.path())
        .env("PALISADE_LOG_FORMAT", "json")
        .current_dir(dir.path())
        .output()
        .expect("config check");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
}

#[test]
fn the_health_command_says_whether_the_service_is_ready() {
    let port = TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .unwrap();
    let addr = format!("127.0.0.1:{port}");
    let down = Command::new(bin())
        .args(["health", "--address", &addr])
        .output()
        .unwrap();
    assert!(!down.status.success(), "nothing listens yet");

    let dir = tempfile::tempdir().unwrap();
    let mut server = Command::new(bin())
        .args(["serve", "--listen", &addr, "--data-dir"])
        .arg(dir.path().join("data"))
        .env_remove("PALISADE_CONFIG")
        .env("PALISADE_LOG", "warn")
        .env("PALISADE_ADMIN_PASSWORD", "deploy-test-Admin-Password-42")
        .current_dir(dir.path())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut ready = false;
    while Instant::now() < deadline {
        let out = Command::new(bin())
            .args(["health", "--address", &addr])
            .output()
            .unwrap();
        if out.status.success() {
            ready = true;
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let _ = server.kill();
    let _ = server.wait();
    assert!(ready, "palisade health saw the service become ready");
}

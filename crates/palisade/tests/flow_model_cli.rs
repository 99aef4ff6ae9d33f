//! The flow model as a user meets it: `palisade ingest` of a real scan capture from
//! `../shared/data/pcaps` raises the model's `network-ml-flow-scan` threat, linked to
//! its flows, and a real benign capture raises none; a damaged flow-model file leaves
//! the import working (rules only) and `palisade models list` says why. Skipped with a
//! note when the data directory is absent.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn pcaps() -> Option<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/data/pcaps");
    if dir.join("scan/ppa_portscan.pcap").exists() {
        Some(dir)
    } else {
        eprintln!("skipped: {} not present", dir.display());
        None
    }
}

fn palisade(args: &[&std::ffi::OsStr], env: &[(&str, &str)]) -> Output {
    let mut c = Command::new(env!("CARGO_BIN_EXE_palisade"));
    c.args(args)
        .env("PALISADE_LOG", "warn")
        .env_remove("PALISADE_DATABASE_URL")
        .env_remove("PALISADE_CONFIG");
    for (k, v) in env {
        c.env(k, v);
    }
    c.output().expect("run palisade")
}

fn ingest(data: &Path, file: &Path, env: &[(&str, &str)]) -> String {
    let o = palisade(
        &[
            "ingest".as_ref(),
            file.as_os_str(),
            "--data-dir".as_ref(),
            data.as_os_str(),
        ],
        env,
    );
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

#[test]
fn a_real_scan_raises_the_flow_models_threat_and_a_benign_capture_none() {
    let Some(dir) = pcaps() else { return };
    let tmp = tempfile::tempdir().expect("tempdir");
    let out = ingest(
        &tmp.path().join("a"),
        &dir.join("scan/ppa_portscan.pcap"),
        &[],
    );
    assert!(out.contains("network-ml-flow-scan 1"), "{out}");
    assert!(out.contains("threat-flow links"), "{out}");
    assert!(!out.contains(" 0 threat-flow links"), "{out}");

    let out = ingest(
        &tmp.path().join("b"),
        &dir.join("http/zeek_wikipedia.pcap"),
        &[],
    );
    assert!(!out.contains("network-ml-flow"), "{out}");
    assert!(out.contains("0 scenario alerts"), "{out}");
}

#[test]
fn a_damaged_flow_model_degrades_to_the_rules_and_says_so() {
    let Some(dir) = pcaps() else { return };
    let tmp = tempfile::tempdir().expect("tempdir");
    let bad = tmp.path().join("flow.pmodel");
    std::fs::write(&bad, b"PALISADE-FLOW-MODEL\nnot gzip").expect("write");
    let bad_s = bad.to_str().expect("utf-8");
    let env = [("PALISADE_MODELS__FLOW_PATH", bad_s)];
    let out = ingest(
        &tmp.path().join("a"),
        &dir.join("scan/ppa_portscan.pcap"),
        &env,
    );
    assert!(
        out.contains("network-vertical-portscan 1"),
        "the rules still judge: {out}"
    );
    assert!(!out.contains("network-ml-flow"), "{out}");

    let o = palisade(
        &[
            "models".as_ref(),
            "list".as_ref(),
            "--flow-path".as_ref(),
            bad.as_os_str(),
        ],
        &[],
    );
    assert!(!o.status.success());
    let list: serde_json::Value = serde_json::from_slice(&o.stdout).expect("json");
    assert_eq!(list[0]["name"], "flow");
    assert_eq!(list[0]["loaded"], false);
    assert!(
        list[0]["error"]
            .as_str()
            .is_some_and(|e| e.contains("not a valid model file")),
        "{list}"
    );
}

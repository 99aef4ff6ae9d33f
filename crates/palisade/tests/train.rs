//! `palisade train`, `palisade models list` and `palisade eval --model` as a user runs
//! them, on a small corpus written here.

use std::process::{Command, Output};

fn palisade(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_palisade"))
        .args(args)
        .env("PALISADE_LOG", "warn")
        .env_remove("PALISADE_DATABASE_URL")
        .env_remove("PALISADE_CONFIG")
        .output()
        .expect("run palisade")
}

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// A shop's normal traffic: a few pages with varied parameters.
fn corpus(path: &std::path::Path) {
    let mut out = String::new();
    for i in 0..300 {
        let uri = match i % 3 {
            0 => format!("/shop/item.jsp?id={i}&name=Jam%F3n+{i}&qty={}", i % 7),
            1 => format!("/shop/search.jsp?q=queso+{i}&page={}", i % 5),
            _ => format!("/shop/user/{i}/orders?sort=date"),
        };
        out.push_str(
            &serde_json::json!({
                "method": "GET", "uri": uri, "version": "HTTP/1.1",
                "headers": [["Host", "shop.example"], ["User-Agent", "Mozilla/5.0"]],
                "body": "", "label": "normal"
            })
            .to_string(),
        );
        out.push('\n');
    }
    for uri in [
        "/shop/item.jsp?id=1%27%20or%20%271%27%3D%271",
        "/shop/search.jsp?q=%3Cscript%3Ealert(1)%3C%2Fscript%3E",
    ] {
        out.push_str(
            &serde_json::json!({"method": "GET", "uri": uri, "headers": [], "body": "", "label": "attack"})
                .to_string(),
        );
        out.push('\n');
    }
    std::fs::write(path, out).expect("write corpus");
}

#[test]
fn train_is_deterministic_and_its_model_lists_and_evaluates() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().join("shop.jsonl");
    corpus(&data);
    let (a, b) = (dir.path().join("a.pmodel"), dir.path().join("b.pmodel"));
    for out in [&a, &b] {
        let o = palisade(&[
            "train",
            "--data",
            data.to_str().expect("utf-8"),
            "--out",
            out.to_str().expect("utf-8"),
            "--seed",
            "7",
            "--epochs",
            "2",
            "--buckets-log2",
            "12",
            "--generated-normal",
            "200",
        ]);
        assert!(o.status.success(), "{}", text(&o));
        let t = text(&o);
        assert!(t.contains("302 attacks (300 generated)"), "{t}");
        assert!(t.contains("held out ("), "{t}");
    }
    assert_eq!(
        std::fs::read(&a).expect("a"),
        std::fs::read(&b).expect("b"),
        "same data and seed, same model file"
    );

    let o = palisade(&["models", "list", "--path", a.to_str().expect("utf-8")]);
    assert!(o.status.success(), "{}", text(&o));
    let list: serde_json::Value = serde_json::from_slice(&o.stdout).expect("json");
    assert_eq!(list[0]["loaded"], true);
    assert_eq!(list[0]["is_real"], true);
    assert_eq!(
        list[0]["metadata"]["training_data"][0]["name"],
        "shop.jsonl"
    );
    assert_eq!(list[0]["metadata"]["training_data"][0]["rows"], 302);
    assert_eq!(list[0]["metadata"]["seed"], 7);

    let missing = dir.path().join("missing.pmodel");
    let o = palisade(&["models", "list", "--path", missing.to_str().expect("utf-8")]);
    assert!(!o.status.success());
    assert!(text(&o).contains("\"loaded\": false"), "{}", text(&o));

    let o = palisade(&[
        "eval",
        "--paranoia",
        "1",
        "--model",
        a.to_str().expect("utf-8"),
        data.to_str().expect("utf-8"),
    ]);
    assert!(o.status.success(), "{}", text(&o));
    let t = text(&o);
    for row in ["rules only", "model only", "fused"] {
        assert!(t.contains(row), "{row} missing: {t}");
    }

    let o = palisade(&[
        "train",
        "--data",
        data.to_str().expect("utf-8"),
        "--buckets-log2",
        "40",
    ]);
    assert!(!o.status.success());
    assert!(text(&o).contains("--buckets-log2"), "{}", text(&o));
}

#[test]
fn calibrate_stores_an_operating_point_that_eval_reports() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().join("shop.jsonl");
    corpus(&data);
    let model = dir.path().join("c.pmodel");
    let args = |extra: &[&str]| {
        let mut v = vec![
            "train",
            "--data",
            data.to_str().expect("utf-8"),
            "--out",
            model.to_str().expect("utf-8"),
            "--seed",
            "7",
            "--epochs",
            "2",
            "--buckets-log2",
            "12",
            "--generated-normal",
            "200",
            "--calibrate",
        ];
        v.extend_from_slice(extra);
        v.into_iter().map(str::to_owned).collect::<Vec<String>>()
    };
    let run = |a: Vec<String>| palisade(&a.iter().map(String::as_str).collect::<Vec<_>>());
    let o = run(args(&[]));
    assert!(o.status.success(), "{}", text(&o));
    let t = text(&o);
    assert!(
        t.contains("calibration: validation 60 normal + 1 attacks"),
        "{t}"
    );
    assert!(t.contains("calibrated operating point"), "{t}");

    let o = palisade(&["models", "list", "--path", model.to_str().expect("utf-8")]);
    assert!(o.status.success(), "{}", text(&o));
    let list: serde_json::Value = serde_json::from_slice(&o.stdout).expect("json");
    let point = &list[0]["metadata"]["operating_point"];
    assert_eq!(point["threshold"], 5, "{point}");
    assert_eq!(point["target_fpr"], 0.0025, "{point}");
    assert_eq!(point["model_alone"], false, "{point}");
    assert!(
        point["points"]["max_points"]
            .as_u64()
            .is_some_and(|m| m <= 4),
        "{point}"
    );
    assert_eq!(
        point["validation"]["tn"].as_u64().unwrap_or(0)
            + point["validation"]["fp"].as_u64().unwrap_or(0),
        60,
        "{point}"
    );

    let o = palisade(&[
        "eval",
        "--paranoia",
        "1",
        "--model",
        model.to_str().expect("utf-8"),
        data.to_str().expect("utf-8"),
    ]);
    assert!(o.status.success(), "{}", text(&o));
    assert!(text(&o).contains("fused, calibrated"), "{}", text(&o));

    let o = run(args(&["--target-fpr", "0.5"]));
    assert!(!o.status.success());
    assert!(text(&o).contains("--target-fpr"), "{}", text(&o));
}

//! On loghub's real Linux syslog (`../shared/data/loghub/Linux/Linux_2k.log`), sshd
//! failures that only PAM reports (`sshd(pam_unix)[pid]: authentication failure; ...
//! rhost=IP`) raise the sshd scenarios for the addresses that hammer the host. Skipped
//! with a note when the data directory is absent.

use std::collections::BTreeSet;
use std::path::Path;

use palisade_formats::{FormatSpec, SyslogOptions, build};
use palisade_scenarios::{EngineConfig, ScenarioEngine, ScenarioSet};

#[test]
fn loghub_linux_pam_sshd_failures_raise_sshd_bruteforce() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../../shared/data/loghub/Linux/Linux_2k.log");
    let Ok(text) = std::fs::read(&path) else {
        eprintln!("skipped: {} not present", path.display());
        return;
    };
    let parser = build(&FormatSpec::Syslog(SyslogOptions { year: Some(2005) })).unwrap();
    let mut engine = ScenarioEngine::new(ScenarioSet::builtin().unwrap(), EngineConfig::default());
    let mut alerts = Vec::new();
    let mut events = 0;
    for (i, line) in text.split(|&b| b == b'\n').enumerate() {
        let Ok(mut ev) = parser.parse(line) else {
            continue;
        };
        ev.source = "loghub".into();
        events += 1;
        engine.observe_into(&ev, Some(i as i64 + 1), &mut alerts);
    }
    assert!(events > 1500, "{events} lines parsed");
    let flagged: BTreeSet<(String, String)> = alerts
        .iter()
        .filter(|a| a.scenario.starts_with("sshd-"))
        .map(|a| {
            let ip = a.client_ip.map(|i| i.to_string()).unwrap_or_default();
            (a.scenario.clone(), ip)
        })
        .collect();
    println!("{flagged:?}");
    // 150.183.249.110: 80 PAM-reported failures in about 95 s.
    assert!(
        flagged
            .iter()
            .any(|(s, g)| s == "sshd-bruteforce" && g.contains("150.183.249.110")),
        "{flagged:?}"
    );
    // 218.188.2.4: 14 failures in a burst.
    assert!(
        flagged.iter().any(|(_, g)| g.contains("218.188.2.4")),
        "{flagged:?}"
    );
}

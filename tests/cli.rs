//! The `rdg` binary as users run it: exit codes and output formats the contracts name.

use std::path::PathBuf;
use std::process::{Command, Output};

fn rdg(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_rdg"))
        .args(args)
        .output()
        .expect("rdg runs")
}

fn example(name: &str) -> String {
    let p: PathBuf = [env!("CARGO_MANIFEST_DIR"), "examples", name]
        .iter()
        .collect();
    p.to_string_lossy().into_owned()
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

#[test]
fn check_config_accepts_the_design_example() {
    let out = rdg(&["check-config", &example("infocast.yaml")]);
    assert!(out.status.success(), "stderr: {}", text(&out.stderr));
    assert!(text(&out.stdout).contains("valid"));
}

#[test]
fn check_config_reports_every_problem_with_its_path_and_exit_2() {
    let dir = std::env::temp_dir().join(format!("rdg-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("bad.yaml");
    std::fs::write(
        &file,
        "\
name: g
heartbeat: {interval: 500ms, timeout: 200ms}
networks: [{name: primary, multicast: 224.0.0.35}]
members:
  - {name: a, priority: 100, addresses: {primary: 10.0.0.11}}
  - {name: a, priority: 50, addresses: {primary: 10.0.0.12}}
netCheck: {targets: [10.0.0.1, 10.0.0.2], timeout: 600ms}
vips: [{address: 10.0.0.100/24, network: backbone}]
",
    )
    .unwrap();
    let out = rdg(&["check-config", file.to_str().unwrap()]);
    std::fs::remove_dir_all(&dir).ok();
    assert_eq!(out.status.code(), Some(2));
    let err = text(&out.stderr);
    for path in [
        "heartbeat.",
        "members[1].name:",
        "netCheck.timeout:",
        "vips[0].network:",
    ] {
        assert!(
            err.lines().any(|l| l.starts_with(path)),
            "no line starting with {path:?} in:\n{err}"
        );
    }
}

#[test]
fn check_config_on_a_missing_file_exits_2() {
    let out = rdg(&["check-config", "/nonexistent/rdg.yaml"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("/nonexistent/rdg.yaml"));
}

#[test]
fn simulate_prints_the_json_summary() {
    let out = rdg(&["simulate", "--seeds", "50", "--json"]);
    assert!(out.status.success(), "stderr: {}", text(&out.stderr));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON on stdout");
    assert_eq!(v["seeds"], 50);
    assert_eq!(v["violations"], 0);
    assert!(v["failovers"].as_u64().unwrap() > 0);
    assert!(v["max_failover_ms"].as_f64().unwrap() > 0.0);
}

#[test]
fn demo_shows_a_failover_and_holds_the_invariants() {
    let out = rdg(&["demo", "--speed", "0"]);
    assert!(out.status.success(), "stderr: {}", text(&out.stderr));
    let s = text(&out.stdout);
    assert!(s.contains("ics-a  became HOT (epoch 1, election)"), "{s}");
    assert!(s.contains("kill -9 ics-a"), "{s}");
    assert!(
        s.contains("ics-b  became HOT (epoch 2, takeover, previous ics-a)"),
        "{s}"
    );
    assert!(s.contains("network anomaly"), "{s}");
    assert!(s.contains("invariants: all held"), "{s}");
    let ms: u64 = s
        .lines()
        .find_map(|l| l.strip_prefix("failover: hot member killed at 3.000s, standby hot "))
        .and_then(|r| r.strip_suffix(" ms later"))
        .and_then(|n| n.parse().ok())
        .expect("failover line");
    assert!(ms <= 300, "failover within the 300 ms timeout: {ms}");
}

//! `rdg transmit`, `rdg receive` and the carousel inside `rdg agent`, as users run them:
//! multicast on the loopback interface (`--interface 127.0.0.1` on both sides), no root.

use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

const RDG: &str = env!("CARGO_BIN_EXE_rdg");

fn tempdir(tag: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("rdg-infocast-cli-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// A multicast channel of its own for each test (group and port from the process id).
fn channel(test: u8) -> (String, u16) {
    let pid = std::process::id();
    (
        format!("239.255.{}.{test}", pid % 250 + 1),
        40_000 + (pid % 2_000) as u16 * 10 + u16::from(test),
    )
}

/// A configuration whose carousel has a file object and a generated boot descriptor.
fn config(dir: &Path, head: &str, group: &str, port: u16) -> PathBuf {
    std::fs::write(dir.join("obj"), "carousel object ".repeat(500)).unwrap();
    let yaml = format!(
        "{head}transmitter:
  channels:
    - address: {group}
      port: {port}
      ttl: 1
      bitRate: 4Mbit
      payloadSize: 1024
      objects:
        - {{name: obj, source: {obj}, crc: true}}
        - name: bootcast_1900
          type: bootcastinfo
          bootcast: {{kernelAddress: \"224.2.2.3:22223\", kernelName: vmlinuz, kernelVersion: \"1.0\"}}
",
        obj = dir.join("obj").display()
    );
    let path = dir.join("group.yaml");
    std::fs::write(&path, yaml).unwrap();
    path
}

fn receive(group: &str, port: u16, seconds: &str) -> Value {
    let out = Command::new(RDG)
        .args(["receive", "--channel", &format!("{group}:{port}")])
        .args(["--interface", "127.0.0.1", "--seconds", seconds, "--json"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("one JSON document on stdout")
}

fn completed(report: &Value, name: &str) -> u64 {
    report["objects"]
        .as_array()
        .unwrap()
        .iter()
        .find(|o| o["name"] == name)
        .map_or(0, |o| o["completed"].as_u64().unwrap())
}

/// SIGTERM, then the exit status and stderr (killed after 5 s).
fn terminate(child: Child) -> Output {
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(child.id() as i32),
        nix::sys::signal::Signal::SIGTERM,
    )
    .unwrap();
    let pid = child.id();
    let killer = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_secs(5));
        let _ = nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(pid as i32),
            nix::sys::signal::Signal::SIGKILL,
        );
    });
    let out = child.wait_with_output().unwrap();
    drop(killer);
    out
}

fn assert_round_trip(report: &Value) {
    assert!(completed(report, "obj") >= 1, "{report:#}");
    assert!(completed(report, "bootcast_1900") >= 1, "{report:#}");
    for o in report["objects"].as_array().unwrap() {
        assert_eq!(o["corrupt"], 0, "{report:#}");
    }
    let bootcast = report["objects"]
        .as_array()
        .unwrap()
        .iter()
        .find(|o| o["name"] == "bootcast_1900")
        .unwrap();
    assert_eq!(bootcast["type"], "bootcastinfo");
    assert_eq!(report["senders"], serde_json::json!(["127.0.0.1"]));
    assert_eq!(report["malformed"], 0);
    assert_eq!(report["interleaved"], false);
    assert!(report["longestSilenceMs"].as_f64().unwrap() < 500.0);
    assert!(report["firstChunkMs"].as_f64().is_some());
}

#[test]
fn transmit_and_receive_round_trip_on_loopback_multicast() {
    let dir = tempdir("round-trip");
    let (group, port) = channel(1);
    let cfg = config(&dir, "", &group, port);
    let tx = Command::new(RDG)
        .args(["transmit", "--interface", "127.0.0.1", "--config"])
        .arg(&cfg)
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let report = receive(&group, port, "2");
    let out = terminate(tx);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "rdg transmit: {:?}\n{err}",
        out.status
    );
    assert_round_trip(&report);
    assert_eq!(report["channel"], format!("{group}:{port}"));
    assert!(
        err.contains(&format!("({group}:{port}): Processing \"obj\"")),
        "{err}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn transmit_with_member_follows_the_configured_role_file() {
    let dir = tempdir("member");
    let (group, port) = channel(2);
    let role = dir.join("run/g.role");
    let head = format!(
        "name: g\nnetworks: [{{name: n1}}]\nmembers:\n  - {{name: a, priority: 100, addresses: {{n1: 127.0.0.1}}}}\n  - {{name: b, priority: 50, addresses: {{n1: 127.0.0.2}}}}\nroleFile: {}\n",
        role.display()
    );
    let cfg = config(&dir, &head, &group, port);
    let tx = Command::new(RDG)
        .args([
            "transmit",
            "--member",
            "a",
            "--interface",
            "127.0.0.1",
            "--config",
        ])
        .arg(&cfg)
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // No role file yet: nothing is sent.
    let quiet = receive(&group, port, "0.5");
    assert_eq!(quiet["datagrams"], 0, "{quiet:#}");
    // Hot with a lease of a minute (CLOCK_MONOTONIC ms, like the agent writes it).
    let ts = nix::time::clock_gettime(nix::time::ClockId::CLOCK_MONOTONIC).unwrap();
    let now_ms = ts.tv_sec() as u64 * 1000 + ts.tv_nsec() as u64 / 1_000_000;
    std::fs::create_dir_all(role.parent().unwrap()).unwrap();
    std::fs::write(
        &role,
        format!(
            "{{\"member\":\"a\",\"role\":\"HS\",\"epoch\":1,\"leaseUntilMonotonicMs\":{}}}",
            now_ms + 60_000
        ),
    )
    .unwrap();
    let report = receive(&group, port, "1.5");
    let out = terminate(tx);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{err}");
    assert_round_trip(&report);
    assert!(err.contains("gate open: member a is HS"), "{err}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn agent_runs_the_carousel_while_hot() {
    let dir = tempdir("agent");
    let (group, port) = channel(3);
    let cfg = config(&dir, "name: \"\"\n", &group, port);
    let role = dir.join("solo.role");
    let agent = Command::new(RDG)
        .args([
            "agent",
            "--member",
            "solo",
            "--status-listen",
            "127.21.3.9:9035",
        ])
        .args(["--transmit-interface", "127.0.0.1", "--config"])
        .arg(&cfg)
        .arg("--role-file")
        .arg(&role)
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // The standalone agent is hot at once; the carousel starts when its role file says so.
    let deadline = Instant::now() + Duration::from_secs(5);
    while !role.exists() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(10));
    }
    let report = receive(&group, port, "1.5");
    let out = terminate(agent);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{err}");
    assert_round_trip(&report);
    assert!(err.contains("gate open: member solo is HS"), "{err}");
    let _ = std::fs::remove_dir_all(&dir);
}

/// `GET path` on `addr` (HTTP/1.0): the body, or None while nothing answers.
fn http_get(addr: &str, path: &str) -> Option<String> {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(addr).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(2))).ok()?;
    write!(s, "GET {path} HTTP/1.0\r\nHost: {addr}\r\n\r\n").ok()?;
    let mut text = String::new();
    s.read_to_string(&mut text).ok()?;
    let (head, body) = text.split_once("\r\n\r\n")?;
    (head.split(' ').nth(1) == Some("200")).then(|| body.to_string())
}

/// The value of `series` (name and labels, exactly as encoded) in a `/metrics` text.
fn sample(text: &str, series: &str) -> Option<f64> {
    text.lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
}

/// Scrapes `addr` until `ok` holds for `series` or `within` passes; the last value and the
/// text.
fn poll_within(
    addr: &str,
    series: &str,
    within: Duration,
    ok: impl Fn(f64) -> bool,
) -> (Option<f64>, String) {
    let deadline = Instant::now() + within;
    loop {
        let text = http_get(addr, "/metrics").unwrap_or_default();
        let v = sample(&text, series);
        if v.is_some_and(&ok) || Instant::now() >= deadline {
            return (v, text);
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// [`poll_within`] 10 s.
fn poll_metric(addr: &str, series: &str, ok: impl Fn(f64) -> bool) -> (Option<f64>, String) {
    poll_within(addr, series, Duration::from_secs(10), ok)
}

/// Bytes sent keep growing: two scrapes in a row, each above the one before.
fn assert_bytes_grow(addr: &str, bytes: &str) {
    let (first, text) = poll_metric(addr, bytes, |v| v > 0.0);
    let first = first.unwrap_or_else(|| panic!("{bytes} never above 0:\n{text}"));
    let (second, text) = poll_metric(addr, bytes, |v| v > first);
    assert!(
        second.is_some_and(|v| v > first),
        "{bytes} stuck at {first}:\n{text}"
    );
}

#[test]
fn agent_metrics_show_its_carousel_sending_while_hot() {
    let dir = tempdir("agent-metrics");
    let (group, port) = channel(5);
    let cfg = config(&dir, "name: \"\"\n", &group, port);
    let status = "127.21.5.9:9035";
    let agent = Command::new(RDG)
        .args(["agent", "--member", "solo", "--status-listen", status])
        .args(["--transmit-interface", "127.0.0.1", "--config"])
        .arg(&cfg)
        .arg("--role-file")
        .arg(dir.join("solo.role"))
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let ch = format!("{{channel=\"{group}:{port}\"}}");
    // Standalone: hot at once, so the gate opens and the carousel's counters grow on the
    // agent's own /metrics.
    let (sending, text) = poll_metric(status, &format!("rdg_carousel_sending{ch}"), |v| v == 1.0);
    assert_bytes_grow(status, &format!("rdg_carousel_bytes_sent_total{ch}"));
    let (datagrams, _) = poll_metric(
        status,
        &format!("rdg_carousel_datagrams_sent_total{ch}"),
        |v| v > 0.0,
    );
    let (cycles, _) = poll_metric(status, &format!("rdg_carousel_cycles_total{ch}"), |v| {
        v > 0.0
    });
    let errors = sample(&text, &format!("rdg_carousel_send_errors_total{ch}"));
    let out = terminate(agent);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(sending, Some(1.0), "{text}\n{err}");
    assert!(datagrams.is_some_and(|v| v > 0.0), "{err}");
    assert!(cycles.is_some_and(|v| v > 0.0), "{err}");
    assert_eq!(errors, Some(0.0), "{text}");
    assert!(text.contains("rdg_state{state=\"HS\"} 1"), "{text}");
    assert!(out.status.success(), "{err}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn transmit_metrics_listen_serves_the_carousel_gated_and_sending() {
    let dir = tempdir("transmit-metrics");
    let (group, port) = channel(6);
    let role = dir.join("run/g.role");
    let head = format!(
        "name: g\nnetworks: [{{name: n1}}]\nmembers:\n  - {{name: a, priority: 100, addresses: {{n1: 127.0.0.1}}}}\n  - {{name: b, priority: 50, addresses: {{n1: 127.0.0.2}}}}\nroleFile: {}\n",
        role.display()
    );
    let cfg = config(&dir, &head, &group, port);
    let metrics = "127.21.6.9:9036";
    let tx = Command::new(RDG)
        .args(["transmit", "--member", "a", "--interface", "127.0.0.1"])
        .args(["--metrics-listen", metrics, "--config"])
        .arg(&cfg)
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let ch = format!("{{channel=\"{group}:{port}\"}}");
    let sending = format!("rdg_carousel_sending{ch}");
    let bytes = format!("rdg_carousel_bytes_sent_total{ch}");
    // No role file: gated off, nothing sent.
    let (gated, text) = poll_metric(metrics, &sending, |v| v == 0.0);
    assert_eq!(gated, Some(0.0), "{text}");
    assert_eq!(sample(&text, &bytes), Some(0.0), "{text}");
    // Hot with a lease of a minute: the gate opens and the bytes grow.
    let write_role = |role_name: &str| {
        let ts = nix::time::clock_gettime(nix::time::ClockId::CLOCK_MONOTONIC).unwrap();
        let now_ms = ts.tv_sec() as u64 * 1000 + ts.tv_nsec() as u64 / 1_000_000;
        std::fs::create_dir_all(role.parent().unwrap()).unwrap();
        let tmp = role.with_extension("tmp");
        std::fs::write(
            &tmp,
            format!(
                "{{\"member\":\"a\",\"role\":\"{role_name}\",\"epoch\":1,\"leaseUntilMonotonicMs\":{}}}",
                now_ms + 60_000
            ),
        )
        .unwrap();
        std::fs::rename(&tmp, &role).unwrap();
    };
    write_role("HS");
    let (open, text) = poll_metric(metrics, &sending, |v| v == 1.0);
    assert_eq!(open, Some(1.0), "{text}");
    assert_bytes_grow(metrics, &bytes);
    // Standby: gated off again, and the bytes stop.
    write_role("SBS");
    let (closed, text) = poll_metric(metrics, &sending, |v| v == 0.0);
    assert_eq!(closed, Some(0.0), "{text}");
    // A chunk that passed the gate just before it closed may still go out; nothing after it.
    let stopped = sample(&text, &bytes).unwrap();
    let one_chunk = 1024.0 + 64.0;
    let (later, text) = poll_within(metrics, &bytes, Duration::from_secs(1), |v| {
        v > stopped + one_chunk
    });
    let out = terminate(tx);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        later.is_some_and(|v| v <= stopped + one_chunk),
        "sent while gated off ({stopped} then {later:?}):\n{text}\n{err}"
    );
    assert!(out.status.success(), "{err}");
    assert!(err.contains("gate closed: member a is SBS"), "{err}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn carousel_config_problems_exit_2_with_their_paths() {
    let dir = tempdir("bad");
    let cfg = dir.join("bad.yaml");
    std::fs::write(
        &cfg,
        "transmitter:
  channels:
    - address: 239.255.1.1
      port: 22222
      bitRate: 2Mbit
      burstDelay: 2m
      objects:
        - {name: both, source: /tmp/x, bootcast: {kernelAddress: \"224.2.2.3:1\", kernelName: k, kernelVersion: \"1\"}}
        - {name: neither}
        - {name: generic, bootcast: {kernelAddress: \"10.0.0.1:1\", kernelName: k, kernelVersion: \"1\"}}
        - {name: often, source: /tmp/x, repeatDelay: 0s}
",
    )
    .unwrap();
    for args in [
        vec!["check-config", cfg.to_str().unwrap()],
        vec!["transmit", "--config", cfg.to_str().unwrap()],
    ] {
        let out = Command::new(RDG).args(&args).output().unwrap();
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        let err = String::from_utf8_lossy(&out.stderr);
        let c = "transmitter.channels[0]";
        for path in [
            format!("{c}.burstDelay:"),
            format!("{c}.objects[0]:"),
            format!("{c}.objects[1].source:"),
            format!("{c}.objects[2].bootcast:"),
            format!("{c}.objects[2].bootcast.kernelAddress:"),
            format!("{c}.objects[3].repeatDelay:"),
        ] {
            assert!(err.contains(&path), "{args:?}: no {path:?} in:\n{err}");
        }
    }
    // A configuration without a transmitter section has nothing to send.
    std::fs::write(&cfg, "name: \"\"\n").unwrap();
    let out = Command::new(RDG)
        .args(["transmit", "--config", cfg.to_str().unwrap()])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("transmitter: missing"));
    let _ = std::fs::remove_dir_all(&dir);
}

//! The real `rdg agent` as separate processes on loopback (unicast heartbeats on two networks of
//! 127.x addresses), so these run without root: election, kill -9 and takeover, SIGSTOP and
//! self-fencing, graceful hand-over on SIGTERM, `/status`, `/metrics`, `rdg status`, bad
//! datagrams, standalone mode, notify commands and mails and start-up errors. The network-namespace
//! suite (e2e/) repeats the faults with multicast, links and net checks as root.

#[path = "../crates/rdg-agent/tests/smtp/mod.rs"]
mod smtp;

use rdg_agent::local_group::LocalGroup;
use rdg_core::State;
use serde_json::Value;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream, UdpSocket};
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const RDG: &str = env!("CARGO_BIN_EXE_rdg");

/// Group `t{k}` of `members` (with priorities) plus `extra` YAML, on loopback addresses
/// 127.k.x.y, so tests never share an address.
fn group(k: u8, members: &[(&str, u16)], extra: &str) -> LocalGroup {
    members
        .iter()
        .fold(
            LocalGroup::builder(RDG, &format!("t{k}"), k),
            |b, (name, prio)| b.member(name, *prio),
        )
        .extra_yaml(extra)
        .build()
        .unwrap()
}

/// `GET path` from `name`'s status endpoint.
fn get(g: &LocalGroup, name: &str, path: &str) -> (u16, String) {
    http(g.status_addr(name), "GET", path)
}

/// `name`'s `/status` as JSON.
fn status(g: &LocalGroup, name: &str) -> Value {
    let (code, body) = get(g, name, "/status");
    assert_eq!(code, 200, "{body}");
    serde_json::from_str(&body).unwrap()
}

/// A minimal HTTP/1.0 request; returns the status code and body.
fn http(addr: SocketAddr, method: &str, path: &str) -> (u16, String) {
    http_with(addr, method, path, "")
}

/// [`http`] with extra header lines (each ending in `\r\n`).
fn http_with(addr: SocketAddr, method: &str, path: &str, headers: &str) -> (u16, String) {
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(2)).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(3))).unwrap();
    write!(
        s,
        "{method} {path} HTTP/1.0\r\nHost: x\r\n{headers}Content-Length: 0\r\n\r\n"
    )
    .unwrap();
    let mut text = String::new();
    s.read_to_string(&mut text).unwrap();
    let code = text
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let body = text
        .split_once("\r\n\r\n")
        .map_or("", |(_, b)| b)
        .to_string();
    (code, body)
}

/// Value of one sample line of a Prometheus text exposition (0 when absent).
fn metric(text: &str, series: &str) -> f64 {
    text.lines()
        .find_map(|l| l.strip_prefix(series).and_then(|v| v.trim().parse().ok()))
        .unwrap_or(0.0)
}

const SETTLE: Duration = Duration::from_secs(5);

#[test]
fn first_up_is_hot_kill9_fails_over_and_sigterm_hands_over() {
    let mut g = group(11, &[("a", 100), ("b", 50), ("c", 10)], "");
    g.start("c").unwrap();
    g.wait_until(SETTLE, "c hot (first up)", || g.role_is("c", State::HS));
    g.start("a").unwrap();
    g.start("b").unwrap();
    g.wait_until(SETTLE, "a and b standby", || {
        g.role_is("a", State::SBS) && g.role_is("b", State::SBS)
    });
    // No preemption: the higher-priority late comers stay standby behind c.
    let st = status(&g, "a");
    assert_eq!(st["hot"], "c", "{st}");
    assert_eq!(st["state"], "SBS");
    let c = st["members"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["name"] == "c")
        .unwrap();
    assert_eq!(c["state"], "HS");
    assert_eq!(c["alive"], true);
    assert_eq!(c["networks"][0]["healthy"], true);
    assert_eq!(c["networks"][1]["healthy"], true);
    let log = std::fs::read_to_string(g.log_path("a")).unwrap();
    assert!(log.contains("Primary/coordinator: c@127.11.1.3"), "{log}");

    // kill -9 the hot member: the best standby (a) takes over, never two hot at once.
    let epoch = g.role("c").unwrap().epoch;
    g.kill9("c").unwrap();
    let took = g.wait_until(SETTLE, "a hot after c was killed", || {
        let hot = g.hot_now();
        assert!(hot.len() <= 1, "two hot members: {hot:?}\n{}", g.logs());
        g.role_is("a", State::HS)
    });
    eprintln!("takeover observed {} ms after kill -9", took.as_millis());
    assert_eq!(g.role("a").unwrap().epoch, epoch + 1);
    assert!(g.role_is("b", State::SBS));
    g.wait_until(SETTLE, "b's role file names the new hot epoch", || {
        g.role("b").is_some_and(|r| r.epoch == epoch + 1)
    });
    let st = status(&g, "b");
    assert_eq!(st["hot"], "a");
    let c = st["members"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["name"] == "c")
        .unwrap();
    assert_eq!(c["alive"], false, "{st}");

    // `rdg status` over the network agrees, and names the missing member.
    let out = Command::new(RDG)
        .args(["status", "--json", "--config"])
        .arg(g.config_path())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["group"], "t11");
    assert_eq!(v["hot"], "a");
    assert_eq!(v["epoch"].as_u64().unwrap(), epoch + 1);
    let states: Vec<(String, String)> = v["members"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| {
            (
                m["name"].as_str().unwrap().into(),
                m["state"].as_str().unwrap().into(),
            )
        })
        .collect();
    assert_eq!(
        states,
        [("a".into(), "HS".into()), ("b".into(), "SBS".into())]
    );
    assert_eq!(v["missing"], serde_json::json!(["c"]));

    // SIGTERM: a releases first, then leaves naming b, who takes over without waiting for
    // the timeout.
    g.signal("a", nix::sys::signal::Signal::SIGTERM).unwrap();
    let handed = g.wait_until(SETTLE, "b hot after a's graceful stop", || {
        g.role_is("b", State::HS)
    });
    let a = g.wait_exit("a").unwrap();
    assert!(a.success(), "graceful stop exits 0: {a:?}");
    assert!(g.role_is("a", State::SBS), "a released its role file");
    assert!(
        handed < Duration::from_millis(250),
        "hand-over took {handed:?}, longer than the heartbeat timeout\n{}",
        g.logs()
    );
}

#[test]
fn frozen_hot_member_is_replaced_and_steps_down_when_it_resumes() {
    let mut g = group(12, &[("a", 100), ("b", 50), ("c", 10)], "");
    g.start("a").unwrap();
    g.wait_until(SETTLE, "a hot", || g.role_is("a", State::HS));
    g.start("b").unwrap();
    g.start("c").unwrap();
    g.wait_until(SETTLE, "b and c standby", || {
        g.role_is("b", State::SBS) && g.role_is("c", State::SBS)
    });
    g.signal("a", nix::sys::signal::Signal::SIGSTOP).unwrap();
    let frozen_lease = g.role("a").unwrap().lease_until_monotonic_ms;
    g.wait_until(SETTLE, "b hot while a is frozen", || {
        g.role_is("b", State::HS)
    });
    // The standby took over only after the frozen member's lease had run out.
    let b = g.role("b").unwrap();
    assert!(
        b.lease_until_monotonic_ms > frozen_lease,
        "b {b:?} vs a's lease {frozen_lease}"
    );
    // Stay frozen for 2 x timeout in all, then resume: a steps down at once and stays down,
    // though its socket holds a backlog of heartbeats from before b took over.
    std::thread::sleep(Duration::from_millis(250));
    g.signal("a", nix::sys::signal::Signal::SIGCONT).unwrap();
    g.wait_until(Duration::from_secs(2), "a standby after resuming", || {
        g.role_is("a", State::SBS)
    });
    // Role files, not leases: on a loaded machine b's renewal can come late and its lease lapse
    // for a moment (the fence doing its job; CI saw it once). What matters here is that a never
    // claims the role back, b never gives it up, and nobody else holds a lease.
    let watch = Instant::now();
    while watch.elapsed() < Duration::from_secs(1) {
        let claiming: Vec<String> = ["a", "b", "c"]
            .into_iter()
            .filter(|m| g.role_is(m, State::HS))
            .map(String::from)
            .collect();
        assert_eq!(claiming, ["b"], "b stays the only hot member\n{}", g.logs());
        let leased = g.hot_now();
        assert!(
            leased.iter().all(|m| m == "b"),
            "a lease other than b's: {leased:?}\n{}",
            g.logs()
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    g.wait_until(SETTLE, "a logs why it stepped down", || {
        let log = std::fs::read_to_string(g.log_path("a")).unwrap_or_default();
        log.contains("released the hot role reason=\"lease-expired\"")
    });
}

#[test]
fn bad_datagrams_are_counted_and_change_nothing() {
    let mut g = group(13, &[("a", 100), ("b", 50)], "auth: {keyFile: KEY}\n");
    let key = g.dir().join("key");
    std::fs::write(&key, "0123456789abcdef\n").unwrap();
    let text = std::fs::read_to_string(g.config_path())
        .unwrap()
        .replace("KEY", key.to_str().unwrap());
    std::fs::write(g.config_path(), text).unwrap();
    g.start("a").unwrap();
    g.wait_until(SETTLE, "a hot", || g.role_is("a", State::HS));
    g.start("b").unwrap();
    g.wait_until(SETTLE, "b standby", || g.role_is("b", State::SBS));
    let before = (g.role("a").unwrap(), g.role("b").unwrap().epoch);

    let msg = |group: &str, member: &str| rdg_core::wire::Message {
        kind: rdg_core::wire::MessageType::Heartbeat,
        group: group.into(),
        member: member.into(),
        state: rdg_core::State::HS,
        temporal: rdg_core::TemporalState::None,
        priority: 1000,
        epoch: 99,
        incarnation: u64::MAX,
        sequence: 1,
        network: 0,
        flags: rdg_core::wire::Flags::default(),
        hot: member.into(),
        hot_heard_ago: None,
        content: None,
    };
    let good_key = b"0123456789abcdef";
    let signed = rdg_core::wire::encode(&msg("t13", "a"), Some(b"wrong key")).unwrap();
    let foreign = rdg_core::wire::encode(&msg("other", "a"), Some(good_key)).unwrap();
    let unsigned = rdg_core::wire::encode(&msg("t13", "a"), None).unwrap();
    let stranger = rdg_core::wire::encode(&msg("t13", "mallory"), Some(good_key)).unwrap();
    let sock = UdpSocket::bind("127.13.9.9:0").unwrap();
    let target = "127.13.1.2:18035";
    let mut sent = 0;
    let mut junk = vec![b"RDG".to_vec(), vec![0u8; 600], signed[..20].to_vec()];
    for seed in 0..200u32 {
        junk.push((0..(seed % 90)).map(|i| (i * 31 + seed) as u8).collect());
    }
    junk.extend([signed, foreign, unsigned, stranger]);
    for d in &junk {
        sock.send_to(d, target).unwrap();
        sent += 1;
    }
    let series = |reason: &str| {
        format!("rdg_datagrams_rejected_total{{network=\"n1\",reason=\"{reason}\"}}")
    };
    g.wait_until(SETTLE, "b counted the bad datagrams", || {
        let (_, m) = get(&g, "b", "/metrics");
        metric(&m, &series("bad_mac")) >= 1.0
            && metric(&m, &series("wrong_group")) >= 1.0
            && metric(&m, &series("missing_mac")) >= 1.0
            && metric(&m, "rdg_datagrams_ignored_total{reason=\"unknown_member\"}") >= 1.0
    });
    let (_, m) = get(&g, "b", "/metrics");
    let rejected: f64 = m
        .lines()
        .filter(|l| l.starts_with("rdg_datagrams_rejected_total{network=\"n1\""))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum();
    assert!(
        rejected >= (sent - 1) as f64,
        "{rejected} of {sent} rejected\n{m}"
    );
    assert!(
        metric(&m, "rdg_heartbeats_received_total{network=\"n1\"}") > 0.0,
        "{m}"
    );
    // Nothing changed: same hot member, same epochs, both agents alive and answering.
    assert_eq!(g.role("a").unwrap().epoch, before.0.epoch);
    assert!(
        g.role_is("a", State::HS) && g.role_is("b", State::SBS),
        "{}",
        g.logs()
    );
    assert_eq!(g.role("b").unwrap().epoch, before.1);
    assert_eq!(get(&g, "a", "/healthz").0, 200);
    assert_eq!(get(&g, "b", "/healthz").0, 200);
}

#[test]
fn notify_command_gets_event_group_member_epoch_reason() {
    let mut g = group(14, &[("a", 100), ("b", 50)], "");
    let out = g.dir().join("events");
    let script = g.dir().join("notify.sh");
    std::fs::write(
        &script,
        format!("#!/bin/sh\necho \"$@\" >> {}\n", out.display()),
    )
    .unwrap();
    let exec = <std::fs::Permissions as std::os::unix::fs::PermissionsExt>::from_mode(0o755);
    std::fs::set_permissions(&script, exec).unwrap();
    let mut cfg = std::fs::read_to_string(g.config_path()).unwrap();
    cfg.push_str(&format!("notify: {{command: [{}]}}\n", script.display()));
    std::fs::write(g.config_path(), cfg).unwrap();
    g.start("a").unwrap();
    g.wait_until(SETTLE, "a hot", || g.role_is("a", State::HS));
    g.start("b").unwrap();
    g.wait_until(SETTLE, "b standby", || g.role_is("b", State::SBS));
    g.kill9("a").unwrap();
    g.wait_until(SETTLE, "b hot", || g.role_is("b", State::HS));
    let events = || std::fs::read_to_string(&out).unwrap_or_default();
    g.wait_until(SETTLE, "notifications written", || {
        let e = events();
        e.contains("hot t14 a 1 election")
            && e.contains("standby t14 b")
            && e.contains("hot t14 b 2 takeover")
    });
}

#[test]
fn a_takeover_mails_the_previous_hot_member_and_the_detection_time() {
    let Some(server) = smtp::SmtpServer::start("agent-takeover", &[]) else {
        return;
    };
    let mut g = group(
        18,
        &[("a", 100), ("b", 50)],
        &format!(
            "notify: {{email: {{server: 127.0.0.1, port: {}, security: none, from: \
             rdg@example.com, to: [ops@example.com], minInterval: 1s}}}}\n",
            server.addr.port()
        ),
    );
    g.start("a").unwrap();
    g.wait_until(SETTLE, "a hot", || g.role_is("a", State::HS));
    g.start("b").unwrap();
    g.wait_until(SETTLE, "b standby", || g.role_is("b", State::SBS));
    server.wait_for_blocking(1, SETTLE);
    g.kill9("a").unwrap();
    g.wait_until(SETTLE, "b hot", || g.role_is("b", State::HS));
    let mails = server.wait_for_blocking(2, SETTLE);
    assert_eq!(
        mails[0].header("Subject"),
        "[rdg] t18/a: became hot (election)"
    );
    let takeover = &mails[1];
    let subject = takeover.header("Subject");
    assert!(
        subject.starts_with("[rdg] t18/b: became hot (takeover from a, lost after "),
        "{subject}"
    );
    assert!(
        takeover.body.contains("Previous hot member: a\n"),
        "{}",
        takeover.body
    );
    let ms: u64 = takeover
        .body
        .lines()
        .find_map(|l| l.strip_prefix("Detection time:"))
        .and_then(|v| v.trim().strip_suffix(" ms"))
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("no detection time in {}", takeover.body));
    // Silent for at least the heartbeat timeout (250 ms) before it was declared lost.
    assert!((250..5000).contains(&ms), "detection {ms} ms");
    g.wait_until(SETTLE, "the mail counted", || {
        get(&g, "b", "/metrics")
            .1
            .contains("rdg_notify_emails_sent_total 1\n")
    });
    // A graceful stop mails at once, whatever the rate limit holds back: the hand-over and
    // the stop in one mail.
    g.stop("b").unwrap();
    let mails = server.wait_for_blocking(3, SETTLE);
    let stop = &mails[2];
    assert_eq!(
        stop.header("Subject"),
        "[rdg] t18/b: 2 events, last: agent stopped",
        "{}",
        stop.body
    );
    assert!(
        stop.body
            .contains("1. handed the hot role over (shutdown)\n2. agent stopped\n"),
        "{}",
        stop.body
    );
}

#[test]
fn standalone_member_is_always_hot_without_heartbeats() {
    let dir = std::env::temp_dir().join(format!("rdg-standalone-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let cfg = dir.join("solo.yaml");
    std::fs::write(
        &cfg,
        "name: \"\"\nheartbeat: {interval: 50ms, timeout: 250ms}\n",
    )
    .unwrap();
    let role = dir.join("solo.role");
    let child = Command::new(RDG)
        .args([
            "agent",
            "--member",
            "solo",
            "--status-listen",
            "127.14.3.9:9035",
            "--config",
        ])
        .arg(&cfg)
        .arg("--role-file")
        .arg(&role)
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let start = Instant::now();
    let read =
        || -> Option<Value> { serde_json::from_str(&std::fs::read_to_string(&role).ok()?).ok() };
    let mut leases = Vec::new();
    while start.elapsed() < Duration::from_secs(5) && leases.len() < 3 {
        if let Some(r) = read() {
            assert_eq!(r["role"], "HS", "{r}");
            let l = r["leaseUntilMonotonicMs"].as_u64().unwrap();
            if leases.last() != Some(&l) {
                leases.push(l);
            }
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    assert!(leases.len() >= 3, "the lease is renewed: {leases:?}");
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(child.id() as i32),
        nix::sys::signal::Signal::SIGTERM,
    )
    .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(err.matches("running standalone").count(), 1, "{err}");
    let _ = std::fs::remove_dir_all(&dir);
}

fn run_agent(config: &Path, member: &str, status: &str) -> (i32, String) {
    let mut child = Command::new(RDG)
        .args([
            "agent",
            "--member",
            member,
            "--status-listen",
            status,
            "--config",
        ])
        .arg(config)
        .arg("--role-file")
        .arg(config.with_extension("role"))
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let start = Instant::now();
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            let mut err = String::new();
            child
                .stderr
                .take()
                .unwrap()
                .read_to_string(&mut err)
                .unwrap();
            return (status.code().unwrap_or(-1), err);
        }
        if start.elapsed() > Duration::from_secs(5) {
            let _ = child.kill();
            panic!("rdg agent kept running with a start-up error");
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

#[test]
fn start_up_errors_name_the_problem() {
    let g = group(15, &[("a", 100), ("b", 50)], "");
    let (code, err) = run_agent(g.config_path(), "zed", "127.15.3.1:9035");
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains("\"zed\" is not in the group's members list"),
        "{err}"
    );

    // An address this host does not have (192.0.2.0/24 is reserved for documentation).
    let other = g.dir().join("foreign.yaml");
    let text = std::fs::read_to_string(g.config_path())
        .unwrap()
        .replace("127.15.1.1", "192.0.2.1");
    std::fs::write(&other, text).unwrap();
    let (code, err) = run_agent(&other, "a", "127.15.3.1:9035");
    assert_eq!(code, 1, "{err}");
    assert!(
        err.contains("192.0.2.1 is not an address of this host"),
        "{err}"
    );

    // The status port is taken.
    let _hold = std::net::TcpListener::bind("127.15.3.1:9035").unwrap();
    let (code, err) = run_agent(g.config_path(), "a", "127.15.3.1:9035");
    assert_eq!(code, 1, "{err}");
    assert!(
        err.contains("status.listen: cannot listen on 127.15.3.1:9035"),
        "{err}"
    );

    // The role file cannot be written (a directory stands where it should go).
    let blocked = g.dir().join("blocked.yaml");
    std::fs::copy(g.config_path(), &blocked).unwrap();
    std::fs::create_dir_all(blocked.with_extension("role")).unwrap();
    let (code, err) = run_agent(&blocked, "a", "127.15.3.1:9037");
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("cannot write role file"), "{err}");

    let bad = g.dir().join("bad.yaml");
    std::fs::write(&bad, "name: x\nheartbeat: {interval: 1s, timeout: 1s}\n").unwrap();
    let (code, err) = run_agent(&bad, "a", "127.15.3.1:9036");
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("heartbeat.timeout"), "{err}");
}

#[test]
fn operator_switchover_over_http() {
    let mut g = group(16, &[("a", 100), ("b", 0)], "");
    g.start("a").unwrap();
    g.wait_until(SETTLE, "a hot", || g.role_is("a", State::HS));
    g.start("b").unwrap();
    g.wait_until(SETTLE, "b standby", || g.role_is("b", State::SBS));
    let addr = g.status_addr("a");

    // The agent created its token beside its role file, readable by its owner only.
    let token_path = g.role_path("a").with_extension("token");
    let mode = std::fs::metadata(&token_path).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600, "{}", token_path.display());
    let token = std::fs::read_to_string(&token_path).unwrap();
    let token = token.trim();
    assert!(token.len() >= 32, "{token:?}");

    // Without the token, or with another one, nothing moves: 401, logged and counted.
    let (code, body) = http(addr, "POST", "/switchover?to=b");
    assert_eq!(code, 401, "{body}");
    let wrong = format!("Authorization: Bearer {}\r\n", "0".repeat(64));
    let (code, body) = http_with(addr, "POST", "/switchover?to=b", &wrong);
    assert_eq!(code, 401, "{body}");
    let (code, body) = http_with(addr, "POST", "/switchover", &wrong);
    assert_eq!(code, 401, "an unauthorised caller learns nothing: {body}");
    let (_, metrics) = get(&g, "a", "/metrics");
    assert_eq!(metric(&metrics, "rdg_switchover_unauthorized_total "), 3.0);
    g.wait_until(SETTLE, "the refusals in a's log", || {
        let log = std::fs::read_to_string(g.log_path("a")).unwrap_or_default();
        log.matches("switchover refused").count() >= 3
    });
    // The other endpoints are read-only; switchover is POST only.
    for path in ["/status", "/healthz", "/metrics"] {
        assert_eq!(http(addr, "POST", path).0, 405, "POST {path}");
    }
    assert_eq!(http(addr, "GET", "/switchover?to=b").0, 405);
    assert!(g.role_is("a", State::HS) && g.role_is("b", State::SBS));

    // `rdg switchover` reads the token and passes it; an unknown member is refused.
    let cli = |to: &str| {
        let out = Command::new(RDG)
            .arg("switchover")
            .arg("--config")
            .arg(g.config_path())
            .arg("--role-file")
            .arg(g.role_path("a"))
            .args(["--status-listen", &addr.to_string(), "--to", to])
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout).to_string()
            + &String::from_utf8_lossy(&out.stderr);
        (out.status.code(), text)
    };
    let (code, text) = cli("nobody");
    assert_eq!(code, Some(1), "{text}");
    assert!(text.contains("HTTP 400"), "{text}");
    let (code, text) = cli("b");
    assert_eq!(code, Some(0), "{text}");
    assert!(text.contains("switchover to b requested"), "{text}");
    // Priority 0 is allowed by an operator's command.
    g.wait_until(SETTLE, "b hot by switchover", || {
        let hot = g.hot_now();
        assert!(hot.len() <= 1, "two hot members: {hot:?}");
        g.role_is("b", State::HS)
    });
    g.wait_until(SETTLE, "a standby", || g.role_is("a", State::SBS));

    // The raw request with the token is accepted as well (the reporter's way).
    let bearer = format!("Authorization: Bearer {token}\r\n");
    let b_token = std::fs::read_to_string(g.role_path("b").with_extension("token")).unwrap();
    assert_ne!(b_token.trim(), token, "each member has its own token");
    let b_bearer = format!("Authorization: Bearer {}\r\n", b_token.trim());
    let (code, body) = http_with(g.status_addr("b"), "POST", "/switchover?to=a", &bearer);
    assert_eq!(code, 401, "a's token opens b: {body}");
    let (code, body) = http_with(g.status_addr("b"), "POST", "/switchover?to=a", &b_bearer);
    assert_eq!(code, 202, "{body}");
    g.wait_until(SETTLE, "a hot again", || g.role_is("a", State::HS));
}

#[test]
fn a_reload_that_cannot_read_its_keys_keeps_the_current_ones() {
    let dir =
        rdg_agent::local_group::scratch_dir().join(format!("rdg-reload-{}", std::process::id()));
    let key = dir.join("group.key");
    let mut g = LocalGroup::builder(RDG, "t17", 17)
        .member("a", 100)
        .member("b", 50)
        .dir(&dir)
        .extra_yaml(&format!("auth: {{keyFile: {}}}\n", key.display()))
        .build()
        .unwrap();
    std::fs::write(&key, "0123456789abcdef0123456789abcdef\n").unwrap();
    g.start("a").unwrap();
    g.wait_until(SETTLE, "a hot", || g.role_is("a", State::HS));
    g.start("b").unwrap();
    g.wait_until(SETTLE, "b standby", || g.role_is("b", State::SBS));
    let sample = |series: &str| metric(&get(&g, "a", "/metrics").1, series);
    assert_eq!(sample("rdg_auth_keys "), 1.0);

    // A key file that is not there, then authentication turned off: both refused, logged.
    let yaml = std::fs::read_to_string(g.config_path()).unwrap();
    let missing = yaml.replace(
        &key.display().to_string(),
        &dir.join("missing.key").display().to_string(),
    );
    let without_auth: String = yaml
        .lines()
        .filter(|l| !l.starts_with("auth:"))
        .map(|l| format!("{l}\n"))
        .collect();
    for (i, text) in [missing, without_auth].iter().enumerate() {
        std::fs::write(g.config_path(), text).unwrap();
        g.signal("a", nix::sys::signal::Signal::SIGHUP).unwrap();
        let failed = (i + 1) as f64;
        g.wait_until(SETTLE, "the reload to fail", || {
            sample("rdg_config_reloads_total{result=\"failed\"} ") == failed
        });
    }
    let log = std::fs::read_to_string(g.log_path("a")).unwrap();
    assert!(log.contains("missing.key"), "{log}");
    assert!(
        log.contains("turning heartbeat authentication on or off"),
        "{log}"
    );
    assert_eq!(sample("rdg_auth_keys "), 1.0);
    // Still one group: b hears a with the key both still use.
    let heard = metric(
        &get(&g, "b", "/metrics").1,
        "rdg_heartbeats_received_total{network=\"n1\"} ",
    );
    g.wait_until(SETTLE, "b to keep accepting a's heartbeats", || {
        metric(
            &get(&g, "b", "/metrics").1,
            "rdg_heartbeats_received_total{network=\"n1\"} ",
        ) >= heard + 5.0
    });
    let b_metrics = get(&g, "b", "/metrics").1;
    let rejected: Vec<&str> = b_metrics
        .lines()
        .filter(|l| l.starts_with("rdg_datagrams_rejected_total{") && !l.ends_with(" 0"))
        .collect();
    assert!(rejected.is_empty(), "b rejected datagrams: {rejected:?}");
    assert!(g.role_is("a", State::HS) && g.role_is("b", State::SBS));
}

//! The shipped examples are valid, and each typical mistake made to the design's example is
//! reported at the exact field path an operator has to fix.

use proptest::prelude::*;
use rdg_core::config::{GroupConfig, LoadError, Problem, parse_bit_rate, parse_cidr};
use std::collections::BTreeSet;
use std::path::Path;

const INFOCAST: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../examples/infocast.yaml");
const MINIMAL: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../examples/minimal.yaml");

fn example() -> String {
    std::fs::read_to_string(INFOCAST).expect("examples/infocast.yaml is readable")
}

/// Shape errors and rule problems of a YAML text, as one list.
fn problems_of(yaml: &str) -> Vec<Problem> {
    match GroupConfig::from_yaml(yaml) {
        Err(e) => vec![e.into()],
        Ok(cfg) => cfg.problems(),
    }
}

/// The example with `from` replaced by `to`; `from` must occur exactly once.
fn mutate(text: &str, from: &str, to: &str) -> String {
    assert_eq!(
        text.matches(from).count(),
        1,
        "{from:?} must occur exactly once in the example"
    );
    text.replacen(from, to, 1)
}

#[test]
fn shipped_examples_are_valid() {
    for file in [INFOCAST, MINIMAL] {
        let cfg = match GroupConfig::load(Path::new(file)) {
            Ok(cfg) => cfg,
            Err(e) => panic!("{file}: {:#?}", e.problems()),
        };
        assert!(!cfg.is_standalone());
    }
    let cfg = GroupConfig::load(Path::new(MINIMAL)).expect("valid");
    let members: Vec<(&str, u16)> = cfg
        .members
        .iter()
        .map(|m| (m.name.as_str(), m.priority))
        .collect();
    assert_eq!(members, [("ics-a", 100), ("ics-b", 50), ("ics-c", 10)]);
    assert_eq!(cfg.networks.len(), 1);
    assert!(cfg.transmitter.is_none());
}

#[test]
fn the_example_reads_as_designed() {
    let cfg = GroupConfig::from_yaml(&example()).expect("parses");
    assert_eq!(cfg.name, "infocast");
    assert_eq!(cfg.heartbeat.timeout.to_string(), "500ms");
    assert_eq!(cfg.networks[1].name, "secondary");
    assert_eq!(
        cfg.members[1].addresses["secondary"].to_string(),
        "192.168.100.12"
    );
    assert_eq!(cfg.timeouts.election.to_string(), "1s");
    assert_eq!(cfg.net_check.targets.len(), 2);
    assert_eq!(cfg.role_file_path(), "/run/rdg/infocast.role");
    let tx = cfg.transmitter.as_ref().expect("transmitter");
    assert_eq!(parse_bit_rate(&tx.channels[0].bit_rate), Ok(2_000_000));
    assert_eq!(tx.channels[0].objects[0].name, "bootcast_1900");
    let (vip, prefix) = parse_cidr(&cfg.vips[0].address).expect("cidr");
    assert_eq!((vip.to_string(), prefix), ("10.0.0.100".to_string(), 24));
}

#[test]
fn json_spec_round_trips_with_the_same_keys() {
    let cfg = GroupConfig::from_yaml(&example()).expect("parses");
    let json = serde_json::to_string(&cfg).expect("serializes");
    for key in [
        "\"preemptDelay\"",
        "\"netCheck\"",
        "\"roleFile\"",
        "\"keyFile\"",
        "\"bitRate\"",
    ] {
        assert!(json.contains(key), "{key} missing from {json}");
    }
    assert_eq!(GroupConfig::from_json(&json), Ok(cfg));
    let e = GroupConfig::from_json(r#"{"name": "g", "netCheck": {"timeout": "soon"}}"#)
        .expect_err("bad duration");
    assert_eq!(e.path, "netCheck.timeout");
}

/// One mistake: (what, replace this, with this, expected path, message fragment).
type Mistake = (
    &'static str,
    &'static str,
    &'static str,
    &'static str,
    &'static str,
);

const MISTAKES: &[Mistake] = &[
    (
        "VIP on an undeclared network",
        "    network: primary\n",
        "    network: tertiary\n",
        "vips[0].network",
        "no network named \"tertiary\"",
    ),
    (
        "duplicate member name",
        "  - name: ics-b\n",
        "  - name: ics-a\n",
        "members[1].name",
        "duplicate member name \"ics-a\" (also members[0])",
    ),
    (
        "duplicate network name",
        "  - name: secondary\n",
        "  - name: primary\n",
        "networks[1].name",
        "duplicate network name \"primary\" (also networks[0])",
    ),
    (
        "interval not below timeout",
        "  interval: 100ms\n",
        "  interval: 500ms\n",
        "heartbeat.timeout",
        "must be greater than heartbeat.interval (500ms)",
    ),
    (
        "the D2000 rule 2 * N * pingTimeout < electionTimeout",
        "  timeout: 200ms\n",
        "  timeout: 600ms\n",
        "netCheck.timeout",
        "2 * 2 targets * 600ms = 2s 400ms must be less than timeouts.election (1s)",
    ),
    (
        "the D2000 rule at equality",
        "  timeout: 200ms\n",
        "  timeout: 250ms\n",
        "netCheck.timeout",
        "2 * N * netCheck.timeout < timeouts.election",
    ),
    (
        "unparseable member address",
        "primary: 10.0.0.11,",
        "primary: 10.0.0.311,",
        "members[0].addresses.primary",
        "invalid IP address",
    ),
    (
        "unspecified member address",
        "primary: 10.0.0.11,",
        "primary: 0.0.0.0,",
        "members[0].addresses.primary",
        "unspecified",
    ),
    (
        "two members with one address",
        "primary: 10.0.0.12,",
        "primary: 10.0.0.11,",
        "members[1].addresses.primary",
        "already members[0].addresses.primary",
    ),
    (
        "network multicast that is not multicast",
        "multicast: 224.0.0.36",
        "multicast: 10.0.0.36",
        "networks[1].multicast",
        "not a multicast address",
    ),
    (
        "member without an address on a network",
        "{primary: 10.0.0.12, secondary: 192.168.100.12}",
        "{primary: 10.0.0.12}",
        "members[1].addresses.secondary",
        "missing",
    ),
    (
        "address on an undeclared network",
        "secondary: 192.168.100.11}",
        "secondary: 192.168.100.11, tertiary: 172.16.0.11}",
        "members[0].addresses.tertiary",
        "no network named \"tertiary\"",
    ),
    (
        "priority out of range",
        "priority: 100 ",
        "priority: 70000 ",
        "members[0].priority",
        "70000",
    ),
    (
        "unknown key",
        "  interval: 100ms\n",
        "  intervall: 100ms\n",
        "heartbeat.intervall",
        "unknown field `intervall`",
    ),
    (
        "unknown key at the top",
        "preempt: false",
        "preemt: false",
        "preemt",
        "unknown field `preemt`",
    ),
    (
        "bad duration",
        "  election: 1s\n",
        "  election: fast\n",
        "timeouts.election",
        "invalid duration \"fast\"",
    ),
    (
        "waitingHot too short for the winner to be heard",
        "  election: 1s\n",
        "  election: 1s\n  waitingHot: 1500ms\n",
        "timeouts.waitingHot",
        "timeouts.election + heartbeat.timeout (1s + 500ms = 1s 500ms)",
    ),
    (
        "election shorter than the heartbeat timeout",
        "  election: 1s\n",
        "  election: 400ms\n",
        "timeouts.election",
        "heartbeat.timeout (500ms)",
    ),
    (
        "zero timeout",
        "  election: 1s\n",
        "  election: 1s\n  startingToHot: 0s\n",
        "timeouts.startingToHot",
        "greater than 0s",
    ),
    (
        "bad bit rate",
        "bitRate: 2Mbit",
        "bitRate: 2MB",
        "transmitter.channels[0].bitRate",
        "invalid bit rate \"2MB\"",
    ),
    (
        "VIP prefix out of range",
        "address: 10.0.0.100/24",
        "address: 10.0.0.100/33",
        "vips[0].address",
        "prefix length",
    ),
    (
        "VIP without a prefix",
        "address: 10.0.0.100/24",
        "address: 10.0.0.100",
        "vips[0].address",
        "missing prefix length",
    ),
    (
        "VIP that is a member's address",
        "address: 10.0.0.100/24",
        "address: 10.0.0.12/24",
        "vips[0].address",
        "members[1].addresses.primary",
    ),
    (
        "net-check target that is multicast",
        "targets: [10.0.0.1, 10.0.0.254]",
        "targets: [10.0.0.1, 224.0.0.1]",
        "netCheck.targets[1]",
        "multicast",
    ),
    (
        "duplicate net-check target",
        "targets: [10.0.0.1, 10.0.0.254]",
        "targets: [10.0.0.1, 10.0.0.1]",
        "netCheck.targets[1]",
        "duplicate target 10.0.0.1 (also netCheck.targets[0])",
    ),
    (
        "net check that only pings members",
        "targets: [10.0.0.1, 10.0.0.254]",
        "targets: [10.0.0.12]",
        "netCheck.targets",
        "non-member",
    ),
    (
        "invalid member name",
        "  - name: ics-b\n",
        "  - name: ics b\n",
        "members[1].name",
        "letters, digits",
    ),
    (
        "heartbeat port 0",
        "  port: 8035 ",
        "  port: 0 ",
        "heartbeat.port",
        "must not be 0",
    ),
    (
        "relative role file",
        "roleFile: /run/rdg/infocast.role",
        "roleFile: infocast.role",
        "roleFile",
        "absolute path",
    ),
    (
        "empty key file",
        "keyFile: /etc/rdg/infocast.key",
        "keyFile: \"\"",
        "auth.keyFile",
        "must not be empty",
    ),
    (
        "status on port 0",
        "listen: 127.0.0.1:9035",
        "listen: 127.0.0.1:0",
        "status.listen",
        "port must not be 0",
    ),
    (
        "carousel to a unicast address",
        "    - address: 224.2.2.2\n",
        "    - address: 10.2.2.2\n",
        "transmitter.channels[0].address",
        "not a multicast address",
    ),
    (
        "payload larger than a datagram",
        "payloadSize: 1024",
        "payloadSize: 70000",
        "transmitter.channels[0].payloadSize",
        "UDP datagram",
    ),
    (
        "object without a source",
        "source: /var/lib/infocast/bootcast_1900",
        "source: \"\"",
        "transmitter.channels[0].objects[0].source",
        "must not be empty",
    ),
    (
        "generated bootcast with a unicast kernel address",
        "kernelAddress: 224.2.2.3:22223",
        "kernelAddress: 10.2.2.3:22223",
        "transmitter.channels[0].objects[1].bootcast.kernelAddress",
        "not a multicast address",
    ),
    (
        "object with both a source and bootcast",
        "          bootcast:\n",
        "          source: /tmp/x\n          bootcast:\n",
        "transmitter.channels[0].objects[1]",
        "not both",
    ),
    (
        "repeat delay of zero",
        "repeatDelay: 2s",
        "repeatDelay: 0s",
        "transmitter.channels[0].objects[1].repeatDelay",
        "greater than 0",
    ),
    (
        "pause after a cycle too long",
        "burstDelay: 0s",
        "burstDelay: 5m",
        "transmitter.channels[0].burstDelay",
        "at most 1m",
    ),
];

#[test]
fn each_mistake_is_reported_at_its_path() {
    let valid = example();
    assert_eq!(problems_of(&valid), Vec::<Problem>::new());
    let mut failures = Vec::new();
    for &(what, from, to, path, fragment) in MISTAKES {
        let problems = problems_of(&mutate(&valid, from, to));
        let found = problems
            .iter()
            .any(|p| p.path == path && p.message.contains(fragment));
        if !found {
            failures.push(format!(
                "{what}: expected `{path}: ...{fragment}...`, got {problems:#?}"
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn a_group_where_nobody_may_become_hot_automatically_is_rejected() {
    let text = mutate(&example(), "priority: 100 ", "priority: 0 ");
    let text = mutate(&text, "priority: 50\n", "priority: 0\n");
    let problems = problems_of(&text);
    assert!(
        problems
            .iter()
            .any(|p| p.path == "members" && p.message.contains("priority 0")),
        "{problems:#?}"
    );
}

#[test]
fn several_mistakes_are_all_reported() {
    let mut text = example();
    for (from, to) in [
        ("  - name: ics-b\n", "  - name: ics-a\n"),
        ("  interval: 100ms\n", "  interval: 500ms\n"),
        ("  timeout: 200ms\n", "  timeout: 600ms\n"),
        ("    network: primary\n", "    network: tertiary\n"),
        ("bitRate: 2Mbit", "bitRate: lots"),
    ] {
        text = mutate(&text, from, to);
    }
    let problems = problems_of(&text);
    let paths: BTreeSet<&str> = problems.iter().map(|p| p.path.as_str()).collect();
    for want in [
        "members[1].name",
        "heartbeat.timeout",
        "netCheck.timeout",
        "vips[0].network",
        "transmitter.channels[0].bitRate",
    ] {
        assert!(paths.contains(want), "{want} not in {problems:#?}");
    }
    assert!(paths.len() >= 3);
    // Every line of `rdg check-config` starts with the path.
    for p in &problems {
        assert!(p.to_string().starts_with(&format!("{}: ", p.path)), "{p}");
    }
}

#[test]
fn load_reports_invalid_files_with_every_problem() {
    let text = mutate(&example(), "  interval: 100ms\n", "  interval: 0s\n");
    let text = mutate(&text, "  port: 8035 ", "  port: 0 ");
    let file = std::env::temp_dir().join(format!("rdg-config-test-{}.yaml", std::process::id()));
    std::fs::write(&file, text).expect("temp file");
    let result = GroupConfig::load(&file);
    let _ = std::fs::remove_file(&file);
    match result {
        Err(LoadError::Invalid(problems)) => {
            let paths: Vec<&str> = problems.iter().map(|p| p.path.as_str()).collect();
            assert_eq!(paths, ["heartbeat.interval", "heartbeat.port"]);
        }
        other => panic!("expected Invalid, got {other:?}"),
    }
}

#[test]
fn load_reports_shape_errors_with_their_path() {
    let text = mutate(&example(), "priority: 100 ", "priority: 70000 ");
    let file = std::env::temp_dir().join(format!("rdg-config-shape-{}.yaml", std::process::id()));
    std::fs::write(&file, text).expect("temp file");
    let result = GroupConfig::load(&file);
    let _ = std::fs::remove_file(&file);
    match result {
        Err(LoadError::Parse(e)) => {
            assert_eq!(e.path, "members[0].priority");
            assert!(e.to_string().starts_with("members[0].priority: "), "{e}");
        }
        other => panic!("expected Parse, got {other:?}"),
    }
}

/// Units for the round-trip property: spelling and bits per second.
const UNITS: [(&str, u64); 4] = [
    ("bit", 1),
    ("kbit", 1_000),
    ("Mbit", 1_000_000),
    ("Gbit", 1_000_000_000),
];

proptest! {
    /// A rate written as `<whole>[.<3 digits>]<unit><suffix>` parses back to its value.
    #[test]
    fn bit_rates_round_trip(
        whole in 0u64..1_000_000,
        frac in 0u64..1000,
        unit in 0usize..4,
        suffix in 0usize..3,
    ) {
        let (name, scale) = UNITS[unit];
        let suffix = ["", "/s", "ps"][suffix];
        // `ps` replaces the `it` of `bit`: `Mbps`, `kbps`, `bps`.
        let name = if suffix == "ps" { name.trim_end_matches("it") } else { name };
        let (text, expected) = if scale >= 1000 {
            (format!("{whole}.{frac:03}{name}{suffix}"), whole * scale + frac * scale / 1000)
        } else {
            (format!("{whole}{name}{suffix}"), whole)
        };
        if expected == 0 {
            prop_assert!(parse_bit_rate(&text).is_err());
        } else {
            prop_assert_eq!(parse_bit_rate(&text), Ok(expected), "{}", text);
            prop_assert_eq!(parse_bit_rate(&text.to_uppercase()), Ok(expected));
        }
    }

    /// Arbitrary text never panics the unit parsers.
    #[test]
    fn unit_parsers_never_panic(s in "\\PC{0,24}") {
        let _ = parse_bit_rate(&s);
        let _ = parse_cidr(&s);
    }
}

#[test]
fn demo_example_file_matches_the_demo() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../examples/demo.yaml");
    let text = std::fs::read_to_string(path).expect("examples/demo.yaml exists");
    let file = rdg_core::config::GroupConfig::from_yaml(&text).expect("parses");
    let code =
        rdg_core::config::GroupConfig::from_yaml(rdg_core::sim::DEMO_CONFIG).expect("parses");
    assert_eq!(
        file, code,
        "examples/demo.yaml and sim::DEMO_CONFIG must describe the same group"
    );
}

/// The net check runs as seldom as a takeover allows: a round that starts within an interval
/// of a hot member's last heartbeat ends before the heartbeat timeout.
#[test]
fn net_check_period_follows_the_detection_time() {
    let with = |interval: &str, timeout: &str, check: &str| {
        let yaml = format!(
            "name: g\nheartbeat: {{interval: {interval}, timeout: {timeout}}}\n\
             networks: [{{name: n1}}]\nnetCheck: {{targets: [10.0.0.1], timeout: {check}}}\n\
             members:\n  - {{name: a, priority: 100, addresses: {{n1: 10.0.0.2}}}}\n"
        );
        let cfg = GroupConfig::from_yaml(&yaml).expect("valid");
        let period = cfg.net_check_period();
        let (interval, timeout, check) = (
            cfg.heartbeat.interval.get(),
            cfg.heartbeat.timeout.get(),
            cfg.net_check.timeout.get(),
        );
        assert!(period >= check, "at most one round per netCheck.timeout");
        if timeout >= interval + check * 2 {
            assert!(interval + period + check <= timeout, "fresh at takeover");
        }
        period.as_millis()
    };
    assert_eq!(with("100ms", "300ms", "50ms"), 150);
    assert_eq!(with("20ms", "60ms", "50ms"), 50);
    assert_eq!(with("1s", "3s", "200ms"), 1800);
    assert_eq!(with("50ms", "100ms", "20ms"), 30);
}

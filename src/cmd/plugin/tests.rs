//! The plugin's decisions without an API server: refusals, redaction, the screen, completion.

use super::{PluginCli, complete, report, status, switchover};
use clap::Parser;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::MicroTime;
use k8s_openapi::jiff::{SignedDuration, Timestamp};
use rdg_core::State;
use rdg_operator::RedundantGroup;
use rdg_operator::status::{MemberEntry, RedundantGroupStatus};
use serde_json::json;

fn group(now: Timestamp) -> RedundantGroup {
    let mut g: RedundantGroup = serde_json::from_value(json!({
        "apiVersion": "rdg.infocast.io/v1alpha1", "kind": "RedundantGroup",
        "metadata": {"name": "g", "namespace": "ns"},
        "spec": {
            "networks": [{"name": "primary"}],
            "members": [
                {"name": "a", "priority": 100, "nodeName": "n1"},
                {"name": "b", "priority": 50, "nodeName": "n2"},
                {"name": "c", "priority": 10, "nodeName": "n3"},
                {"name": "d", "priority": 5, "nodeName": "n4"},
            ],
            "vips": [{"address": "10.0.0.100/24", "network": "primary"}],
        },
    }))
    .unwrap();
    let e = |name: &str, state: State, age: i64, net: bool| MemberEntry {
        name: name.into(),
        state: Some(state),
        pod: Some(format!("g-{name}")),
        net_check_ok: Some(net),
        vips_ok: Some(true),
        last_seen: Some(MicroTime(now - SignedDuration::from_secs(age))),
        ..MemberEntry::default()
    };
    g.status = Some(RedundantGroupStatus {
        hot: Some("a".into()),
        members: vec![
            e("a", State::HS, 1, true),
            e("b", State::SBS, 1, true),
            e("c", State::SBS, 1, false),
        ],
        ..RedundantGroupStatus::default()
    });
    g
}

#[test]
fn a_switchover_is_refused_when_the_member_cannot_take_the_role() {
    let now = Timestamp::now();
    let g = group(now);
    let why = |m: &str| switchover::refusal(&g, m, now).unwrap_or_default();
    assert_eq!(switchover::refusal(&g, "b", now), None);
    assert!(why("z").contains("not a member"), "{}", why("z"));
    assert!(why("a").contains("already hot"));
    assert!(why("c").contains("isolated"));
    assert!(why("d").contains("no status entry"));
    let mut fenced = g.clone();
    fenced.spec.members[1].fenced = true;
    assert!(
        switchover::refusal(&fenced, "b", now)
            .unwrap()
            .contains("fenced")
    );
    let later = now + SignedDuration::from_secs(60);
    assert!(
        switchover::refusal(&g, "b", later)
            .unwrap()
            .contains("last reported")
    );
}

#[test]
fn secrets_are_redacted_and_the_rest_kept() {
    let mut v = json!({
        "metadata": {"name": "x", "managedFields": [{}],
            "annotations": {"kubectl.kubernetes.io/last-applied-configuration": "{...}", "keep": "me"}},
        "spec": {"auth": {"secretRef": {"name": "hmac", "key": "k1", "keys": ["a"]}},
            "status": {"tokenFile": "/run/t"},
            "env": [{"name": "DB_PASSWORD", "value": "hunter2"}, {"name": "MODE", "value": "x"}]},
    });
    report::redact(&mut v);
    let text = v.to_string();
    for gone in ["k1", "/run/t", "hunter2", "managedFields", "last-applied"] {
        assert!(!text.contains(gone), "{gone} in {text}");
    }
    assert_eq!(v["spec"]["auth"]["secretRef"]["name"], "hmac");
    assert_eq!(v["spec"]["env"][1]["value"], "x");
    assert_eq!(v["metadata"]["annotations"]["keep"], "me");
    assert_eq!(v["spec"]["auth"]["secretRef"]["key"], report::REDACTED);
}

#[test]
fn an_agent_report_becomes_status_metrics_and_snapshot_files() {
    let cm: k8s_openapi::api::core::v1::ConfigMap = serde_json::from_value(json!({
        "metadata": {"name": "infocast-ics-b-agent-report"},
        "data": {"status.json": "{\"member\":\"ics-b\",\"apiToken\":\"s3cr3t\"}",
                 "metrics.txt": "rdg_up 1\n", "takenAt": "2026-12-03T10:00:00Z",
                 "pod": "infocast-ics-b"}
    }))
    .unwrap();
    let (files, line) = report::agent_files("agents/ics-b", &cm).unwrap();
    let names: Vec<&str> = files.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(
        names,
        [
            "agents/ics-b/status.json",
            "agents/ics-b/metrics.txt",
            "agents/ics-b/SNAPSHOT.txt"
        ]
    );
    assert!(!files[0].1.contains("s3cr3t") && files[0].1.contains("ics-b"));
    assert_eq!(files[1].1, "rdg_up 1\n");
    assert!(
        line.contains("infocast-ics-b at 2026-12-03T10:00:00Z"),
        "{line}"
    );
    let empty: k8s_openapi::api::core::v1::ConfigMap =
        serde_json::from_value(json!({"metadata": {"name": "x"}, "data": {}})).unwrap();
    assert_eq!(
        report::agent_files("agents/x", &empty).unwrap_err(),
        "has no status.json"
    );
}

#[test]
fn the_screen_names_every_member_and_marks_the_fenced_one() {
    let now = Timestamp::now();
    let mut g = group(now);
    g.spec.members[2].fenced = true;
    let painted = status::render(&g, &Err("not served".into()), now);
    assert!(painted.contains('\x1b'), "coloured for a terminal");
    let screen = anstream::adapter::strip_str(&painted).to_string();
    for want in [
        "hot a",
        "held by a",
        "HOT",
        "standby",
        "no report",
        "10→0",
        "FENCED",
        "not served",
    ] {
        assert!(screen.contains(want), "{want:?} in\n{screen}");
    }
    assert_eq!(status::age(59), "59s");
    assert_eq!(status::age(3 * 3600 + 17 * 60), "3h17m");
}

#[test]
fn kubectl_flags_and_usage() {
    let cli = PluginCli::try_parse_from([
        "kubectl-rdg",
        "switchover",
        "g",
        "b",
        "-n",
        "ns",
        "--context",
        "c",
        "--wait",
    ])
    .unwrap();
    assert_eq!(cli.kube.namespace.as_deref(), Some("ns"));
    assert_eq!(cli.kube.context.as_deref(), Some("c"));
    let err = PluginCli::try_parse_from(["kubectl-rdg", "switchover", "g"]).unwrap_err();
    assert_eq!(err.exit_code(), 2);
    assert_eq!(
        complete::candidates(&["fe".into()]),
        [
            "status",
            "switchover",
            "fence",
            "unfence",
            "report",
            "completion",
        ]
        .map(String::from)
    );
    let flags = complete::candidates(&["status".into(), "--".into()]);
    assert!(flags.contains(&"--output".to_string()) && flags.contains(&"--namespace".to_string()));
    let values = complete::candidates(&["status".into(), "-o".into(), "".into()]);
    assert_eq!(values, ["json", "yaml"]);
}

//! The metric names the alerting rules (`charts/rdg-operator/rules/rdg-alerts.yaml`) and the
//! Grafana dashboard (`charts/rdg-operator/dashboards/rdg.json`) query are exported by the
//! code: the agent's registry (`rdg_agent::metrics::Metrics`, with the carousel's
//! `CarouselMetrics` registered as when the agent runs the carousel) and the controller's
//! (`rdg_operator::metrics::ControllerMetrics`), as encoded on `/metrics`. A renamed or removed
//! metric fails here instead of leaving an alert that can never fire.
//!
//! Names are those of the samples in the encoded registries (counters as `<name>_total`,
//! histograms as `<name>_bucket`, `_sum` and `_count`), with a sample in every family: the
//! encoder leaves out a family without samples. `up` is Prometheus' own.
//!
//! PromQL syntax and the alerts' behaviour are checked by `monitoring/check.sh` (promtool).

use rdg_agent::metrics::{
    CarouselMetrics, ChannelLabels, Metrics, NetLabels, ReasonLabels, RejectLabels, ResultLabels,
    StateLabels, VipLabels, VipProbeLabels,
};
use rdg_operator::metrics::ControllerMetrics;
use serde_json::Value;
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

const RULES: &str = "charts/rdg-operator/rules/rdg-alerts.yaml";
const DASHBOARD: &str = "charts/rdg-operator/dashboards/rdg.json";

/// Series every Prometheus target has without the code exporting them.
const SYNTHETIC: &[&str] = &["up"];

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// Sample names of an encoded registry, and how many families (`# TYPE` lines) it has.
fn exported(encoded: &str) -> (BTreeSet<String>, usize) {
    let mut names = BTreeSet::new();
    let mut families = 0;
    for line in encoded.lines() {
        if line.starts_with("# TYPE ") {
            families += 1;
        } else if !line.starts_with('#') && !line.is_empty() {
            let end = line.find(['{', ' ']).unwrap_or(line.len());
            names.insert(line[..end].to_string());
        }
    }
    (names, families)
}

/// Metrics registered in a source file (`registry.register(` calls).
fn registered(source: &str) -> usize {
    let text = std::fs::read_to_string(repo().join(source)).expect(source);
    text.matches("registry.register(").count()
}

/// Every sample name the agent and the controller export. A family without samples is not
/// encoded at all: every family of the agent gets one, and the count of encoded families is
/// compared with the registrations in the source, so a new family must be added here.
fn all_exported() -> BTreeSet<String> {
    // The carousel's families, registered as when the agent runs the carousel (and the same
    // names `rdg transmit --metrics-listen` serves).
    let carousel = CarouselMetrics::default();
    let m = Metrics::with_carousel(Some(&carousel));
    let ch = ChannelLabels {
        channel: "239.1.1.1:5000".into(),
    };
    carousel.bytes_sent.get_or_create(&ch).inc_by(1316);
    carousel.datagrams_sent.get_or_create(&ch).inc();
    carousel.send_errors.get_or_create(&ch).inc();
    carousel.cycles.get_or_create(&ch).inc();
    carousel.sending.get_or_create(&ch).set(1);
    let net = || NetLabels {
        network: "n1".into(),
    };
    let vip = || VipLabels {
        vip: "10.0.0.1/24".into(),
    };
    m.set_state(rdg_core::State::ALL[0]);
    m.transitions
        .get_or_create(&StateLabels { state: "HS".into() })
        .inc();
    m.heartbeats_sent.get_or_create(&net()).inc();
    m.heartbeats_received.get_or_create(&net()).inc();
    m.rejected
        .get_or_create(&RejectLabels {
            network: "n1".into(),
            reason: "bad_mac".into(),
        })
        .inc();
    m.ignored
        .get_or_create(&ReasonLabels {
            reason: "stale".into(),
        })
        .inc();
    m.send_errors.get_or_create(&net()).inc();
    m.net_check_rounds
        .get_or_create(&ResultLabels {
            result: "ok".into(),
        })
        .inc();
    m.detection.observe(0.2);
    m.releases
        .get_or_create(&ReasonLabels {
            reason: "lease-expired".into(),
        })
        .inc();
    m.anomalies.get_or_create(&net()).inc();
    m.reloads
        .get_or_create(&ResultLabels {
            result: "ok".into(),
        })
        .inc();
    m.vip_held.get_or_create(&vip()).set(1);
    m.garp_sent.get_or_create(&vip()).inc();
    m.arp_probes
        .get_or_create(&VipProbeLabels {
            vip: "10.0.0.1/24".into(),
            verdict: "free".into(),
        })
        .inc();
    let (mut names, families) = exported(&m.encode());
    let source = "crates/rdg-agent/src/metrics.rs";
    assert_eq!(
        families,
        registered(source),
        "a family of {source} has no sample in this test (add one in all_exported)"
    );
    let controller = ControllerMetrics::default();
    let (controller_names, families) = exported(&controller.encode());
    let source = "crates/rdg-operator/src/metrics.rs";
    assert_eq!(
        families,
        registered(source),
        "{source}: a family is not encoded"
    );
    names.extend(controller_names);
    for name in [
        "rdg_state",
        "rdg_heartbeats_sent_total",
        "rdg_failover_detection_seconds_bucket",
        "rdg_controller_reconciles_total",
    ] {
        assert!(names.contains(name), "{name} not in {names:?}");
    }
    names
}

/// Metric names a PromQL expression selects: identifiers outside strings, label matchers,
/// ranges and `by`/`on`/... label lists, that are neither functions nor keywords.
fn metric_names(expr: &str) -> BTreeSet<String> {
    const KEYWORDS: &[&str] = &[
        "and",
        "or",
        "unless",
        "by",
        "without",
        "on",
        "ignoring",
        "group_left",
        "group_right",
        "bool",
        "offset",
        "inf",
        "nan",
    ];
    // Aggregations may put their `by (...)` before the parenthesis: `sum by (a) (x)`.
    const AGGREGATIONS: &[&str] = &[
        "sum",
        "min",
        "max",
        "avg",
        "group",
        "stddev",
        "stdvar",
        "count",
        "count_values",
        "bottomk",
        "topk",
        "quantile",
    ];
    const LABEL_LISTS: &[&str] = &[
        "by",
        "without",
        "on",
        "ignoring",
        "group_left",
        "group_right",
    ];
    let chars: Vec<char> = expr.chars().collect();
    let mut names = BTreeSet::new();
    let mut i = 0;
    let mut prev_word = String::new();
    while i < chars.len() {
        let c = chars[i];
        if c == '"' || c == '\'' || c == '`' {
            i += 1;
            while i < chars.len() && chars[i] != c {
                i += if chars[i] == '\\' { 2 } else { 1 };
            }
            i += 1;
        } else if c == '{' || c == '[' {
            let close = if c == '{' { '}' } else { ']' };
            while i < chars.len() && chars[i] != close {
                if chars[i] == '"' {
                    i += 1;
                    while i < chars.len() && chars[i] != '"' {
                        i += if chars[i] == '\\' { 2 } else { 1 };
                    }
                }
                i += 1;
            }
            i += 1;
        } else if c == '(' && LABEL_LISTS.contains(&prev_word.as_str()) {
            while i < chars.len() && chars[i] != ')' {
                i += 1;
            }
            i += 1;
            prev_word.clear();
        } else if c.is_ascii_alphabetic() || c == '_' || c == ':' {
            let start = i;
            while i < chars.len() && (chars[i].is_ascii_alphanumeric() || "_:".contains(chars[i])) {
                i += 1;
            }
            let word: String = chars[start..i].iter().collect();
            let mut j = i;
            while j < chars.len() && chars[j].is_whitespace() {
                j += 1;
            }
            let is_call = chars.get(j) == Some(&'(');
            let lower = word.to_ascii_lowercase();
            if !is_call
                && !KEYWORDS.contains(&lower.as_str())
                && !AGGREGATIONS.contains(&lower.as_str())
            {
                names.insert(word.clone());
            }
            prev_word = lower;
        } else if c.is_ascii_digit() || c == '.' {
            // Numbers and durations (5m, 0.05, 1e3).
            while i < chars.len() && (chars[i].is_ascii_alphanumeric() || chars[i] == '.') {
                i += 1;
            }
        } else {
            if !c.is_whitespace() {
                prev_word.clear();
            }
            i += 1;
        }
    }
    names
}

/// The expressions of the alerting rules, by alert.
fn rule_exprs() -> Vec<(String, String)> {
    let text = std::fs::read_to_string(repo().join(RULES)).expect(RULES);
    let doc: Value = serde_yaml_ng::from_str(&text).expect("the rules file is YAML");
    let mut out = Vec::new();
    for group in doc["groups"].as_array().expect("groups") {
        for rule in group["rules"].as_array().expect("rules") {
            let name = rule["alert"].as_str().or(rule["record"].as_str()).unwrap();
            let expr = rule["expr"].as_str().expect("expr");
            out.push((format!("{RULES}: {name}"), expr.to_string()));
        }
    }
    out
}

/// The queries of the dashboard, by panel.
fn dashboard_exprs() -> Vec<(String, String)> {
    let text = std::fs::read_to_string(repo().join(DASHBOARD)).expect(DASHBOARD);
    let doc: Value = serde_json::from_str(&text).expect("the dashboard is JSON");
    let mut out = Vec::new();
    for panel in doc["panels"].as_array().expect("panels") {
        for target in panel["targets"].as_array().into_iter().flatten() {
            let expr = target["expr"].as_str().expect("expr");
            let title = panel["title"].as_str().unwrap_or("?");
            out.push((format!("{DASHBOARD}: panel {title:?}"), expr.to_string()));
        }
    }
    for var in doc["templating"]["list"].as_array().into_iter().flatten() {
        let selector = var["query"]["query"]
            .as_str()
            .and_then(|q| q.strip_prefix("label_values("))
            .and_then(|r| r.rsplit_once(','));
        if let Some((selector, _label)) = selector {
            out.push((
                format!("{DASHBOARD}: variable {}", var["name"]),
                selector.into(),
            ));
        }
    }
    out
}

/// Names `exprs` select that are not in `exported`, with where they are used.
fn unknown(exprs: &[(String, String)], exported: &BTreeSet<String>) -> Vec<String> {
    let mut out = Vec::new();
    for (origin, expr) in exprs {
        for name in metric_names(expr) {
            if !exported.contains(&name) && !SYNTHETIC.contains(&name.as_str()) {
                out.push(format!("{origin}: {name}"));
            }
        }
    }
    out
}

#[test]
fn rules_and_dashboard_use_exported_metrics() {
    let exported = all_exported();
    let rules = rule_exprs();
    let dashboard = dashboard_exprs();
    assert!(rules.len() >= 7, "rules: {rules:?}");
    assert!(dashboard.len() >= 10, "dashboard queries: {dashboard:?}");
    let used: BTreeSet<String> = rules
        .iter()
        .chain(&dashboard)
        .flat_map(|(_, e)| metric_names(e))
        .collect();
    for name in [
        "rdg_state",
        "rdg_failover_detection_seconds_bucket",
        "rdg_heartbeats_received_total",
        "rdg_net_check_rounds_total",
        "rdg_vip_held",
        "up",
    ] {
        assert!(used.contains(name), "{name} not found in {used:?}");
    }
    let problems: Vec<String> = unknown(&rules, &exported)
        .into_iter()
        .chain(unknown(&dashboard, &exported))
        .collect();
    assert!(
        problems.is_empty(),
        "series not exported by the agent or the controller:\n  {}\nexported: {exported:?}",
        problems.join("\n  ")
    );
    println!("{} names used, all exported: {used:?}", used.len());
}

#[test]
fn a_renamed_metric_is_reported() {
    let exported = all_exported();
    let exprs = vec![(
        "test".to_string(),
        r#"sum by (namespace, group) (rate(rdg_heartbeat_sent_total{network="a"}[5m])) > 0"#
            .to_string(),
    )];
    assert_eq!(
        unknown(&exprs, &exported),
        ["test: rdg_heartbeat_sent_total"]
    );
}

#[test]
fn metric_names_of_promql() {
    let names = |e: &str| metric_names(e).into_iter().collect::<Vec<_>>();
    assert_eq!(
        names(
            r#"(rdg_state{job="rdg-agent", state="HS"} == 1) and on (namespace, group)
               (count by (namespace, group) (rdg_state{state="HS"} == 1) > 1)"#
        ),
        ["rdg_state"]
    );
    assert_eq!(
        names(
            r#"histogram_quantile(0.99, sum by (le) (increase(a_bucket{x=~"$g"}[1h]))) /
               sum without (x) (b_total offset 5m) * on (m) group_left (n) c"#
        ),
        ["a_bucket", "b_total", "c"]
    );
    assert_eq!(
        names(r#"max_over_time(up{job="rdg-agent"}[1h]) unless up"#),
        ["up"]
    );
}

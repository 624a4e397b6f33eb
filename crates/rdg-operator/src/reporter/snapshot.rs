//! The agent report: one ConfigMap per member, `<group>-<member>-agent-report`, holding its
//! agent's last `/status` and `/metrics` as the reporter read them. The agent listens on the
//! node's loopback only, so this is how `kubectl rdg report` gets them through the API server.
//! Written at most once per `snapshot_every` (60 s), and soon after a state change; owned by
//! the group, so it goes with it. Neither page holds a secret (the switchover token is never
//! in `/status`).

use super::env::K8sEnv;
use super::run::field_manager;
use crate::children::{AGENT_REPORT_COMPONENT, MEMBER_LABEL, agent_report_name, child_labels};
use k8s_openapi::api::core::v1::{ConfigMap, ObjectReference};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference};
use k8s_openapi::jiff::Timestamp;
use kube::Api;
use kube::api::{Patch, PatchParams};
use rdg_core::State;
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

/// Data key of the agent's `/status` (JSON, as the agent served it).
pub const STATUS_KEY: &str = "status.json";
/// Data key of the agent's `/metrics` (OpenMetrics text).
pub const METRICS_KEY: &str = "metrics.txt";
/// Data key of when `/status` was read (RFC 3339, UTC).
pub const TAKEN_AT_KEY: &str = "takenAt";
/// Data key of the pod whose reporter wrote it.
pub const POD_KEY: &str = "pod";
/// Largest `/status` kept (a big group's is a few kB).
pub const MAX_STATUS: usize = 256 * 1024;
/// Largest `/metrics` kept (usually tens of kB): both together stay well under the 1 MiB a
/// ConfigMap may hold.
pub const MAX_METRICS: usize = 512 * 1024;
/// Starts the line that ends a truncated page.
pub const TRUNCATED: &str = "# truncated by the rdg reporter";

/// What the reporter read from its agent, to be written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Snapshot {
    /// `/status`, verbatim.
    pub status: String,
    /// `/metrics`, or a comment line saying why it could not be read.
    pub metrics: String,
    /// When `/status` was read.
    pub taken_at: Timestamp,
}

/// `text` cut to at most `max` bytes (at a line end when there is one) with a closing
/// [`TRUNCATED`] line saying how much was kept.
pub fn truncate(text: &str, max: usize) -> String {
    if text.len() <= max {
        return text.to_string();
    }
    let mut end = max;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    let end = text[..end].rfind('\n').map_or(end, |n| n + 1);
    format!(
        "{}\n{TRUNCATED}: {end} of {} bytes kept\n",
        text[..end].trim_end_matches('\n'),
        text.len()
    )
}

/// The ConfigMap of `snap` for member `member`, owned by `group` (a reference to the group as
/// read from the API server); None while the group's uid is unknown.
pub fn agent_report(
    env: &K8sEnv,
    member: &str,
    group: &ObjectReference,
    snap: &Snapshot,
) -> Option<ConfigMap> {
    // Not the controller's reference (the controller does not manage it) and not blocking
    // the group's deletion (that would need rights on the group's finalizers).
    let owner = OwnerReference {
        api_version: group.api_version.clone()?,
        kind: group.kind.clone()?,
        name: group.name.clone()?,
        uid: group.uid.clone()?,
        controller: None,
        block_owner_deletion: None,
    };
    let mut labels = child_labels(&env.group);
    labels.insert(MEMBER_LABEL.to_string(), member.to_string());
    labels.insert(
        "app.kubernetes.io/component".to_string(),
        AGENT_REPORT_COMPONENT.to_string(),
    );
    Some(ConfigMap {
        metadata: ObjectMeta {
            name: Some(agent_report_name(&env.group, member)),
            namespace: Some(env.namespace.clone()),
            labels: Some(labels),
            owner_references: Some(vec![owner]),
            ..ObjectMeta::default()
        },
        data: Some(BTreeMap::from([
            (STATUS_KEY.to_string(), truncate(&snap.status, MAX_STATUS)),
            (
                METRICS_KEY.to_string(),
                truncate(&snap.metrics, MAX_METRICS),
            ),
            (TAKEN_AT_KEY.to_string(), snap.taken_at.to_string()),
            (POD_KEY.to_string(), env.pod.clone()),
        ])),
        ..ConfigMap::default()
    })
}

/// Server-side-applies `cm` (from [`agent_report`]) under member `member`'s field manager.
pub async fn apply_agent_report(
    api: &Api<ConfigMap>,
    member: &str,
    cm: &ConfigMap,
) -> Result<(), kube::Error> {
    let name = cm.metadata.name.as_deref().unwrap_or_default();
    let pp = PatchParams::apply(&field_manager(member)).force();
    api.patch(name, &pp, &Patch::Apply(cm)).await.map(drop)
}

/// When to take a snapshot: the first report, then once per `every`, and on a state change
/// once `min_gap` has passed since the last one (a flapping member writes no faster).
#[derive(Debug, Clone)]
pub struct SnapshotSchedule {
    every: Duration,
    min_gap: Duration,
    last: Option<(Instant, State)>,
}

impl SnapshotSchedule {
    /// A schedule taking one every `every`, and on a state change at most one per `min_gap`.
    pub fn new(every: Duration, min_gap: Duration) -> SnapshotSchedule {
        SnapshotSchedule {
            every,
            min_gap,
            last: None,
        }
    }

    /// Whether a report in `state` read at `now` is to be written; if so it counts as taken.
    pub fn due(&mut self, state: State, now: Instant) -> bool {
        let due = match self.last {
            None => true,
            Some((at, was)) => {
                let since = now.saturating_duration_since(at);
                since >= self.every || (was != state && since >= self.min_gap)
            }
        };
        if due {
            self.last = Some((now, state));
        }
        due
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env() -> K8sEnv {
        K8sEnv {
            group: "infocast".into(),
            namespace: "broadcast".into(),
            pod: "infocast-ics-b".into(),
            node: "node-b".into(),
        }
    }

    #[test]
    fn a_snapshot_is_taken_each_minute_and_soon_after_a_state_change() {
        let mut s = SnapshotSchedule::new(Duration::from_secs(60), Duration::from_secs(10));
        let t0 = Instant::now();
        let at = |s: u64| t0 + Duration::from_secs(s);
        assert!(s.due(State::SBS, at(0)), "the first report");
        assert!(!s.due(State::SBS, at(30)));
        assert!(!s.due(State::HS, at(5)), "a change, but within min_gap");
        assert!(s.due(State::HS, at(12)), "a change after min_gap");
        assert!(!s.due(State::HS, at(71)));
        assert!(s.due(State::HS, at(72)), "a minute after the last one");
    }

    #[test]
    fn large_pages_are_truncated_at_a_line_with_a_marker() {
        assert_eq!(truncate("a 1\nb 2\n", 100), "a 1\nb 2\n");
        let t = truncate("a 1\nb 2\nc 3\n", 9);
        assert_eq!(t, format!("a 1\nb 2\n{TRUNCATED}: 8 of 12 bytes kept\n"));
        // No line end: cut at a character boundary.
        let t = truncate("ééé", 3);
        assert!(t.starts_with("é\n"), "{t}");
    }

    #[test]
    fn the_config_map_is_named_labelled_and_owned_by_the_group() {
        let snap = Snapshot {
            status: "{\"state\":\"SBS\"}".into(),
            metrics: "rdg_up 1\n".into(),
            taken_at: "2026-12-03T10:00:00Z".parse().unwrap(),
        };
        let mut group = ObjectReference {
            api_version: Some("rdg.infocast.io/v1alpha1".into()),
            kind: Some("RedundantGroup".into()),
            name: Some("infocast".into()),
            namespace: Some("broadcast".into()),
            ..ObjectReference::default()
        };
        assert!(
            agent_report(&env(), "ics-b", &group, &snap).is_none(),
            "no uid yet"
        );
        group.uid = Some("0b8e3c3e".into());
        let cm = agent_report(&env(), "ics-b", &group, &snap).unwrap();
        assert_eq!(
            serde_json::to_value(&cm).unwrap(),
            serde_json::json!({
                "apiVersion": "v1", "kind": "ConfigMap",
                "metadata": {
                    "name": "infocast-ics-b-agent-report", "namespace": "broadcast",
                    "labels": {
                        "app.kubernetes.io/name": "rdg", "app.kubernetes.io/instance": "infocast",
                        "app.kubernetes.io/managed-by": "rdg-operator",
                        "app.kubernetes.io/component": "agent-report",
                        "rdg.infocast.io/group": "infocast", "rdg.infocast.io/member": "ics-b"
                    },
                    "ownerReferences": [{"apiVersion": "rdg.infocast.io/v1alpha1",
                        "kind": "RedundantGroup", "name": "infocast", "uid": "0b8e3c3e"}]
                },
                "data": {"status.json": "{\"state\":\"SBS\"}", "metrics.txt": "rdg_up 1\n",
                         "takenAt": "2026-12-03T10:00:00Z", "pod": "infocast-ics-b"}
            })
        );
    }
}

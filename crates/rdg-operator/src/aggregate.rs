//! Status aggregation: from the members' own reports (their entries of `status.members`) and
//! their pods to the fields `kubectl get rdg` shows — who is hot, the phase, the conditions and
//! the last failover. Pure: the controller feeds it what it read and applies what it returns.

use crate::resource::RedundantGroupSpec;
use crate::status::{Failover, MemberEntry, Phase, RedundantGroupStatus};
use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
use k8s_openapi::jiff::SignedDuration;
use rdg_core::State;
use rdg_core::config::Problem;
use std::collections::BTreeMap;

/// An entry not rewritten for this long is stale: its agent is gone or cut off from the API.
/// Agents rewrite their entry at least every 10 s.
pub const STALE_AFTER_SECS: i64 = 35;

/// What the controller owns in the status, recomputed on every reconcile.
#[derive(Debug, Clone, PartialEq)]
pub struct Aggregate {
    /// The single hot member.
    pub hot: Option<String>,
    /// Its epoch.
    pub epoch: Option<u64>,
    /// The phase.
    pub phase: Phase,
    /// Members reporting HS or SBS from a running pod, of all.
    pub ready: String,
    /// Every member claiming HS (more than one: split brain).
    pub claims: Vec<String>,
    /// Ready, Degraded, SplitBrain and ConfigValid.
    pub conditions: Vec<Condition>,
    /// The latest takeover any member reported, if newer than the previous one.
    pub last_failover: Option<Failover>,
}

/// True when `pod` runs: phase Running, not being deleted, and not marked unready (which is
/// how a pod on a node that stopped answering shows up while its phase still says Running).
pub fn pod_running(pod: &Pod) -> bool {
    let status = pod.status.as_ref();
    let unready = status
        .and_then(|s| s.conditions.as_ref())
        .is_some_and(|c| c.iter().any(|c| c.type_ == "Ready" && c.status == "False"));
    pod.metadata.deletion_timestamp.is_none()
        && status.and_then(|s| s.phase.as_deref()) == Some("Running")
        && !unready
}

/// The entry of a member counts when its pod runs, the entry was written by that pod (not a
/// previous one of the same name) and it is not stale.
fn current<'a>(
    entry: Option<&'a MemberEntry>,
    pod: Option<&Pod>,
    now: &Time,
) -> Option<&'a MemberEntry> {
    let (entry, pod) = (entry?, pod?);
    if !pod_running(pod) {
        return None;
    }
    let seen = entry.last_seen.as_ref()?;
    if now.0.as_second() - seen.0.as_second() > STALE_AFTER_SECS {
        return None;
    }
    if let Some(created) = &pod.metadata.creation_timestamp
        && seen.0 < created.0
    {
        return None;
    }
    if entry.pod.is_some() && entry.pod != pod.metadata.name {
        return None;
    }
    Some(entry)
}

/// True when `entry` claims hot but a current member claims a later epoch, and `entry`'s own
/// last report shows it is gone rather than hot beside the other (a dead node's pod still shows
/// Running for a while):
///
/// - it said it heard that member: had it kept running, it would since have seen the newer
///   claim and stepped down, or reported that member silent (a change it writes at once); or
/// - the other took over more than `quiet` after that report. A hot member cut off from the
///   other notices the silence when the other does, and writes that change at once: its report
///   then comes after, or within a heartbeat and a net check of, the other's takeover. A
///   report older than that is the last word of a member that had died or frozen.
///
/// A hot member cut off from its peers and from the API server looks the same until its entry
/// is stale.
fn superseded(entry: &MemberEntry, current: &[&MemberEntry], quiet: SignedDuration) -> bool {
    let epoch = entry.epoch.unwrap_or(0);
    let spoke_before = |other: &MemberEntry| {
        let (Some(seen), Some(t)) = (&entry.last_seen, &other.last_takeover) else {
            return false;
        };
        t.epoch == other.epoch && t.time.0 > seen.0 + quiet
    };
    entry.state == Some(State::HS)
        && current.iter().any(|other| {
            other.state == Some(State::HS)
                && other.epoch.unwrap_or(0) > epoch
                && (entry.hears.contains(&other.name) || spoke_before(other))
        })
}

/// How much earlier than another member's takeover a hot member's last report must be to be
/// its last word: three quarters of the heartbeat timeout (the other cannot have taken over
/// sooner than a whole timeout after it went silent).
fn quiet_before_takeover(spec: &RedundantGroupSpec) -> SignedDuration {
    let quiet = spec.heartbeat.timeout.0 * 3 / 4;
    SignedDuration::try_from(quiet).unwrap_or(SignedDuration::MAX)
}

/// Recomputes the aggregate from the spec, the previous status and the pods by member name.
/// `problems` are the spec's (empty when valid); `now` stamps condition changes.
pub fn aggregate(
    spec: &RedundantGroupSpec,
    previous: &RedundantGroupStatus,
    pods: &BTreeMap<String, Pod>,
    problems: &[Problem],
    now: &Time,
) -> Aggregate {
    let current: Vec<&MemberEntry> = spec
        .members
        .iter()
        .filter_map(|m| current(previous.member(&m.name), pods.get(&m.name), now))
        .collect();
    let live: Vec<&MemberEntry> = current
        .iter()
        .filter(|e| !superseded(e, &current, quiet_before_takeover(spec)))
        .copied()
        .collect();
    let claims: Vec<String> = live
        .iter()
        .filter(|e| e.state == Some(State::HS))
        .map(|e| e.name.clone())
        .collect();
    let standbys = live
        .iter()
        .filter(|e| e.state == Some(State::SBS))
        .filter(|e| e.net_check_ok != Some(false))
        .filter(|e| {
            spec.member(&e.name)
                .is_some_and(|m| m.effective_priority() > 0)
        })
        .count();
    let ready = live
        .iter()
        .filter(|e| matches!(e.state, Some(State::HS | State::SBS)))
        .count();
    let (hot, epoch) = match claims.as_slice() {
        [one] => {
            let e = live.iter().find(|e| &e.name == one);
            (Some(one.clone()), e.and_then(|e| e.epoch))
        }
        _ => (None, None),
    };
    let phase = if !problems.is_empty() {
        Phase::Invalid
    } else if claims.len() > 1 {
        Phase::SplitBrain
    } else if hot.is_none() {
        Phase::NoHot
    } else if standbys == 0 {
        Phase::Degraded
    } else {
        Phase::Healthy
    };

    let cond = |kind: &str, ok: bool, reason: &str, message: String| {
        condition(previous, kind, ok, reason, message, now)
    };
    let claim_list = claims.join(", ");
    let content = content_condition(&live, hot.as_deref(), previous, now);
    let conditions = vec![
        cond(
            "Ready",
            matches!(phase, Phase::Healthy | Phase::Degraded),
            match phase {
                Phase::Healthy | Phase::Degraded => "HotMember",
                Phase::NoHot => "NoHotMember",
                Phase::SplitBrain => "SplitBrain",
                Phase::Invalid => "InvalidSpec",
            },
            match &hot {
                Some(h) => format!("{h} is hot"),
                None if claims.len() > 1 => {
                    format!("more than one member claims hot: {claim_list}")
                }
                None => "no member is hot".to_string(),
            },
        ),
        cond(
            "Degraded",
            phase == Phase::Degraded,
            if phase == Phase::Degraded {
                "NoStandby"
            } else {
                "StandbyReady"
            },
            format!("{standbys} standby member(s) ready to take over"),
        ),
        cond(
            "SplitBrain",
            claims.len() > 1,
            if claims.len() > 1 {
                "SeveralHot"
            } else {
                "AtMostOneHot"
            },
            if claims.len() > 1 {
                format!("members claiming hot: {claim_list}")
            } else {
                "at most one member claims hot".to_string()
            },
        ),
        cond(
            "ConfigValid",
            problems.is_empty(),
            if problems.is_empty() {
                "Valid"
            } else {
                "Invalid"
            },
            if problems.is_empty() {
                "the spec is valid".to_string()
            } else {
                problems
                    .iter()
                    .map(|p| format!("spec.{p}"))
                    .collect::<Vec<_>>()
                    .join("; ")
            },
        ),
        content,
    ];

    // The newest takeover any member reports, if newer than the one already recorded.
    let newest = live
        .iter()
        .filter_map(|e| e.last_takeover.as_ref())
        .max_by_key(|f| f.time.0);
    let last_failover = match (newest, &previous.last_failover) {
        (Some(n), Some(p)) if n.time.0 <= p.time.0 => Some(p.clone()),
        (Some(n), _) => Some(n.clone()),
        (None, p) => p.clone(),
    };

    Aggregate {
        hot,
        epoch,
        phase,
        ready: format!("{ready}/{}", spec.members.len()),
        claims,
        conditions,
        last_failover,
    }
}

/// `ContentConsistent`: True when every reporting member's carousel digest equals the hot
/// member's, False naming the members (and objects) that differ, Unknown without a hot member
/// that told its carousel (no transmitter, or agents that do not report it).
fn content_condition(
    live: &[&MemberEntry],
    hot: Option<&str>,
    previous: &RedundantGroupStatus,
    now: &Time,
) -> Condition {
    let hot_digest = hot
        .and_then(|h| live.iter().find(|e| e.name == h))
        .and_then(|e| e.content_digest.as_deref());
    let (status, reason, message) = match (hot, hot_digest) {
        (Some(h), Some(d)) => {
            let differ: Vec<String> = live
                .iter()
                .filter(|e| e.content_digest.as_deref().is_some_and(|x| x != d))
                .map(|e| match e.content_differs.as_slice() {
                    [] => e.name.clone(),
                    objects => format!("{} ({})", e.name, objects.join(", ")),
                })
                .collect();
            if differ.is_empty() {
                (
                    "True",
                    "SameCarousel",
                    format!("every member that reports its carousel carries {h}'s"),
                )
            } else {
                (
                    "False",
                    "CarouselDiffers",
                    format!(
                        "carousel differs from hot member {h}'s on {}: a failover there would switch the set-top boxes to other content",
                        differ.join("; ")
                    ),
                )
            }
        }
        (Some(h), None) => (
            "Unknown",
            "NoCarousel",
            format!("hot member {h} reports no carousel"),
        ),
        (None, _) => (
            "Unknown",
            "NoHotMember",
            "no hot member to compare with".to_string(),
        ),
    };
    let mut c = condition(
        previous,
        "ContentConsistent",
        status == "True",
        reason,
        message,
        now,
    );
    if status == "Unknown" {
        c.status = status.to_string();
        c.last_transition_time = previous
            .condition("ContentConsistent")
            .filter(|p| p.status == status)
            .map(|p| p.last_transition_time.clone())
            .unwrap_or_else(|| now.clone());
    }
    c
}

/// A condition, keeping the previous transition time when its status did not change.
fn condition(
    previous: &RedundantGroupStatus,
    kind: &str,
    ok: bool,
    reason: &str,
    message: String,
    now: &Time,
) -> Condition {
    let status = if ok { "True" } else { "False" };
    let since = previous
        .condition(kind)
        .filter(|c| c.status == status)
        .map(|c| c.last_transition_time.clone())
        .unwrap_or_else(|| now.clone());
    Condition {
        type_: kind.to_string(),
        status: status.to_string(),
        reason: reason.to_string(),
        message,
        last_transition_time: since,
        observed_generation: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::resource::MemberSpec;
    use k8s_openapi::api::core::v1::PodStatus;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::MicroTime;
    use k8s_openapi::jiff::{SignedDuration, Timestamp};
    use rdg_core::config::Network;

    fn spec() -> RedundantGroupSpec {
        let members = ["a", "b", "c"]
            .iter()
            .zip([100, 50, 10])
            .map(|(n, p)| MemberSpec {
                name: n.to_string(),
                priority: p,
                addresses: BTreeMap::new(),
                node_name: None,
                node_selector: BTreeMap::new(),
                fenced: false,
            })
            .collect();
        serde_json::from_value(serde_json::json!({
            "networks": [Network { name: "primary".into(), multicast: None }],
            "members": [],
        }))
        .map(|mut s: RedundantGroupSpec| {
            s.members = members;
            s
        })
        .expect("a minimal spec")
    }

    fn now() -> Time {
        Time(Timestamp::from_second(1_800_000_000).unwrap())
    }

    fn entry(name: &str, state: State, epoch: u64, hears: &[&str]) -> MemberEntry {
        MemberEntry {
            name: name.into(),
            state: Some(state),
            epoch: Some(epoch),
            hears: hears.iter().map(|h| h.to_string()).collect(),
            pod: Some(format!("g-{name}")),
            last_seen: Some(MicroTime(now().0)),
            ..MemberEntry::default()
        }
    }

    fn pods() -> BTreeMap<String, Pod> {
        ["a", "b", "c"]
            .iter()
            .map(|m| {
                let mut pod = Pod::default();
                pod.metadata.name = Some(format!("g-{m}"));
                pod.status = Some(PodStatus {
                    phase: Some("Running".into()),
                    ..PodStatus::default()
                });
                (m.to_string(), pod)
            })
            .collect()
    }

    fn run(entries: Vec<MemberEntry>) -> Aggregate {
        let previous = RedundantGroupStatus {
            members: entries,
            ..RedundantGroupStatus::default()
        };
        aggregate(&spec(), &previous, &pods(), &[], &now())
    }

    fn with_content(mut e: MemberEntry, digest: &str, differs: &[&str]) -> MemberEntry {
        e.content_digest = Some(digest.into());
        e.content_differs = differs.iter().map(|d| d.to_string()).collect();
        e
    }

    fn content_of(agg: &Aggregate) -> &Condition {
        agg.conditions
            .iter()
            .find(|c| c.type_ == "ContentConsistent")
            .expect("a ContentConsistent condition")
    }

    #[test]
    fn content_consistent_names_the_member_and_objects_that_differ() {
        let agg = run(vec![
            with_content(entry("a", State::HS, 1, &["b", "c"]), "00aa", &[]),
            with_content(entry("b", State::SBS, 1, &["a", "c"]), "00aa", &[]),
            with_content(
                entry("c", State::SBS, 1, &["a", "b"]),
                "00bb",
                &["224.2.2.2:22222/kernel"],
            ),
        ]);
        let c = content_of(&agg);
        assert_eq!(
            (c.status.as_str(), c.reason.as_str()),
            ("False", "CarouselDiffers")
        );
        assert!(
            c.message.contains("c (224.2.2.2:22222/kernel)"),
            "{}",
            c.message
        );
        assert!(!c.message.contains("b ("), "{}", c.message);

        let agg = run(vec![
            with_content(entry("a", State::HS, 1, &["b"]), "00aa", &[]),
            with_content(entry("b", State::SBS, 1, &["a"]), "00aa", &[]),
        ]);
        assert_eq!(content_of(&agg).status, "True");

        let agg = run(vec![
            entry("a", State::HS, 1, &["b"]),
            with_content(entry("b", State::SBS, 1, &["a"]), "00aa", &[]),
        ]);
        let c = content_of(&agg);
        assert_eq!(
            (c.status.as_str(), c.reason.as_str()),
            ("Unknown", "NoCarousel")
        );
    }

    #[test]
    fn the_last_word_of_a_dead_hot_member_is_superseded_by_the_new_claim() {
        // a's node died: its pod still runs and its entry, written while it heard b and c,
        // still says HS at epoch 4; b took over at epoch 5 and no longer hears a.
        let agg = run(vec![
            entry("a", State::HS, 4, &["b", "c"]),
            entry("b", State::HS, 5, &["c"]),
            entry("c", State::SBS, 5, &["b"]),
        ]);
        assert_eq!(agg.hot.as_deref(), Some("b"));
        assert_eq!(agg.epoch, Some(5));
        assert_eq!(agg.phase, Phase::Healthy);
        assert_eq!(agg.ready, "2/3");
    }

    #[test]
    fn a_partitioned_hot_member_that_reported_the_other_silent_is_a_split_brain() {
        // a runs on and reported b silent: two live claims.
        let agg = run(vec![
            entry("a", State::HS, 4, &["c"]),
            entry("b", State::HS, 5, &["c"]),
        ]);
        assert_eq!(agg.hot, None);
        assert_eq!(agg.phase, Phase::SplitBrain);
        assert_eq!(agg.claims, ["a", "b"]);
    }

    /// `e`, last written `ms` milliseconds before [`now`].
    fn written_before(mut e: MemberEntry, ms: i64) -> MemberEntry {
        e.last_seen = Some(MicroTime(now().0 - SignedDuration::from_millis(ms)));
        e
    }

    /// `e` took over from `from` at its epoch, `ms` milliseconds before [`now`].
    fn took_over(mut e: MemberEntry, from: &str, ms: i64) -> MemberEntry {
        e.last_takeover = Some(Failover {
            from: Some(from.into()),
            to: e.name.clone(),
            reason: "hot member lost".into(),
            time: MicroTime(now().0 - SignedDuration::from_millis(ms)),
            detection_ms: Some(500),
            epoch: e.epoch,
        });
        e
    }

    #[test]
    fn a_hot_member_that_died_before_reporting_a_newcomer_is_superseded_by_its_successor() {
        // c rejoined; a died before its entry listed c. b took over (timeout 500 ms) 900 ms
        // after a's last report: a's claim is its last word.
        let agg = run(vec![
            written_before(entry("a", State::HS, 4, &["c"]), 1000),
            took_over(entry("b", State::HS, 5, &["c"]), "a", 100),
            entry("c", State::SBS, 5, &["b"]),
        ]);
        assert_eq!(agg.hot.as_deref(), Some("b"));
        assert_eq!(agg.phase, Phase::Healthy);
    }

    #[test]
    fn a_hot_member_that_reported_after_the_takeover_is_a_split_brain() {
        // a wrote its entry (b silent) 50 ms after b took over: both run.
        let agg = run(vec![
            written_before(entry("a", State::HS, 4, &["c"]), 50),
            took_over(entry("b", State::HS, 5, &["c"]), "a", 100),
        ]);
        assert_eq!(agg.phase, Phase::SplitBrain);
        // And just before it, within the heartbeat and net check of the other's takeover.
        let agg = run(vec![
            written_before(entry("a", State::HS, 4, &["c"]), 400),
            took_over(entry("b", State::HS, 5, &["c"]), "a", 100),
        ]);
        assert_eq!(agg.phase, Phase::SplitBrain);
    }

    #[test]
    fn an_old_takeover_of_a_later_term_supersedes_nothing() {
        // b's recorded takeover is of an earlier term than the epoch it claims now.
        let mut b = took_over(entry("b", State::HS, 5, &["c"]), "a", 100);
        b.epoch = Some(6);
        let agg = run(vec![
            written_before(entry("a", State::HS, 4, &["c"]), 1000),
            b,
        ]);
        assert_eq!(agg.phase, Phase::SplitBrain);
    }

    #[test]
    fn a_stale_newer_claim_supersedes_nothing() {
        let mut b = entry("b", State::HS, 5, &["a"]);
        b.last_seen = Some(MicroTime(
            now().0 - SignedDuration::from_secs(STALE_AFTER_SECS + 1),
        ));
        let agg = run(vec![entry("a", State::HS, 4, &["b"]), b]);
        assert_eq!(agg.hot.as_deref(), Some("a"));
    }

    #[test]
    fn a_claim_that_says_nothing_of_whom_it_hears_is_never_superseded() {
        // An entry without `hears` (written by an agent that does not report it).
        let agg = run(vec![
            entry("a", State::HS, 4, &[]),
            entry("b", State::HS, 5, &["c"]),
        ]);
        assert_eq!(agg.phase, Phase::SplitBrain);
    }

    #[test]
    fn claims_of_one_epoch_are_never_superseded() {
        let agg = run(vec![
            entry("a", State::HS, 5, &["b"]),
            entry("b", State::HS, 5, &["a"]),
        ]);
        assert_eq!(agg.phase, Phase::SplitBrain);
    }

    #[test]
    fn a_newer_claim_supersedes_only_claims_not_standbys() {
        // c is a standby that heard b: it stays ready.
        let agg = run(vec![
            entry("b", State::HS, 5, &["c"]),
            entry("c", State::SBS, 4, &["b"]),
        ]);
        assert_eq!(agg.hot.as_deref(), Some("b"));
        assert_eq!(agg.ready, "2/3");
        assert_eq!(agg.phase, Phase::Healthy);
    }
}

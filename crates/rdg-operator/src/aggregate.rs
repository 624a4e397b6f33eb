//! Status aggregation: from the members' own reports (their entries of `status.members`) and
//! their pods to the fields `kubectl get rdg` shows — who is hot, the phase, the conditions and
//! the last failover. Pure: the controller feeds it what it read and applies what it returns.

use crate::resource::RedundantGroupSpec;
use crate::status::{Failover, MemberEntry, Phase, RedundantGroupStatus};
use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
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

/// Recomputes the aggregate from the spec, the previous status and the pods by member name.
/// `problems` are the spec's (empty when valid); `now` stamps condition changes.
pub fn aggregate(
    spec: &RedundantGroupSpec,
    previous: &RedundantGroupStatus,
    pods: &BTreeMap<String, Pod>,
    problems: &[Problem],
    now: &Time,
) -> Aggregate {
    let live: Vec<&MemberEntry> = spec
        .members
        .iter()
        .filter_map(|m| current(previous.member(&m.name), pods.get(&m.name), now))
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
        .filter(|e| spec.member(&e.name).is_some_and(|m| m.priority > 0))
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

//! What to do with a group's pods and planned hand-overs, decided without I/O: create missing
//! pods; roll out-of-date ones one at a time, standbys first, then hand the hot role over by a
//! planned switchover to an up-to-date standby, and only then replace the old hot member's pod
//! — so an upgrade costs at most one planned hand-over and never an unplanned failover.

use crate::status::{SwitchoverPhase, SwitchoverStatus};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use rdg_core::State;

/// How long a planned hand-over may take before it is reported failed.
pub const SWITCHOVER_TIMEOUT_SECS: i64 = 30;

/// One member as the planner sees it.
#[derive(Debug, Clone, PartialEq)]
pub struct MemberView {
    /// Member name.
    pub name: String,
    /// Configured priority.
    pub priority: u16,
    /// Its pod, if one exists.
    pub pod: Option<PodView>,
    /// Its state, from a current report (None: unknown).
    pub state: Option<State>,
    /// Its last net-check verdict.
    pub net_check_ok: Option<bool>,
}

/// A member's pod as the planner sees it.
#[derive(Debug, Clone, PartialEq)]
pub struct PodView {
    /// Pod name.
    pub name: String,
    /// Its hash annotation equals the desired one.
    pub up_to_date: bool,
    /// Running and not being deleted.
    pub running: bool,
    /// Being deleted.
    pub deleting: bool,
}

/// The decisions of one reconcile.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Plan {
    /// Members whose pod must be created.
    pub create: Vec<String>,
    /// Pods to delete, with why (out of date, or of a member no longer in the spec).
    pub delete: Vec<(String, String)>,
    /// A planned hand-over to start (the new `status.switchover`).
    pub switchover: Option<String>,
    /// Why the rollout waits, if it does.
    pub waiting: Option<String>,
}

/// Plans pods: `members` in spec order, `orphans` are pods of members no longer in the spec,
/// `hot` the aggregate's hot member, `pending` whether a planned hand-over is under way.
pub fn plan(members: &[MemberView], orphans: &[String], hot: Option<&str>, pending: bool) -> Plan {
    let mut p = Plan {
        create: members
            .iter()
            .filter(|m| m.pod.is_none())
            .map(|m| m.name.clone())
            .collect(),
        ..Plan::default()
    };
    for o in orphans {
        p.delete
            .push((o.clone(), "member removed from the spec".to_string()));
    }
    let busy = members.iter().find(|m| match &m.pod {
        None => true,
        Some(pod) => pod.deleting || !pod.running,
    });
    if let Some(b) = busy {
        if members
            .iter()
            .any(|m| m.pod.as_ref().is_some_and(|p| !p.up_to_date))
        {
            p.waiting = Some(format!("waiting for member {}'s pod to run", b.name));
        }
        return p;
    }
    if pending {
        p.waiting = Some("waiting for the planned hand-over".to_string());
        return p;
    }
    let outdated: Vec<&MemberView> = members
        .iter()
        .filter(|m| m.pod.as_ref().is_some_and(|p| !p.up_to_date))
        .collect();
    if outdated.is_empty() {
        return p;
    }
    // Standbys first, the least important first.
    if let Some(m) = outdated
        .iter()
        .filter(|m| Some(m.name.as_str()) != hot)
        .min_by_key(|m| (m.priority, m.name.clone()))
    {
        let pod = m.pod.as_ref().map(|p| p.name.clone()).unwrap_or_default();
        p.delete
            .push((pod, "out of date (rolling standbys first)".to_string()));
        return p;
    }
    // Only the hot member is out of date: hand over to the best up-to-date standby first.
    let hot_member = outdated[0];
    if members.len() == 1 {
        let pod = hot_member.pod.as_ref().map(|p| p.name.clone());
        p.delete.push((
            pod.unwrap_or_default(),
            "out of date (the only member)".to_string(),
        ));
        return p;
    }
    match best_standby(members, &hot_member.name) {
        Some(to) => p.switchover = Some(to),
        None => {
            p.waiting = Some(format!(
                "hot member {} is out of date but no standby is ready to take over; waiting",
                hot_member.name
            ))
        }
    }
    p
}

/// The standby that should take a planned hand-over from `from`: up to date, SBS, net check
/// passing, priority above 0; the highest priority wins, then the name.
pub fn best_standby(members: &[MemberView], from: &str) -> Option<String> {
    members
        .iter()
        .filter(|m| m.name != from)
        .filter(|m| m.state == Some(State::SBS) && m.net_check_ok != Some(false))
        .filter(|m| m.priority > 0)
        .filter(|m| m.pod.as_ref().is_some_and(|p| p.up_to_date && p.running))
        .max_by(|a, b| a.priority.cmp(&b.priority).then(b.name.cmp(&a.name)))
        .map(|m| m.name.clone())
}

/// Advances a planned hand-over: Pending becomes Done when `to` is hot, Failed after
/// [`SWITCHOVER_TIMEOUT_SECS`]. Returns the new value (or the old one unchanged).
pub fn advance(
    current: Option<&SwitchoverStatus>,
    hot: Option<&str>,
    now: &Time,
) -> Option<SwitchoverStatus> {
    let mut s = current?.clone();
    if s.phase != SwitchoverPhase::Pending {
        return Some(s);
    }
    if hot == Some(s.to.as_str()) {
        s.phase = SwitchoverPhase::Done;
        s.finished = Some(now.clone());
    } else if now.0.as_second() - s.requested.0.as_second() > SWITCHOVER_TIMEOUT_SECS {
        s.phase = SwitchoverPhase::Failed;
        s.finished = Some(now.clone());
        s.message = Some(format!(
            "{} did not become hot within {SWITCHOVER_TIMEOUT_SECS} s (hot: {})",
            s.to,
            hot.unwrap_or("none")
        ));
    }
    Some(s)
}

/// A new planned hand-over to `to`, asked for by `reason` (`operator` or `rollout`).
pub fn request(to: &str, reason: &str, generation: Option<i64>, now: &Time) -> SwitchoverStatus {
    SwitchoverStatus {
        to: to.to_string(),
        phase: SwitchoverPhase::Pending,
        reason: reason.to_string(),
        requested: now.clone(),
        finished: None,
        generation,
        message: None,
    }
}

/// Whether an operator's request for `to` is new: not the one the status already records.
/// A request is carried out once per target; to hand over to the same member again, use the
/// `rdg.infocast.io/switchover-to` annotation (removed once taken up).
pub fn operator_request_is_new(to: &str, current: Option<&SwitchoverStatus>) -> bool {
    !current.is_some_and(|c| c.reason == "operator" && c.to == to)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(name: &str, prio: u16, state: State, up_to_date: bool) -> MemberView {
        MemberView {
            name: name.to_string(),
            priority: prio,
            pod: Some(PodView {
                name: format!("g-{name}"),
                up_to_date,
                running: true,
                deleting: false,
            }),
            state: Some(state),
            net_check_ok: Some(true),
        }
    }

    #[test]
    fn missing_pods_are_created_and_nothing_rolls_meanwhile() {
        let mut a = m("a", 100, State::HS, false);
        a.pod = None;
        let b = m("b", 50, State::SBS, false);
        let p = plan(&[a, b], &[], Some("a"), false);
        assert_eq!(p.create, vec!["a".to_string()]);
        assert!(p.delete.is_empty(), "{p:?}");
    }

    #[test]
    fn standbys_roll_first_lowest_priority_first_then_hand_over_then_old_hot() {
        let members = [
            m("a", 100, State::HS, false),
            m("b", 50, State::SBS, false),
            m("c", 80, State::SBS, false),
        ];
        let p = plan(&members, &[], Some("a"), false);
        assert_eq!(
            p.delete,
            vec![(
                "g-b".to_string(),
                "out of date (rolling standbys first)".to_string()
            )]
        );
        let members = [
            m("a", 100, State::HS, false),
            m("b", 50, State::SBS, true),
            m("c", 80, State::SBS, false),
        ];
        assert_eq!(plan(&members, &[], Some("a"), false).delete[0].0, "g-c");
        let members = [
            m("a", 100, State::HS, false),
            m("b", 50, State::SBS, true),
            m("c", 80, State::SBS, true),
        ];
        let p = plan(&members, &[], Some("a"), false);
        assert!(p.delete.is_empty());
        assert_eq!(p.switchover.as_deref(), Some("c"));
        // After the hand-over the old hot member is a standby and is rolled.
        let members = [
            m("a", 100, State::SBS, false),
            m("b", 50, State::SBS, true),
            m("c", 80, State::HS, true),
        ];
        assert_eq!(plan(&members, &[], Some("c"), false).delete[0].0, "g-a");
    }

    #[test]
    fn one_pod_at_a_time_and_not_during_a_hand_over() {
        let mut b = m("b", 50, State::SBS, true);
        b.pod.as_mut().unwrap().running = false;
        let members = [
            m("a", 100, State::HS, false),
            b,
            m("c", 80, State::SBS, false),
        ];
        let p = plan(&members, &[], Some("a"), false);
        assert!(p.delete.is_empty() && p.waiting.is_some(), "{p:?}");
        let members = [m("a", 100, State::HS, false), m("b", 50, State::SBS, true)];
        let p = plan(&members, &[], Some("a"), true);
        assert!(p.delete.is_empty() && p.switchover.is_none(), "{p:?}");
    }

    #[test]
    fn no_ready_standby_means_the_hot_member_is_not_touched() {
        let members = [m("a", 100, State::HS, false), m("b", 50, State::CS, true)];
        let p = plan(&members, &[], Some("a"), false);
        assert!(p.delete.is_empty() && p.switchover.is_none(), "{p:?}");
        assert!(p.waiting.unwrap().contains("no standby"));
        // A priority-0 standby is not chosen either.
        let members = [m("a", 100, State::HS, false), m("b", 0, State::SBS, true)];
        assert!(plan(&members, &[], Some("a"), false).switchover.is_none());
    }

    #[test]
    fn a_pending_switchover_ends_done_or_failed() {
        let t0 = Time("2026-11-23T10:00:00Z".parse().unwrap());
        let t1 = Time("2026-11-23T10:00:05Z".parse().unwrap());
        let t2 = Time("2026-11-23T10:01:00Z".parse().unwrap());
        let r = request("b", "operator", Some(3), &t0);
        assert_eq!(
            advance(Some(&r), Some("a"), &t1).unwrap().phase,
            SwitchoverPhase::Pending
        );
        let done = advance(Some(&r), Some("b"), &t1).unwrap();
        assert_eq!(
            (done.phase, done.finished.clone()),
            (SwitchoverPhase::Done, Some(t1.clone()))
        );
        let failed = advance(Some(&r), Some("a"), &t2).unwrap();
        assert_eq!(failed.phase, SwitchoverPhase::Failed);
        assert!(failed.message.unwrap().contains("did not become hot"));
        assert!(!operator_request_is_new("b", Some(&done)));
        assert!(operator_request_is_new("c", Some(&done)));
        assert!(operator_request_is_new(
            "b",
            Some(&request("b", "rollout", None, &t0))
        ));
    }
}

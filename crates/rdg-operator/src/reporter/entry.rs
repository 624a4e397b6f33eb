//! From the agent's `/status` report to this member's entry in the group's status, and when
//! that entry is worth writing: on any change the controller or a person would care about
//! (state, temporal state, epoch, hot member, network health, net check, VIPs, last takeover),
//! and otherwise at least every refresh period so `lastSeen` shows the member is alive.

use crate::status::{Failover, MemberEntry, NetworkHealth};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, Time};
use k8s_openapi::jiff::Timestamp;
use rdg_agent::status::{LastBecameHot, StatusReport};
use rdg_core::State;
use std::time::{Duration, Instant};

/// This member's entry as `report` describes it, without the times (`lastSeen`,
/// `lastTransitionTime`), which [`EntryTracker`] adds.
pub fn member_entry(report: &StatusReport, pod: &str, node: &str) -> MemberEntry {
    MemberEntry {
        name: report.member.clone(),
        state: Some(report.state),
        temporal_state: Some(report.temporal.clone()),
        epoch: Some(report.epoch),
        hot: report.hot.clone(),
        networks: network_health(report),
        hears: report
            .members
            .iter()
            .filter(|m| !m.is_self && m.alive)
            .map(|m| m.name.clone())
            .collect(),
        net_check_ok: report.net_check.ok,
        vips_ok: vips_ok(report),
        pod: Some(pod.to_string()),
        node: Some(node.to_string()),
        last_transition_time: None,
        last_seen: None,
        last_takeover: report
            .last_became_hot
            .as_ref()
            // Only taking over from a hot member that was lost or left is a failover; the first
            // election and standalone mode are not.
            .filter(|h| !h.planned && h.reason == "takeover")
            .map(|h| takeover(&report.member, h)),
        content_digest: report.content.as_ref().map(|c| c.digest.clone()),
        content_differs: report
            .content
            .as_ref()
            .map(|c| c.differing.clone())
            .unwrap_or_default(),
    }
}

/// Per network of this member: healthy when every other live member is heard on it; the
/// members heard elsewhere but silent on it. With no other member alive there is nothing to
/// miss, so every network counts as healthy.
pub fn network_health(report: &StatusReport) -> Vec<NetworkHealth> {
    report
        .networks
        .iter()
        .map(|n| {
            let silent: Vec<String> = report
                .members
                .iter()
                .filter(|m| !m.is_self && m.alive)
                .filter(|m| {
                    m.networks
                        .iter()
                        .find(|pn| pn.name == n.name)
                        .is_none_or(|pn| !pn.healthy)
                })
                .map(|m| m.name.clone())
                .collect();
            NetworkHealth {
                name: n.name.clone(),
                healthy: silent.is_empty(),
                silent,
            }
        })
        .collect()
}

/// Hot: every VIP is held without error. Otherwise: none is held. None without VIPs.
fn vips_ok(report: &StatusReport) -> Option<bool> {
    if report.vips.is_empty() {
        return None;
    }
    Some(if report.state == State::HS {
        report.vips.iter().all(|v| v.held && v.error.is_none())
    } else {
        report.vips.iter().all(|v| !v.held)
    })
}

/// An unplanned becoming-hot as the status's `Failover`.
pub fn takeover(member: &str, h: &LastBecameHot) -> Failover {
    let reason = match (h.reason.as_str(), h.detection_ms) {
        ("takeover", Some(_)) => "hot member lost".to_string(),
        ("takeover", None) => "hot member left".to_string(),
        (other, _) => other.to_string(),
    };
    Failover {
        from: h.from.clone(),
        to: member.to_string(),
        reason,
        time: unix_ms_time(h.unix_ms),
        detection_ms: h.detection_ms,
        epoch: Some(h.epoch),
    }
}

/// A Kubernetes time from milliseconds since the Unix epoch.
pub fn unix_ms_time(ms: u64) -> MicroTime {
    MicroTime(Timestamp::from_millisecond(ms as i64).unwrap_or(Timestamp::UNIX_EPOCH))
}

/// Decides when this member's entry must be written, and fills in its times.
#[derive(Debug)]
pub struct EntryTracker {
    pod: String,
    node: String,
    refresh: Duration,
    /// The entry last handed out for writing, without its times.
    last: Option<MemberEntry>,
    /// When it was handed out.
    last_at: Option<Instant>,
    /// When `state` last changed.
    transition: Option<Time>,
}

impl EntryTracker {
    /// A tracker for the member in `pod` on `node` that asks for a write at least every
    /// `refresh` (so `lastSeen` stays fresh).
    pub fn new(pod: &str, node: &str, refresh: Duration) -> EntryTracker {
        EntryTracker {
            pod: pod.to_string(),
            node: node.to_string(),
            refresh,
            last: None,
            last_at: None,
            transition: None,
        }
    }

    /// Looks at a new report taken at `now` (wall clock `wall`): the entry to apply when it
    /// changed or the refresh is due, else None.
    pub fn observe(
        &mut self,
        report: &StatusReport,
        now: Instant,
        wall: Timestamp,
    ) -> Option<MemberEntry> {
        let entry = member_entry(report, &self.pod, &self.node);
        let state_changed = self.last.as_ref().is_none_or(|l| l.state != entry.state);
        if state_changed {
            self.transition = Some(Time(wall));
        }
        let changed = self.last.as_ref() != Some(&entry);
        let due = self
            .last_at
            .is_none_or(|t| now.saturating_duration_since(t) >= self.refresh);
        if !changed && !due {
            return None;
        }
        self.last = Some(entry.clone());
        self.last_at = Some(now);
        Some(MemberEntry {
            last_transition_time: self.transition.clone(),
            last_seen: Some(MicroTime(wall)),
            ..entry
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::reporter::fixtures::report;
    use rdg_agent::status::LastBecameHot;

    fn at(s: &str) -> Timestamp {
        s.parse().unwrap()
    }

    #[test]
    fn report_maps_to_the_members_entry() {
        let e = member_entry(
            &report("SBS", 4, Some("ics-a"), Some("secondary")),
            "pod-b",
            "node-b",
        );
        assert_eq!(e.name, "ics-b");
        assert_eq!(e.state, Some(State::SBS));
        assert_eq!(e.temporal_state.as_deref(), Some("iNone"));
        assert_eq!(e.epoch, Some(4));
        assert_eq!(e.hot.as_deref(), Some("ics-a"));
        assert_eq!(e.net_check_ok, Some(true));
        assert_eq!(e.vips_ok, Some(true), "a standby holds no VIP");
        assert_eq!(
            (e.pod.as_deref(), e.node.as_deref()),
            (Some("pod-b"), Some("node-b"))
        );
        assert_eq!(
            e.networks,
            vec![
                NetworkHealth {
                    name: "primary".into(),
                    healthy: true,
                    silent: vec![]
                },
                NetworkHealth {
                    name: "secondary".into(),
                    healthy: false,
                    silent: vec!["ics-a".into()]
                },
            ]
        );
        assert_eq!(e.last_takeover, None);
    }

    #[test]
    fn a_hot_member_missing_a_vip_is_not_ok() {
        let mut r = report("HS", 2, Some("ics-b"), None);
        assert_eq!(member_entry(&r, "p", "n").vips_ok, Some(true));
        r.vips[0].held = false;
        r.vips[0].error = Some("EPERM".into());
        assert_eq!(member_entry(&r, "p", "n").vips_ok, Some(false));
    }

    #[test]
    fn only_an_unplanned_becoming_hot_is_a_takeover() {
        let mut r = report("HS", 2, Some("ics-b"), None);
        let h = LastBecameHot {
            from: Some("ics-a".into()),
            reason: "takeover".into(),
            planned: false,
            epoch: 2,
            unix_ms: 1_795_000_000_000,
            detection_ms: Some(480),
        };
        r.last_became_hot = Some(h.clone());
        let t = member_entry(&r, "p", "n").last_takeover.unwrap();
        assert_eq!(t.from.as_deref(), Some("ics-a"));
        assert_eq!(t.to, "ics-b");
        assert_eq!(t.reason, "hot member lost");
        assert_eq!(t.detection_ms, Some(480));
        assert_eq!(t.epoch, Some(2));
        assert_eq!(t.time, MicroTime(at("2026-11-18T11:06:40Z")));
        r.last_became_hot = Some(LastBecameHot {
            planned: true,
            reason: "handover".into(),
            ..h.clone()
        });
        assert_eq!(member_entry(&r, "p", "n").last_takeover, None);
        for first in ["election", "standalone"] {
            r.last_became_hot = Some(LastBecameHot {
                from: None,
                reason: first.into(),
                detection_ms: None,
                ..h.clone()
            });
            assert_eq!(member_entry(&r, "p", "n").last_takeover, None, "{first}");
        }
    }

    #[test]
    fn tracker_writes_on_change_and_on_refresh_only() {
        let refresh = Duration::from_secs(30);
        let mut t = EntryTracker::new("p", "n", refresh);
        let t0 = Instant::now();
        let sbs = report("SBS", 1, Some("ics-a"), None);
        let first = t
            .observe(&sbs, t0, at("2026-11-23T10:00:00Z"))
            .expect("first report is written");
        assert_eq!(
            first.last_transition_time,
            Some(Time(at("2026-11-23T10:00:00Z")))
        );
        assert_eq!(first.last_seen, Some(MicroTime(at("2026-11-23T10:00:00Z"))));
        assert_eq!(
            t.observe(
                &sbs,
                t0 + Duration::from_secs(1),
                at("2026-11-23T10:00:01Z")
            ),
            None
        );
        // A change that is not a state change keeps the transition time.
        let anomaly = report("SBS", 1, Some("ics-a"), Some("primary"));
        let e = t
            .observe(
                &anomaly,
                t0 + Duration::from_secs(2),
                at("2026-11-23T10:00:02Z"),
            )
            .unwrap();
        assert_eq!(
            e.last_transition_time,
            Some(Time(at("2026-11-23T10:00:00Z")))
        );
        assert_eq!(e.last_seen, Some(MicroTime(at("2026-11-23T10:00:02Z"))));
        // Unchanged, but the refresh is due: written again for lastSeen.
        let due = t0 + Duration::from_secs(2) + refresh;
        let e = t
            .observe(&anomaly, due, at("2026-11-23T10:00:32Z"))
            .unwrap();
        assert_eq!(e.last_seen, Some(MicroTime(at("2026-11-23T10:00:32Z"))));
        // A state change moves the transition time.
        let hs = report("HS", 2, Some("ics-b"), Some("primary"));
        let e = t
            .observe(
                &hs,
                due + Duration::from_secs(1),
                at("2026-11-23T10:00:33Z"),
            )
            .unwrap();
        assert_eq!(
            e.last_transition_time,
            Some(Time(at("2026-11-23T10:00:33Z")))
        );
    }
}

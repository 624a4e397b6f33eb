//! Which Kubernetes Events a change between two reports deserves: this member became hot or
//! standby, crashed or was isolated, recovered; another member went silent on one network
//! while heard on another (a network anomaly), or was heard there again.

use rdg_agent::status::StatusReport;
use rdg_core::State;

/// Normal or Warning, as Kubernetes Events have it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Severity {
    /// Expected operation.
    Normal,
    /// Something an operator should look at.
    Warning,
}

/// One Event to publish about the group.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Notice {
    /// Normal or Warning.
    pub severity: Severity,
    /// Machine-readable reason (`BecameHot`, `BecameStandby`, `Crashed`, `Isolated`,
    /// `WrongConfiguration`, `Recovered`, `NetworkAnomaly`, `NetworkRecovered`).
    pub reason: &'static str,
    /// Human-readable note.
    pub note: String,
}

impl Notice {
    fn new(severity: Severity, reason: &'static str, note: String) -> Notice {
        Notice {
            severity,
            reason,
            note,
        }
    }
}

/// The Events for going from `prev` (None: the first report, taken as a member starting up)
/// to `cur`.
pub fn transition_notices(prev: Option<&StatusReport>, cur: &StatusReport) -> Vec<Notice> {
    let mut out = Vec::new();
    let me = &cur.member;
    let before = prev.map_or(State::SS, |p| p.state);
    if before != cur.state {
        match cur.state {
            State::HS => out.push(Notice::new(Severity::Normal, "BecameHot", became_hot_note(prev, cur))),
            State::SBS if before == State::CS || before == State::FS => out.push(Notice::new(
                Severity::Normal,
                "Recovered",
                format!("{me} recovered from {before} and stands by (hot: {})", hot(cur)),
            )),
            State::SBS => out.push(Notice::new(
                Severity::Normal,
                "BecameStandby",
                format!("{me} is standby (was {before}; hot: {})", hot(cur)),
            )),
            State::CS if cur.net_check.ok == Some(false) => out.push(Notice::new(
                Severity::Warning,
                "Isolated",
                format!("{me} is isolated: no net-check target answers; it will not take over (was {before})"),
            )),
            State::CS => out.push(Notice::new(
                Severity::Warning,
                "Crashed",
                format!("{me} went to CS (was {before})"),
            )),
            State::FS => out.push(Notice::new(
                Severity::Warning,
                "WrongConfiguration",
                format!("{me} has a wrong configuration (FS)"),
            )),
            State::SS | State::TS => {}
        }
    }
    let silent = |r: Option<&StatusReport>| -> Vec<(String, String)> {
        r.map(anomalies).unwrap_or_default()
    };
    let (was, now) = (silent(prev), silent(Some(cur)));
    for (member, net) in now.iter().filter(|a| !was.contains(a)) {
        out.push(Notice::new(
            Severity::Warning,
            "NetworkAnomaly",
            format!(
                "{me} does not hear {member} on network {net} but does on another: no takeover"
            ),
        ));
    }
    for (member, net) in was.iter().filter(|a| !now.contains(a)) {
        out.push(Notice::new(
            Severity::Normal,
            "NetworkRecovered",
            format!("{me} hears {member} on network {net} again"),
        ));
    }
    out
}

fn hot(r: &StatusReport) -> &str {
    r.hot.as_deref().unwrap_or("none")
}

fn became_hot_note(prev: Option<&StatusReport>, cur: &StatusReport) -> String {
    let me = &cur.member;
    let last = cur
        .last_became_hot
        .as_ref()
        .filter(|h| h.epoch == cur.epoch);
    let from = last
        .and_then(|h| h.from.clone())
        .or_else(|| prev.and_then(|p| p.hot.clone()).filter(|h| h != me));
    let reason = last.map_or("unknown", |h| h.reason.as_str());
    let mut note = format!(
        "{me} became hot (epoch {}) from {}: {reason}",
        cur.epoch,
        from.as_deref().unwrap_or("none")
    );
    if let Some(ms) = last.and_then(|h| h.detection_ms) {
        note.push_str(&format!(", loss detected after {ms} ms"));
    }
    note
}

/// (member, network) pairs where a live member is heard on another network but not this one.
fn anomalies(r: &StatusReport) -> Vec<(String, String)> {
    r.members
        .iter()
        .filter(|m| !m.is_self && m.alive)
        .flat_map(|m| {
            m.networks
                .iter()
                .filter(|n| n.anomaly || !n.healthy)
                .map(|n| (m.name.clone(), n.name.clone()))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::reporter::fixtures::report;
    use rdg_agent::status::LastBecameHot;

    fn reasons(n: &[Notice]) -> Vec<(&'static str, Severity)> {
        n.iter().map(|n| (n.reason, n.severity)).collect()
    }

    #[test]
    fn first_standby_report_says_standby() {
        let n = transition_notices(None, &report("SBS", 1, Some("ics-a"), None));
        assert_eq!(reasons(&n), vec![("BecameStandby", Severity::Normal)]);
    }

    #[test]
    fn an_unchanged_report_says_nothing() {
        let r = report("SBS", 1, Some("ics-a"), Some("primary"));
        assert!(transition_notices(Some(&r), &r).is_empty());
    }

    #[test]
    fn becoming_hot_names_the_old_hot_member_and_why() {
        let prev = report("SBS", 1, Some("ics-a"), None);
        let mut cur = report("HS", 2, Some("ics-b"), None);
        cur.last_became_hot = Some(LastBecameHot {
            from: Some("ics-a".into()),
            reason: "takeover".into(),
            planned: false,
            epoch: 2,
            unix_ms: 0,
            detection_ms: Some(510),
        });
        let n = transition_notices(Some(&prev), &cur);
        assert_eq!(reasons(&n), vec![("BecameHot", Severity::Normal)]);
        assert_eq!(
            n[0].note,
            "ics-b became hot (epoch 2) from ics-a: takeover, loss detected after 510 ms"
        );
        // Without the agent's account, the previously known hot member is named.
        cur.last_became_hot = None;
        let n = transition_notices(Some(&prev), &cur);
        assert_eq!(n[0].note, "ics-b became hot (epoch 2) from ics-a: unknown");
    }

    #[test]
    fn hot_to_standby_crash_isolation_and_recovery() {
        let hs = report("HS", 2, Some("ics-b"), None);
        let sbs = report("SBS", 3, Some("ics-a"), None);
        let mut cs = report("CS", 3, Some("ics-a"), None);
        assert_eq!(
            reasons(&transition_notices(Some(&hs), &sbs)),
            vec![("BecameStandby", Severity::Normal)]
        );
        assert_eq!(
            reasons(&transition_notices(Some(&sbs), &cs)),
            vec![("Crashed", Severity::Warning)]
        );
        cs.net_check.ok = Some(false);
        assert_eq!(
            reasons(&transition_notices(Some(&sbs), &cs)),
            vec![("Isolated", Severity::Warning)]
        );
        assert_eq!(
            reasons(&transition_notices(Some(&cs), &sbs)),
            vec![("Recovered", Severity::Normal)]
        );
        let fs = report("FS", 0, None, None);
        assert_eq!(
            reasons(&transition_notices(None, &fs)),
            vec![("WrongConfiguration", Severity::Warning)]
        );
    }

    #[test]
    fn a_network_anomaly_and_its_recovery_are_reported_once() {
        let ok = report("SBS", 1, Some("ics-a"), None);
        let silent = report("SBS", 1, Some("ics-a"), Some("secondary"));
        let n = transition_notices(Some(&ok), &silent);
        assert_eq!(reasons(&n), vec![("NetworkAnomaly", Severity::Warning)]);
        assert!(
            n[0].note.contains("ics-a") && n[0].note.contains("secondary"),
            "{}",
            n[0].note
        );
        assert!(transition_notices(Some(&silent), &silent).is_empty());
        let n = transition_notices(Some(&silent), &ok);
        assert_eq!(reasons(&n), vec![("NetworkRecovered", Severity::Normal)]);
        // A member silent everywhere is lost, not an anomaly.
        let mut lost = silent.clone();
        lost.members[0].alive = false;
        assert!(transition_notices(Some(&ok), &lost).is_empty());
    }
}

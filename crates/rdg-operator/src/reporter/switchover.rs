//! When this member's agent should carry out a planned hand-over the controller asked for:
//! the group's `status.switchover` is Pending, this member is hot, and the target is another
//! member. Each request (target, time requested) is passed on once; the controller marks it
//! Done or Failed.

use crate::status::{RedundantGroupStatus, SwitchoverPhase};
use rdg_core::State;

/// Remembers which switchover requests were already passed to the agent.
#[derive(Debug, Default)]
pub struct SwitchoverTrigger {
    /// (target, requested) of the last request passed on.
    done: Option<(String, String)>,
}

impl SwitchoverTrigger {
    /// The member to hand over to, when `status` holds a pending request this member (`me`, in
    /// state `state`) should carry out and has not yet.
    pub fn check(
        &mut self,
        status: Option<&RedundantGroupStatus>,
        me: &str,
        state: Option<State>,
    ) -> Option<String> {
        let s = status?.switchover.as_ref()?;
        if s.phase != SwitchoverPhase::Pending || state != Some(State::HS) || s.to == me {
            return None;
        }
        let key = (s.to.clone(), s.requested.0.to_string());
        if self.done.as_ref() == Some(&key) {
            return None;
        }
        self.done = Some(key);
        Some(s.to.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::status::SwitchoverStatus;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;

    fn pending(to: &str, requested: &str, phase: SwitchoverPhase) -> RedundantGroupStatus {
        RedundantGroupStatus {
            switchover: Some(SwitchoverStatus {
                to: to.into(),
                phase,
                reason: "operator".into(),
                requested: Time(requested.parse().unwrap()),
                finished: None,
                generation: None,
                message: None,
            }),
            ..RedundantGroupStatus::default()
        }
    }

    #[test]
    fn the_hot_member_passes_a_pending_request_on_once() {
        let mut t = SwitchoverTrigger::default();
        let s = pending("ics-a", "2026-11-23T10:00:00Z", SwitchoverPhase::Pending);
        assert_eq!(
            t.check(Some(&s), "ics-b", Some(State::HS)),
            Some("ics-a".into())
        );
        assert_eq!(t.check(Some(&s), "ics-b", Some(State::HS)), None);
        let again = pending("ics-a", "2026-11-23T10:05:00Z", SwitchoverPhase::Pending);
        assert_eq!(
            t.check(Some(&again), "ics-b", Some(State::HS)),
            Some("ics-a".into())
        );
    }

    #[test]
    fn nothing_to_do_unless_pending_hot_and_for_another_member() {
        let mut t = SwitchoverTrigger::default();
        let s = pending("ics-a", "2026-11-23T10:00:00Z", SwitchoverPhase::Pending);
        assert_eq!(t.check(Some(&s), "ics-b", Some(State::SBS)), None);
        assert_eq!(t.check(Some(&s), "ics-b", None), None);
        assert_eq!(t.check(Some(&s), "ics-a", Some(State::HS)), None);
        assert_eq!(t.check(None, "ics-b", Some(State::HS)), None);
        for phase in [SwitchoverPhase::Done, SwitchoverPhase::Failed] {
            let s = pending("ics-a", "2026-11-23T10:00:00Z", phase);
            assert_eq!(t.check(Some(&s), "ics-b", Some(State::HS)), None);
        }
        // Not consumed by the refusals above.
        assert_eq!(
            t.check(Some(&s), "ics-b", Some(State::HS)),
            Some("ics-a".into())
        );
    }
}

//! Planned hand-overs: an operator's switchover and automatic preemption. The hot member
//! always releases (role file rewritten) before it acks, so the old and the new hot member
//! never overlap; the target takes over on the ack or on the old member's hand-over heartbeat.

use super::Node;
use crate::election::io::{Event, HotReason, Output, ReleaseReason};
use crate::election::params::MemberIndex;
use crate::wire::{Flags, Message, MessageType};
use crate::{State, TemporalState};
use std::time::Duration;

/// The member a hot member handed over to, while it waits for it to take over
/// (iHotOrSBSToSBS_WaitForHot); its heartbeats name that member with the hand-over flag.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(super) struct HandoverTo {
    /// The member that should become hot.
    pub member: MemberIndex,
    /// Asked for by an operator (priority 0 allowed), not by preemption.
    pub manual: bool,
}

/// The hot member a standby asked to hand over to it (iWaitingReadyHot), as the process it
/// was then: once it is lost, restarted or isolated there is nothing left to wait for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(super) struct HandoverFrom {
    /// The hot member asked.
    pub member: MemberIndex,
    /// Its incarnation when asked.
    pub incarnation: u64,
}

impl Node {
    pub(super) fn on_switchover_command(
        &mut self,
        now: Duration,
        target: String,
        out: &mut Vec<Output>,
    ) {
        if self.state == State::HS {
            let request = self.message(MessageType::SwitchoverRequest, 0, &target, Flags::MANUAL);
            self.on_switchover_request(now, &request, out);
            return;
        }
        if self.p.index_of(&target).is_none() {
            out.push(Output::Event(Event::SwitchoverRejected {
                target,
                reason: "no such member".into(),
            }));
            return;
        }
        if target == self.p.my_name() && self.state == State::SBS {
            self.become_target(now, true, out);
            if self.state == State::HS {
                return;
            }
        }
        out.push(Output::Event(Event::SwitchoverStarted {
            target: target.clone(),
        }));
        self.broadcast(MessageType::SwitchoverRequest, &target, Flags::MANUAL, out);
    }

    /// This standby is named as a switchover's target: with an operator's command and nobody
    /// holding the role, it takes the role at once (nothing has to be released first);
    /// otherwise it waits for the hot member's release (iWaitingReadyHot).
    fn become_target(&mut self, now: Duration, manual: bool, out: &mut Vec<Output>) {
        if manual && self.hot_peer(now).is_none() && self.eligible(true) {
            self.become_hot(now, HotReason::Handover, out);
            return;
        }
        self.ready_from = self.hot_peer(now).map(|h| self.handover_from(h));
        self.set_state(
            State::SBS,
            TemporalState::WaitingReadyHot,
            Some(now + self.p.waiting_ready_hot),
            out,
        );
    }

    /// While waiting for a hand-over (iWaitingReadyHot) with no hot member in sight: whether
    /// the member asked may still hand over — it is alive, the same process, and a standby
    /// (it released and its ack is on the way). Not when it died, restarted or went CS: then
    /// this member decides at once instead of waiting out `timeouts.waitingReadyHot`.
    pub(super) fn hand_over_pending(&self, now: Duration) -> bool {
        let Some(from) = self.ready_from else {
            return true;
        };
        let peer = &self.peers[from.member];
        !peer.left
            && peer.incarnation == from.incarnation
            && peer.state == State::SBS
            && self.alive(from.member, now)
    }

    fn handover_from(&self, member: MemberIndex) -> HandoverFrom {
        HandoverFrom {
            member,
            incarnation: self.peers[member].incarnation,
        }
    }

    pub(super) fn on_switchover_request(
        &mut self,
        now: Duration,
        m: &Message,
        out: &mut Vec<Output>,
    ) {
        let manual = m.flags.contains(Flags::MANUAL);
        if self.state != State::HS {
            if m.hot == self.p.my_name() && self.state == State::SBS {
                self.become_target(now, manual, out);
            }
            return;
        }
        match self.check_target(now, &m.hot, manual) {
            Ok(t) => {
                self.handover = Some(HandoverTo { member: t, manual });
                self.release(
                    ReleaseReason::Handover {
                        target: m.hot.clone(),
                    },
                    State::SBS,
                    TemporalState::HotOrSbsToSbsWaitForHot,
                    Some(now + self.p.to_standby_wait_for_hot),
                    out,
                );
                out.push(Output::Event(Event::SwitchoverStarted {
                    target: m.hot.clone(),
                }));
                let flags = Flags::ACCEPTED.with(Flags::MANUAL, manual);
                self.broadcast(MessageType::SwitchoverAck, &m.hot, flags, out);
            }
            Err(reason) => {
                out.push(Output::Event(Event::SwitchoverRejected {
                    target: m.hot.clone(),
                    reason,
                }));
                self.broadcast(MessageType::SwitchoverAck, &m.hot, Flags::default(), out);
            }
        }
    }

    pub(super) fn check_target(
        &self,
        now: Duration,
        target: &str,
        manual: bool,
    ) -> Result<MemberIndex, String> {
        let t = self
            .p
            .index_of(target)
            .ok_or_else(|| format!("no member named {target:?}"))?;
        if t == self.p.me {
            return Err("already hot".into());
        }
        let peer = &self.peers[t];
        if !peer.alive(self.p.networks, now, self.p.timeout) {
            return Err("target is not heard".into());
        }
        if peer.state != State::SBS {
            return Err(format!("target is {}, not SBS", peer.state));
        }
        if !peer.net_ok() {
            return Err("target's net check does not pass".into());
        }
        if !manual {
            if !self.p.preempt {
                return Err("preemption is disabled".into());
            }
            let (tp, mp) = (self.p.priorities[t], self.p.priorities[self.p.me]);
            if tp == 0 || tp <= mp {
                return Err(format!("target priority {tp} does not exceed {mp}"));
            }
        }
        Ok(t)
    }

    /// The hot member released the role to a named member (ack, or a hand-over heartbeat).
    pub(super) fn on_handover_notice(&mut self, now: Duration, m: &Message, out: &mut Vec<Output>) {
        if m.epoch < self.epoch || !matches!(self.state, State::SBS | State::SS) {
            return; // stale: a newer term exists already
        }
        let manual = m.flags.contains(Flags::MANUAL);
        if m.hot == self.p.my_name() {
            if self.eligible(manual) {
                self.become_hot(now, HotReason::Handover, out);
            } else if self.temporal == TemporalState::WaitingReadyHot {
                self.set_state(State::SBS, TemporalState::None, None, out);
                out.push(Output::Event(Event::SwitchoverRejected {
                    target: m.hot.clone(),
                    reason: "this member is not eligible (net check)".into(),
                }));
            }
        } else if let Some(t) = self.p.index_of(&m.hot) {
            if self.awaiting != [t] {
                self.awaiting = vec![t];
                self.passed_over.clear();
                self.temporal_wait_hot(now);
            }
        }
    }

    pub(super) fn consider_preempt(
        &mut self,
        now: Duration,
        h: MemberIndex,
        out: &mut Vec<Output>,
    ) {
        let me = self.p.me;
        let better = self.p.priorities[me] > self.p.priorities[h];
        if !self.p.preempt
            || self.state != State::SBS
            || self.temporal != TemporalState::None
            || !self.eligible(false)
            || !better
        {
            self.preempt_since = None;
            return;
        }
        let since = *self.preempt_since.get_or_insert(now);
        if now >= since + self.p.preempt_delay {
            self.preempt_since = None;
            self.ready_from = Some(self.handover_from(h));
            self.set_state(
                State::SBS,
                TemporalState::WaitingReadyHot,
                Some(now + self.p.waiting_ready_hot),
                out,
            );
            let target = self.p.my_name().to_string();
            self.broadcast(
                MessageType::SwitchoverRequest,
                &target,
                Flags::default(),
                out,
            );
        }
    }
}

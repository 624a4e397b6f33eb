//! The rules, re-derived after every input from what the member knows: who is hot, whether
//! the hot member is lost, who is the best eligible candidate, and which bounded wait applies.

use super::{Fault, Node};
use crate::election::ANOMALY_HOLD_DOWN_WINDOW;
use crate::election::io::{Event, HotReason, Output, ReleaseReason};
use crate::election::params::MemberIndex;
use crate::election::peers::MAX_NETWORKS;
use crate::{State, TemporalState};
use std::cmp::Reverse;
use std::time::Duration;

impl Node {
    pub(super) fn evaluate(&mut self, now: Duration, out: &mut Vec<Output>) {
        self.update_links(now, out);
        self.note_hot_lost(now, out);
        if self.state == State::HS {
            self.evaluate_hot(now, out);
        }
        if matches!(self.state, State::SS | State::SBS) {
            self.evaluate_standby(now, out);
        }
        self.track_known_hot(now, out);
    }

    pub(super) fn rank(&self, i: MemberIndex) -> (u64, u16, Reverse<&str>) {
        let epoch = if i == self.p.me {
            self.hot_epoch
        } else {
            self.peers[i].epoch
        };
        (
            epoch,
            self.p.priorities[i],
            Reverse(self.p.names[i].as_str()),
        )
    }

    /// Member `i` is alive: heard within the timeout on any network, or — when it is the hot
    /// member — heard by another member within the timeout (see `Node::take_hearsay`): with
    /// 20 % loss both networks drop three heartbeats in a row a few times an hour per
    /// standby, and a takeover from a live hot member would follow.
    pub(super) fn alive(&self, i: MemberIndex, now: Duration) -> bool {
        let peer = &self.peers[i];
        if self.faulty(Fault::SingleNetworkLiveness) {
            return peer.alive_on(0, now, self.p.timeout);
        }
        peer.alive(self.p.networks, now, self.p.timeout)
            || (peer.state == State::HS && peer.vouched_for(now, self.p.timeout))
    }

    /// The best-ranked other member that is alive and hot.
    pub(super) fn hot_peer(&self, now: Duration) -> Option<MemberIndex> {
        (0..self.peers.len())
            .filter(|&i| i != self.p.me && self.peers[i].state == State::HS && self.alive(i, now))
            .max_by(|&a, &b| self.rank(a).cmp(&self.rank(b)))
    }

    pub(super) fn net_ok(&self) -> bool {
        !self.p.net_check || self.net_last == Some(true) || self.faulty(Fault::IgnoreNetCheck)
    }

    /// Whether this member may become hot now (`manual`: by an operator's command).
    pub(super) fn eligible(&self, manual: bool) -> bool {
        let priority_ok =
            self.p.priorities[self.p.me] > 0 || manual || self.faulty(Fault::PromotePriorityZero);
        priority_ok && self.net_ok() && matches!(self.state, State::SS | State::SBS)
    }

    pub(super) fn peer_candidate(
        &self,
        i: MemberIndex,
        now: Duration,
        include_starting: bool,
    ) -> bool {
        let peer = &self.peers[i];
        let ready = match peer.state {
            State::SBS => true,
            State::SS => include_starting || peer.temporal != TemporalState::Election,
            _ => false,
        };
        ready
            && (self.p.priorities[i] > 0 || self.faulty(Fault::PromotePriorityZero))
            && peer.net_ok()
            && self.alive(i, now)
            && !self.passed_over.contains(&i)
    }

    pub(super) fn evaluate_hot(&mut self, now: Duration, out: &mut Vec<Output>) {
        if let Some(j) = self.hot_peer(now) {
            if self.rank(j) > self.rank(self.p.me) && !self.faulty(Fault::NoConflictResolution) {
                self.stepped_down_at = now;
                self.release(
                    ReleaseReason::Conflict {
                        winner: self.p.names[j].clone(),
                    },
                    State::SBS,
                    TemporalState::HotOrSbsToSbsWaitAnsConn,
                    Some(now + self.p.to_standby_wait_ans_conn),
                    out,
                );
                return;
            }
        }
        if self.temporal == TemporalState::StartingKernelToHot
            && self.deadline.is_some_and(|d| now >= d)
        {
            self.set_state(State::HS, TemporalState::None, None, out);
        }
    }

    pub(super) fn evaluate_standby(&mut self, now: Duration, out: &mut Vec<Output>) {
        let expired = self.deadline.is_some_and(|d| now >= d);
        if let Some(h) = self.hot_peer(now) {
            self.passed_over.clear();
            self.awaiting.clear();
            match (self.state, self.temporal) {
                (State::SS, temporal) => {
                    // Confirm the hot member on every network before declaring standby;
                    // iStartingKernelToSBS bounds how long that may take.
                    let everywhere = (0..self.p.networks)
                        .all(|n| self.peers[h].alive_on(n, now, self.p.timeout));
                    let electing = temporal == TemporalState::Election;
                    if everywhere || (expired && !electing) {
                        self.set_state(State::SBS, TemporalState::None, None, out);
                    } else if electing {
                        self.set_state(
                            State::SS,
                            TemporalState::StartingKernelToSbs,
                            Some(now + self.p.starting_to_standby),
                            out,
                        );
                    }
                }
                (State::SBS, TemporalState::WaitingReadyHot) if expired => {
                    self.set_state(State::SBS, TemporalState::None, None, out);
                    out.push(Output::Event(Event::SwitchoverRejected {
                        target: self.p.my_name().to_string(),
                        reason: "the hot member did not hand over in time".into(),
                    }));
                }
                (State::SBS, TemporalState::None | TemporalState::WaitingReadyHot) => {}
                (State::SBS, _) => {
                    self.handover = None;
                    self.set_state(State::SBS, TemporalState::None, None, out);
                }
                _ => {}
            }
            self.consider_preempt(now, h, out);
            return;
        }
        self.preempt_since = None;
        match self.temporal {
            TemporalState::Election if !expired => return,
            TemporalState::WaitingReadyHot if !expired && self.hand_over_pending(now) => return,
            TemporalState::HotOrSbsToSbsWaitForHot => {
                if let Some(to) = self.handover {
                    if !expired && self.alive(to.member, now) {
                        return;
                    }
                    self.passed_over.push(to.member);
                    self.handover = None;
                }
            }
            TemporalState::HotOrSbsToSbsWaitAnsConn if !expired => {
                // Wait until every member still believed alive has been heard since we
                // stepped down, so the decision is made on fresh information.
                let since = self.stepped_down_at;
                let stale = (0..self.peers.len()).any(|i| {
                    i != self.p.me
                        && self.alive(i, now)
                        && self.peers[i].last_heard().is_none_or(|t| t <= since)
                });
                if stale {
                    return;
                }
            }
            TemporalState::WaitingHot => {
                let waiting = self
                    .awaiting
                    .iter()
                    .any(|&a| a == self.p.me || self.peer_candidate(a, now, true));
                if !expired && waiting {
                    if self.awaiting.contains(&self.p.me) && self.eligible(false) {
                        self.become_hot(now, HotReason::Takeover, out);
                    }
                    return;
                }
                let awaited = std::mem::take(&mut self.awaiting);
                self.passed_over
                    .extend(awaited.into_iter().filter(|&a| a != self.p.me));
            }
            _ => {}
        }
        self.decide(now, out);
    }

    /// No hot member is known: the best eligible candidate takes the role, the others wait.
    pub(super) fn decide(&mut self, now: Duration, out: &mut Vec<Output>) {
        let electing = self.state == State::SS && self.temporal == TemporalState::Election;
        let me = self.p.me;
        let mut candidates: Vec<MemberIndex> = (0..self.peers.len())
            .filter(|&i| i != me && self.peer_candidate(i, now, electing))
            .collect();
        if self.eligible(false) {
            candidates.push(me);
        }
        let key = |i: &MemberIndex| (self.p.priorities[*i], Reverse(self.p.names[*i].as_str()));
        let best = candidates.iter().copied().max_by_key(key);
        match best {
            Some(b) if b == me && !electing && self.unheard_since_eligible(now) => {
                // Wait for the next datagram: it may say another member is hot already.
            }
            Some(b) if b == me => {
                let reason = if electing {
                    HotReason::Election
                } else {
                    HotReason::Takeover
                };
                self.become_hot(now, reason, out);
            }
            Some(_) => {
                let mine = (self.p.priorities[me], Reverse(self.p.names[me].as_str()));
                self.awaiting = candidates.into_iter().filter(|i| key(i) > mine).collect();
                self.temporal_wait_hot(now);
                if self.state == State::SS {
                    self.set_state(State::SBS, TemporalState::WaitingHot, self.deadline, out);
                }
            }
            None => {
                if self.state == State::SS || self.temporal != TemporalState::None {
                    self.set_state(State::SBS, TemporalState::None, None, out);
                }
            }
        }
    }

    /// Some live member has not been heard since this member's net check last turned to
    /// passing. While this member was not eligible, a lower-ranked standby may have taken
    /// over, its announcement still on its way; acting now would make a second hot member.
    fn unheard_since_eligible(&self, now: Duration) -> bool {
        let Some(since) = self.net_ok_since else {
            return false;
        };
        (0..self.peers.len()).any(|i| {
            i != self.p.me
                && self.alive(i, now)
                && self.peers[i].last_heard().is_none_or(|t| t <= since)
        })
    }

    pub(super) fn temporal_wait_hot(&mut self, now: Duration) {
        if self.temporal != TemporalState::WaitingHot {
            self.temporal = TemporalState::WaitingHot;
            self.deadline = Some(now + self.p.waiting_hot);
            self.announce = true;
        }
    }

    /// Joined/lost members and per-network anomalies, from the silence clocks.
    pub(super) fn update_links(&mut self, now: Duration, out: &mut Vec<Output>) {
        let (timeout, interval, networks) = (self.p.timeout, self.p.interval, self.p.networks);
        let hold_down = self.p.anomaly_hold_down();
        for i in 0..self.peers.len() {
            if i == self.p.me {
                continue;
            }
            let alive = self.alive(i, now);
            let name = &self.p.names[i];
            let peer = &mut self.peers[i];
            if alive != peer.alive_reported {
                peer.alive_reported = alive;
                peer.anomaly = [false; MAX_NETWORKS];
                let member = name.clone();
                out.push(Output::Event(if alive {
                    Event::MemberJoined { member }
                } else {
                    Event::MemberLost { member }
                }));
            }
            if !alive || networks < 2 {
                continue;
            }
            for n in 0..networks {
                let Some(since) = peer.silent_since(n) else {
                    continue;
                };
                // A network whose last anomaly ended recently must stay silent longer before
                // it is reported again (hold-down), so a lossy network is not reported at
                // every third lost heartbeat.
                let recurring = peer.anomaly_ended[n]
                    .is_some_and(|ended| now < ended + ANOMALY_HOLD_DOWN_WINDOW);
                let silent = now >= since + if recurring { hold_down } else { timeout };
                // Heard on another network at least half an interval after the last word on
                // this one: the member is sending, this network is not carrying it. (A dead
                // host falls silent on all networks at once and never matches this.)
                let newer_elsewhere = (0..networks).any(|o| {
                    o != n
                        && peer.alive_on(o, now, timeout)
                        && peer.heard[o].is_some_and(|t| t > since + interval / 2)
                });
                if silent && newer_elsewhere && !peer.anomaly[n] {
                    peer.anomaly[n] = true;
                    out.push(Output::Event(Event::NetworkAnomaly {
                        member: name.clone(),
                        network: n as u8,
                    }));
                }
            }
        }
    }

    /// Reports the loss of the hot member before anything is decided about it.
    pub(super) fn note_hot_lost(&mut self, now: Duration, out: &mut Vec<Output>) {
        let Some(old) = self.known_hot.filter(|&o| o != self.p.me) else {
            return;
        };
        let peer = &self.peers[old];
        if peer.left || !self.alive(old, now) {
            out.push(Output::Event(Event::HotLost {
                member: self.p.names[old].clone(),
                silent_for: peer
                    .last_heard()
                    .map_or(Duration::ZERO, |t| now.saturating_sub(t)),
                left: peer.left,
            }));
            self.known_hot = None;
            self.lost_hot = Some(old);
        }
    }

    pub(super) fn track_known_hot(&mut self, now: Duration, out: &mut Vec<Output>) {
        let current = if self.state == State::HS {
            Some(self.p.me)
        } else {
            self.hot_peer(now)
        };
        if current == self.known_hot {
            return;
        }
        if let Some(h) = current {
            let address = if h == self.p.me {
                None
            } else {
                self.peers[h].addr.iter().flatten().next().copied()
            };
            out.push(Output::Event(Event::PrimaryCoordinator {
                member: self.p.names[h].clone(),
                address,
            }));
        }
        self.known_hot = current;
    }
}

//! The state machine of one member. Level-triggered: every input updates what the member
//! knows, then [`Node::evaluate`] re-derives what it should be from that knowledge, so a lost
//! or reordered datagram can delay a decision but never leave the member in a wrong state.

use super::io::{Destination, Event, HotReason, Input, Output, ReleaseReason};
use super::params::{MemberIndex, Params};
use super::peers::{MAX_NETWORKS, Peer};

mod content;
mod evaluate;
mod switchover;
use crate::wire::{Flags, Message, MessageType};
use crate::{State, TemporalState};
use std::cmp::Reverse;
use std::net::SocketAddr;
use std::time::Duration;
use switchover::{HandoverFrom, HandoverTo};

/// A rule the simulator's tests may break on purpose, to prove the invariants catch it.
#[cfg(feature = "fault-injection")]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Fault {
    /// Judge the hot member by the first network only (takes over on a single-network cut).
    SingleNetworkLiveness,
    /// Never go to CS and take over even when the net check fails.
    IgnoreNetCheck,
    /// Treat priority 0 like any other priority.
    PromotePriorityZero,
    /// Never step down when another hot member ranks higher.
    NoConflictResolution,
}

/// One member of a redundant group, driven by `handle(now, input)`; `now` is a monotonic time
/// chosen by the caller (real or virtual), never read from a clock here.
///
/// `Hash` lets the model checker ([`crate::check`]) recognise a state it has seen already.
#[derive(Debug, Clone, Hash)]
pub struct Node {
    p: Params,
    incarnation: u64,
    seq: u64,
    state: State,
    temporal: TemporalState,
    /// End of the current temporal state.
    deadline: Option<Duration>,
    /// Highest epoch known in the group.
    epoch: u64,
    /// Epoch of this member's current hot term.
    hot_epoch: u64,
    peers: Vec<Peer>,
    next_heartbeat: Duration,
    net_failures: u32,
    net_last: Option<bool>,
    /// When the net check last turned to passing. A standby that has just become eligible
    /// again takes over only once it has heard every live member since: another standby may
    /// have taken over while this one was not eligible.
    net_ok_since: Option<Duration>,
    lease_until: Option<Duration>,
    /// The (state, epoch) of the last role output: a standby that learns a new epoch without
    /// changing state emits the role again, so the role file shows who took over.
    role_out: Option<(State, u64)>,
    last_now: Option<Duration>,
    /// The hot member this member believes in (itself included), for change events.
    known_hot: Option<MemberIndex>,
    /// The last hot member that was lost or left (named as `previous` by the next takeover).
    lost_hot: Option<MemberIndex>,
    /// Better candidates this standby waits for (iWaitingHot).
    awaiting: Vec<MemberIndex>,
    /// Candidates that had their chance and did not become hot; skipped until a hot member shows.
    passed_over: Vec<MemberIndex>,
    /// The member this one handed over to (iHotOrSBSToSBS_WaitForHot).
    handover: Option<HandoverTo>,
    /// The hot member asked to hand over to this one (iWaitingReadyHot).
    ready_from: Option<HandoverFrom>,
    /// When this member stepped down into iHotOrSBSToSBS_WaitAnsConn.
    stepped_down_at: Duration,
    preempt_since: Option<Duration>,
    announce: bool,
    content: content::ContentState,
    started: bool,
    stopped: bool,
    #[cfg(feature = "fault-injection")]
    fault: Option<Fault>,
}

impl Node {
    /// A member that has just started (SS, iElection), or is hot at once in standalone mode.
    /// `incarnation` must differ between starts of the same member (random is fine).
    pub fn new(p: Params, incarnation: u64, now: Duration) -> Node {
        let standalone = p.group.is_empty();
        let peers = vec![Peer::default(); p.names.len()];
        let (state, temporal, deadline) = if standalone {
            (State::HS, TemporalState::None, None)
        } else {
            (State::SS, TemporalState::Election, Some(now + p.election))
        };
        Node {
            incarnation,
            seq: 0,
            state,
            temporal,
            deadline,
            epoch: u64::from(standalone),
            hot_epoch: u64::from(standalone),
            peers,
            next_heartbeat: now,
            net_failures: 0,
            net_last: None,
            net_ok_since: None,
            lease_until: None,
            role_out: None,
            last_now: None,
            known_hot: None,
            lost_hot: None,
            awaiting: Vec::new(),
            passed_over: Vec::new(),
            handover: None,
            ready_from: None,
            stepped_down_at: now,
            preempt_since: None,
            announce: false,
            content: content::ContentState::default(),
            started: false,
            stopped: false,
            #[cfg(feature = "fault-injection")]
            fault: None,
            p,
        }
    }

    /// Breaks one rule on purpose (simulator self-test only).
    #[cfg(feature = "fault-injection")]
    pub fn inject_fault(&mut self, fault: Fault) {
        self.fault = Some(fault);
    }

    #[cfg(feature = "fault-injection")]
    fn faulty(&self, f: Fault) -> bool {
        self.fault == Some(f)
    }

    #[cfg(not(feature = "fault-injection"))]
    fn faulty(&self, _: Fault) -> bool {
        false
    }

    /// The parameters this member runs with.
    pub fn params(&self) -> &Params {
        &self.p
    }

    /// Current state.
    pub fn state(&self) -> State {
        self.state
    }

    /// Current temporal state.
    pub fn temporal(&self) -> TemporalState {
        self.temporal
    }

    /// Highest epoch known (this member's own term when hot).
    pub fn epoch(&self) -> u64 {
        if self.state == State::HS {
            self.hot_epoch
        } else {
            self.epoch
        }
    }

    /// End of the current lease (hot only).
    pub fn lease_until(&self) -> Option<Duration> {
        self.lease_until
    }

    /// The hot member this member currently believes in, by name.
    pub fn hot(&self) -> Option<&str> {
        self.known_hot.map(|i| self.p.names[i].as_str())
    }

    /// The last net-check result (None before the first round or without targets).
    pub fn net_check(&self) -> Option<bool> {
        self.net_last
    }

    /// Whether the net check should run at its urgent pace: another member has been silent on
    /// a network for more than an interval and a half, and not yet for three timeouts. A
    /// takeover may be coming (it needs a verdict from after the silence began), or this member
    /// may be the one cut off (it must fail two rounds soon); otherwise rounds can be sparse.
    pub fn net_check_urgent(&self, now: Duration) -> bool {
        let (from, until) = self.urgent_window();
        self.peers
            .iter()
            .enumerate()
            .filter(|&(i, peer)| i != self.p.me && !peer.left)
            .flat_map(|(_, peer)| (0..self.p.networks).filter_map(|n| peer.silent_since(n)))
            .any(|t| now >= t + from && now < t + until)
    }

    /// How long after a member's silence on a network began the net check is urgent.
    fn urgent_window(&self) -> (Duration, Duration) {
        (self.p.interval * 3 / 2, self.p.timeout * 3)
    }

    /// What this member knows about member `name` (None for itself or unknown names).
    pub fn peer(&self, name: &str) -> Option<&Peer> {
        self.p
            .index_of(name)
            .filter(|&i| i != self.p.me)
            .map(|i| &self.peers[i])
    }

    /// True once a graceful shutdown has completed.
    pub fn is_stopped(&self) -> bool {
        self.stopped
    }

    /// The earliest time at which [`Node::handle`] should be called with [`Input::Tick`]
    /// (None after shutdown). Only future times are returned.
    pub fn next_deadline(&self) -> Option<Duration> {
        if self.stopped {
            return None;
        }
        let after = self.last_now;
        let future = |t: Duration| after.is_none_or(|n| t > n);
        let mut best = self.next_heartbeat;
        let mut consider = |t: Duration| {
            if future(t) && t < best {
                best = t;
            }
        };
        if let Some(d) = self.deadline {
            consider(d);
        }
        if let Some(s) = self.preempt_since {
            consider(s + self.p.preempt_delay);
        }
        if let Some(l) = self.lease_until {
            consider(l);
        }
        for (i, peer) in self.peers.iter().enumerate() {
            if i == self.p.me || peer.left {
                continue;
            }
            for n in 0..self.p.networks {
                if let Some(t) = peer.silent_since(n) {
                    consider(t + self.p.timeout);
                    // The net check turns urgent then (see `net_check_urgent`).
                    consider(t + self.urgent_window().0);
                }
            }
            // A hot member another member vouched for stays alive until that word is a
            // timeout old; without waking then, a dead hot member's loss waited for the next
            // datagram or heartbeat, up to an interval late.
            if peer.state == State::HS
                && let Some(t) = peer.hearsay
            {
                consider(t + self.p.timeout);
            }
        }
        Some(best)
    }

    /// Feeds one observation at time `now` and returns the effects to carry out, in order.
    pub fn handle(&mut self, now: Duration, input: Input) -> Vec<Output> {
        let mut out = Vec::new();
        if self.stopped {
            return out;
        }
        if !self.started {
            self.started = true;
            let standalone_hot = self.state == State::HS;
            self.emit_role(standalone_hot.then_some(HotReason::Standalone), &mut out);
            if standalone_hot {
                self.lease_until = Some(now + self.p.lease());
                out.push(Output::Event(Event::BecameHot {
                    epoch: self.hot_epoch,
                    reason: HotReason::Standalone,
                    previous: None,
                }));
                self.known_hot = Some(self.p.me);
            }
        }
        self.observe_clock(now, &mut out);
        let standalone = self.p.group.is_empty();
        match input {
            Input::Tick => {}
            Input::Received { .. } | Input::NetCheck { .. } | Input::Switchover { .. }
                if standalone => {}
            Input::Received {
                network,
                from,
                message,
            } => self.on_message(now, network, from, message, &mut out),
            Input::NetCheck { ok } => self.on_net_check(now, ok, &mut out),
            Input::Switchover { target } => self.on_switchover_command(now, target, &mut out),
            Input::Content(manifest) => self.on_content_changed(manifest),
            Input::Shutdown => {
                self.shutdown(now, &mut out);
                return out;
            }
        }
        if !standalone {
            self.evaluate(now, &mut out);
        }
        self.heartbeat(now, &mut out);
        if self.state != State::HS && self.role_out != Some((self.state, self.epoch())) {
            self.emit_role(None, &mut out);
        }
        out
    }

    // ----- time -----------------------------------------------------------------------------

    fn observe_clock(&mut self, now: Duration, out: &mut Vec<Output>) {
        if let Some(last) = self.last_now {
            if now > last + self.p.lease() {
                out.push(Output::Event(Event::ClockGap { gap: now - last }));
                // Nothing heard during the gap is trustworthy (a runtime drops what queued up
                // meanwhile): every member alive before it gets a whole timeout of fresh
                // silence before it counts as lost. One interval was not enough: the next
                // heartbeat can be a full interval away, plus jitter, and a resumed member
                // then took the role from the standby that had rightly replaced it.
                for peer in &mut self.peers {
                    peer.extend_after_gap(last, now, self.p.timeout, self.p.timeout);
                }
            }
            if now < last {
                // Time never goes back for the state machine; treat as no time passing.
                return;
            }
        }
        self.last_now = Some(now);
        if self.state == State::HS
            && !self.p.group.is_empty()
            && self.lease_until.is_some_and(|l| now >= l)
        {
            // Self-fencing: the lease ran out before it could be renewed, so the gate has
            // already stopped the transmitter and a standby may be taking over.
            self.stepped_down_at = now;
            self.release(
                ReleaseReason::LeaseExpired,
                State::SBS,
                TemporalState::HotOrSbsToSbsWaitAnsConn,
                Some(now + self.p.to_standby_wait_ans_conn),
                out,
            );
        }
    }

    fn heartbeat(&mut self, now: Duration, out: &mut Vec<Output>) {
        if now < self.next_heartbeat && !self.announce {
            return;
        }
        self.announce = false;
        // Keep the period: the next beat is due one interval after this one was *due*, not
        // after the (always slightly late) moment it went out, or the rate drifts below
        // 1/interval (47.5 instead of 50 per second at 20 ms). An early beat (an announcement)
        // or one late by more than an interval restarts the schedule from now.
        let due = self.next_heartbeat;
        self.next_heartbeat = if now >= due && now < due + self.p.interval {
            due + self.p.interval
        } else {
            now + self.p.interval
        };
        if self.state == State::HS {
            self.lease_until = Some(now + self.p.lease());
            self.emit_role(None, out);
        }
        let (hot, flags) = match (self.temporal, self.handover) {
            (TemporalState::HotOrSbsToSbsWaitForHot, Some(to)) => (
                self.p.names[to.member].clone(),
                Flags::HANDOVER.with(Flags::MANUAL, to.manual),
            ),
            _ => (self.hot().unwrap_or_default().to_string(), Flags::default()),
        };
        let first = out.len();
        self.broadcast(MessageType::Heartbeat, &hot, flags, out);
        // Vouch for the hot member we hear ourselves (never for hearsay: a dead member must
        // not be kept alive by members repeating each other).
        let heard_ago = self
            .known_hot
            .filter(|&h| h != self.p.me && self.p.names[h] == hot)
            .and_then(|h| self.peers[h].heard_direct)
            .map(|t| now.saturating_sub(t));
        for o in &mut out[first..] {
            if let Output::Send { message, .. } = o {
                message.hot_heard_ago = heard_ago;
            }
        }
        self.maybe_advertise(out);
    }

    // ----- messages -------------------------------------------------------------------------

    fn message(&mut self, kind: MessageType, network: u8, hot: &str, flags: Flags) -> Message {
        self.seq += 1;
        let net_ok = self.net_ok() && matches!(self.state, State::HS | State::SBS | State::SS);
        Message {
            kind,
            group: self.p.group.clone(),
            member: self.p.my_name().to_string(),
            state: self.state,
            temporal: self.temporal,
            priority: self.p.priorities[self.p.me],
            epoch: self.epoch(),
            incarnation: self.incarnation,
            sequence: self.seq,
            network,
            flags: flags.with(Flags::NET_CHECK_OK, net_ok),
            hot: hot.to_string(),
            hot_heard_ago: None,
            content: None,
        }
    }

    fn broadcast(&mut self, kind: MessageType, hot: &str, flags: Flags, out: &mut Vec<Output>) {
        for n in 0..self.p.networks {
            let network = n as u8;
            let message = self.message(kind, network, hot, flags);
            out.push(Output::Send {
                network,
                to: Destination::Group,
                message,
            });
        }
    }

    fn on_message(
        &mut self,
        now: Duration,
        network: u8,
        from: SocketAddr,
        m: Message,
        out: &mut Vec<Output>,
    ) {
        let n = usize::from(network);
        if n >= self.p.networks || n >= MAX_NETWORKS || m.network != network {
            out.push(ignored("wrong_network"));
            return;
        }
        if m.group != self.p.group {
            out.push(ignored("wrong_group"));
            return;
        }
        match m.kind {
            MessageType::StatusQuery => {
                let reply = self.message(MessageType::StatusReply, network, "", Flags::default());
                let reply = Message {
                    hot: self.hot().unwrap_or_default().to_string(),
                    ..reply
                };
                out.push(Output::Send {
                    network,
                    to: Destination::To(from),
                    message: reply,
                });
                self.answer_content_query(network, from, out);
                return;
            }
            MessageType::StatusReply => {
                out.push(ignored("status_reply"));
                return;
            }
            _ => {}
        }
        let Some(i) = self.p.index_of(&m.member) else {
            if m.kind == MessageType::SwitchoverRequest && m.flags.contains(Flags::MANUAL) {
                // An operator's tool, not a member.
                self.on_switchover_request(now, &m, out);
            } else {
                out.push(ignored("unknown_member"));
            }
            return;
        };
        if i == self.p.me {
            out.push(Output::Event(Event::DuplicateMember { from }));
            return;
        }
        if m.kind == MessageType::Content {
            // The carousel only: no liveness, epoch or state is taken from it.
            self.on_content(&m, out);
            return;
        }
        self.epoch = self.epoch.max(m.epoch);
        // A heartbeat older than one already heard on another network carries a stale state:
        // it counts for liveness only. Commands (leaving, switchover) are one-shot and are
        // acted on even when a later heartbeat overtook them.
        if m.kind == MessageType::Heartbeat {
            self.take_hearsay(now, i, &m);
        }
        if !self.record(now, n, from, i, &m, out) && m.kind == MessageType::Heartbeat {
            out.push(ignored("stale"));
            return;
        }
        match m.kind {
            MessageType::Leaving => self.on_leaving(now, i, &m),
            MessageType::Heartbeat => {
                if m.flags.contains(Flags::HANDOVER) {
                    self.on_handover_notice(now, &m, out);
                }
            }
            MessageType::SwitchoverRequest => {
                self.on_switchover_request(now, &m, out);
            }
            MessageType::SwitchoverAck => {
                if m.flags.contains(Flags::ACCEPTED) {
                    self.on_handover_notice(now, &m, out);
                } else if m.hot == self.p.my_name()
                    && self.temporal == TemporalState::WaitingReadyHot
                {
                    self.set_state(State::SBS, TemporalState::None, None, out);
                    out.push(Output::Event(Event::SwitchoverRejected {
                        target: m.hot.clone(),
                        reason: format!("{} refused the hand-over", m.member),
                    }));
                }
            }
            MessageType::StatusQuery | MessageType::StatusReply | MessageType::Content => {}
        }
    }

    fn record(
        &mut self,
        now: Duration,
        n: usize,
        from: SocketAddr,
        i: MemberIndex,
        m: &Message,
        out: &mut Vec<Output>,
    ) -> bool {
        let peer = &mut self.peers[i];
        let fresh = peer.record(now, n, from, m);
        if peer.anomaly[n] {
            peer.anomaly[n] = false;
            peer.anomaly_ended[n] = Some(now);
            out.push(Output::Event(Event::NetworkRecovered {
                member: m.member.clone(),
                network: n as u8,
            }));
        }
        fresh
    }

    /// Notes that member `i` heard the hot member it names `m.hot_heard_ago` ago: evidence
    /// that member is alive even when its own heartbeats to us were lost. The evidence is
    /// never fresher than the truth (the age is rounded down and counted from our receive
    /// time), so a standby still declares a dead member lost no earlier than its lease ends.
    fn take_hearsay(&mut self, now: Duration, i: MemberIndex, m: &Message) {
        let (Some(ago), Some(h)) = (m.hot_heard_ago, self.p.index_of(&m.hot)) else {
            return;
        };
        if h == self.p.me || h == i {
            return;
        }
        let at = now.saturating_sub(ago);
        let peer = &mut self.peers[h];
        if peer.hearsay.is_none_or(|t| t < at) {
            peer.hearsay = Some(at);
        }
    }

    fn on_leaving(&mut self, now: Duration, i: MemberIndex, m: &Message) {
        self.peers[i].left = true;
        if m.hot.is_empty() || m.state != State::SBS || self.known_hot != Some(i) {
            return;
        }
        // The hot member left and named its successor: follow its choice when it is us or a
        // live member, so nobody waits for the timeout.
        if let Some(s) = self.p.index_of(&m.hot) {
            if s == self.p.me || self.peers[s].alive(self.p.networks, now, self.p.timeout) {
                self.awaiting = vec![s];
                self.passed_over.clear();
                self.temporal_wait_hot(now);
            }
        }
    }

    fn on_net_check(&mut self, now: Duration, ok: bool, out: &mut Vec<Output>) {
        if !self.p.net_check {
            return;
        }
        if self.net_last != Some(ok) {
            // The others rank candidates by this flag: tell them at once.
            self.announce = true;
            if ok {
                self.net_ok_since = Some(now);
            }
        }
        self.net_last = Some(ok);
        if ok {
            self.net_failures = 0;
            if self.state == State::CS {
                self.set_state(State::SBS, TemporalState::None, None, out);
                out.push(Output::Event(Event::IsolationEnded));
            }
            return;
        }
        self.net_failures = self.net_failures.saturating_add(1);
        if self.net_failures < 2 || self.faulty(Fault::IgnoreNetCheck) {
            return;
        }
        match self.state {
            State::HS => {
                self.release(
                    ReleaseReason::NetCheckFailed,
                    State::CS,
                    TemporalState::None,
                    None,
                    out,
                );
                out.push(Output::Event(Event::Isolated));
            }
            State::SBS | State::SS => {
                self.set_state(State::CS, TemporalState::None, None, out);
                out.push(Output::Event(Event::Isolated));
            }
            State::CS | State::FS | State::TS => {}
        }
    }

    // ----- transitions ----------------------------------------------------------------------

    fn become_hot(&mut self, now: Duration, reason: HotReason, out: &mut Vec<Output>) {
        let previous = self
            .known_hot
            .filter(|&h| h != self.p.me)
            .or(self.lost_hot)
            .map(|h| self.p.names[h].clone());
        self.lost_hot = None;
        self.epoch += 1;
        self.hot_epoch = self.epoch;
        self.lease_until = Some(now + self.p.lease());
        self.awaiting.clear();
        self.passed_over.clear();
        self.handover = None;
        self.preempt_since = None;
        self.transition(
            State::HS,
            TemporalState::StartingKernelToHot,
            Some(now + self.p.starting_to_hot),
            Some(reason),
            out,
        );
        out.push(Output::Event(Event::BecameHot {
            epoch: self.hot_epoch,
            reason,
            previous,
        }));
        // Announce at once: standbys stop waiting and a rival hot member steps down sooner.
        self.next_heartbeat = now;
    }

    /// Stops being hot: the role file is rewritten (no lease) *before* anything is announced.
    fn release(
        &mut self,
        reason: ReleaseReason,
        state: State,
        temporal: TemporalState,
        deadline: Option<Duration>,
        out: &mut Vec<Output>,
    ) {
        self.lease_until = None;
        self.set_state(state, temporal, deadline, out);
        out.push(Output::Event(Event::Released { reason }));
    }

    fn set_state(
        &mut self,
        state: State,
        temporal: TemporalState,
        deadline: Option<Duration>,
        out: &mut Vec<Output>,
    ) {
        self.transition(state, temporal, deadline, None, out);
    }

    /// Moves to `(state, temporal)`; a change of state rewrites the role, carrying
    /// `became_hot` when this is the move into HS.
    fn transition(
        &mut self,
        state: State,
        temporal: TemporalState,
        deadline: Option<Duration>,
        became_hot: Option<HotReason>,
        out: &mut Vec<Output>,
    ) {
        let from = (self.state, self.temporal);
        self.deadline = deadline;
        if from == (state, temporal) {
            return;
        }
        self.state = state;
        self.temporal = temporal;
        if state != State::HS {
            self.lease_until = None;
        }
        out.push(Output::Event(Event::StateChanged {
            from,
            to: (state, temporal),
        }));
        if from.0 != state {
            self.emit_role(became_hot, out);
        }
        self.announce = true;
    }

    fn emit_role(&mut self, became_hot: Option<HotReason>, out: &mut Vec<Output>) {
        self.role_out = Some((self.state, self.epoch()));
        out.push(Output::Role {
            state: self.state,
            epoch: self.epoch(),
            lease_until: self.lease_until.filter(|_| self.state == State::HS),
            became_hot,
        });
    }

    fn shutdown(&mut self, _now: Duration, out: &mut Vec<Output>) {
        let successor = if self.state == State::HS {
            let now = self.last_now.unwrap_or_default();
            let me = self.p.me;
            let best = (0..self.peers.len())
                .filter(|&i| i != me && self.peer_candidate(i, now, false))
                .max_by_key(|&i| (self.p.priorities[i], Reverse(self.p.names[i].as_str())));
            self.release(
                ReleaseReason::Shutdown,
                State::SBS,
                TemporalState::None,
                None,
                out,
            );
            best.map(|b| self.p.names[b].clone()).unwrap_or_default()
        } else {
            String::new()
        };
        self.broadcast(MessageType::Leaving, &successor, Flags::default(), out);
        self.stopped = true;
        out.push(Output::Stopped);
    }
}

fn ignored(reason: &'static str) -> Output {
    Output::Event(Event::Ignored { reason })
}

#[cfg(not(feature = "fault-injection"))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Fault {
    SingleNetworkLiveness,
    IgnoreNetCheck,
    PromotePriorityZero,
    NoConflictResolution,
}

//! The state machine of one member. Level-triggered: every input updates what the member
//! knows, then [`Node::evaluate`] re-derives what it should be from that knowledge, so a lost
//! or reordered datagram can delay a decision but never leave the member in a wrong state.

use super::io::{Destination, Event, HotReason, Input, Output, ReleaseReason};
use super::params::Params;
use super::peers::{MAX_NETWORKS, Peer};
use crate::wire::{Flags, Message, MessageType};
use crate::{State, TemporalState};
use std::cmp::Reverse;
use std::net::SocketAddr;
use std::time::Duration;

/// A rule the simulator's tests may break on purpose, to prove the invariants catch it.
#[cfg(feature = "fault-injection")]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
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
#[derive(Debug, Clone)]
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
    lease_until: Option<Duration>,
    last_now: Option<Duration>,
    /// The hot member this member believes in (itself included), for change events.
    known_hot: Option<usize>,
    /// Better candidates this standby waits for (iWaitingHot).
    awaiting: Vec<usize>,
    /// Candidates that had their chance and did not become hot; skipped until a hot member shows.
    passed_over: Vec<usize>,
    /// The member this one handed over to (iHotOrSBSToSBS_WaitForHot).
    handover: Option<(usize, bool)>,
    /// When this member stepped down into iHotOrSBSToSBS_WaitAnsConn.
    stepped_down_at: Duration,
    preempt_since: Option<Duration>,
    announce: bool,
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
            lease_until: None,
            last_now: None,
            known_hot: None,
            awaiting: Vec::new(),
            passed_over: Vec::new(),
            handover: None,
            stepped_down_at: now,
            preempt_since: None,
            announce: false,
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

    /// What this member knows about member `name` (None for itself or unknown names).
    pub fn peer(&self, name: &str) -> Option<&Peer> {
        self.p.index_of(name).filter(|&i| i != self.p.me).map(|i| &self.peers[i])
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
                }
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
            self.emit_role(&mut out);
            if self.state == State::HS {
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
            Input::NetCheck { ok } => self.on_net_check(ok, &mut out),
            Input::Switchover { target } => self.on_switchover_command(now, target, &mut out),
            Input::Shutdown => {
                self.shutdown(now, &mut out);
                return out;
            }
        }
        if !standalone {
            self.evaluate(now, &mut out);
        }
        self.heartbeat(now, &mut out);
        out
    }

    // ----- time -----------------------------------------------------------------------------

    fn observe_clock(&mut self, now: Duration, out: &mut Vec<Output>) {
        if let Some(last) = self.last_now {
            if now > last + self.p.lease() {
                out.push(Output::Event(Event::ClockGap { gap: now - last }));
                for peer in &mut self.peers {
                    peer.extend_after_gap(last, now, self.p.timeout, self.p.interval);
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
        self.next_heartbeat = now + self.p.interval;
        if self.state == State::HS {
            self.lease_until = Some(now + self.p.lease());
            self.emit_role(out);
        }
        let (hot, flags) = match (self.temporal, self.handover) {
            (TemporalState::HotOrSbsToSbsWaitForHot, Some((t, manual))) => (
                self.p.names[t].clone(),
                Flags::HANDOVER.with(Flags::MANUAL, manual),
            ),
            _ => (self.hot().unwrap_or_default().to_string(), Flags::default()),
        };
        self.broadcast(MessageType::Heartbeat, &hot, flags, out);
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
        self.epoch = self.epoch.max(m.epoch);
        // A heartbeat older than one already heard on another network carries a stale state:
        // it counts for liveness only. Commands (leaving, switchover) are one-shot and are
        // acted on even when a later heartbeat overtook them.
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
            MessageType::StatusQuery | MessageType::StatusReply => {}
        }
    }

    fn record(
        &mut self,
        now: Duration,
        n: usize,
        from: SocketAddr,
        i: usize,
        m: &Message,
        out: &mut Vec<Output>,
    ) -> bool {
        let peer = &mut self.peers[i];
        let fresh = peer.record(now, n, from, m);
        if peer.anomaly[n] {
            peer.anomaly[n] = false;
            out.push(Output::Event(Event::NetworkRecovered {
                member: m.member.clone(),
                network: n as u8,
            }));
        }
        fresh
    }

    fn on_leaving(&mut self, now: Duration, i: usize, m: &Message) {
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

    fn on_net_check(&mut self, ok: bool, out: &mut Vec<Output>) {
        if !self.p.net_check {
            return;
        }
        self.net_last = Some(ok);
        if ok {
            self.net_failures = 0;
            if self.state == State::CS {
                self.set_state(State::SBS, TemporalState::None, None, out);
                out.push(Output::Event(Event::CrashRecovered));
            }
            return;
        }
        self.net_failures = self.net_failures.saturating_add(1);
        if self.net_failures < 2 || self.faulty(Fault::IgnoreNetCheck) {
            return;
        }
        match self.state {
            State::HS => {
                self.release(ReleaseReason::NetCheckFailed, State::CS, TemporalState::None, None, out);
                out.push(Output::Event(Event::Crashed));
            }
            State::SBS | State::SS => {
                self.set_state(State::CS, TemporalState::None, None, out);
                out.push(Output::Event(Event::Crashed));
            }
            State::CS | State::FS | State::TS => {}
        }
    }

    // ----- switchover -----------------------------------------------------------------------

    fn on_switchover_command(&mut self, now: Duration, target: String, out: &mut Vec<Output>) {
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
            if self.hot_peer(now).is_none() && self.eligible(true) {
                // Nobody holds the role, so nothing has to be released first.
                self.become_hot(now, HotReason::Handover, out);
                return;
            }
            self.set_state(
                State::SBS,
                TemporalState::WaitingReadyHot,
                Some(now + self.p.waiting_ready_hot),
                out,
            );
        }
        out.push(Output::Event(Event::SwitchoverStarted {
            target: target.clone(),
        }));
        self.broadcast(MessageType::SwitchoverRequest, &target, Flags::MANUAL, out);
    }

    fn on_switchover_request(&mut self, now: Duration, m: &Message, out: &mut Vec<Output>) {
        let manual = m.flags.contains(Flags::MANUAL);
        if self.state != State::HS {
            if m.hot == self.p.my_name() && self.state == State::SBS {
                if manual && self.hot_peer(now).is_none() && self.eligible(true) {
                    self.become_hot(now, HotReason::Handover, out);
                    return;
                }
                self.set_state(
                    State::SBS,
                    TemporalState::WaitingReadyHot,
                    Some(now + self.p.waiting_ready_hot),
                    out,
                );
            }
            return;
        }
        match self.check_target(now, &m.hot, manual) {
            Ok(t) => {
                self.handover = Some((t, manual));
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

    fn check_target(&self, now: Duration, target: &str, manual: bool) -> Result<usize, String> {
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
    fn on_handover_notice(&mut self, now: Duration, m: &Message, out: &mut Vec<Output>) {
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

    // ----- evaluation -----------------------------------------------------------------------

    fn evaluate(&mut self, now: Duration, out: &mut Vec<Output>) {
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

    fn rank(&self, i: usize) -> (u64, u16, Reverse<&str>) {
        let epoch = if i == self.p.me {
            self.hot_epoch
        } else {
            self.peers[i].epoch
        };
        (epoch, self.p.priorities[i], Reverse(self.p.names[i].as_str()))
    }

    fn alive(&self, i: usize, now: Duration) -> bool {
        let peer = &self.peers[i];
        if self.faulty(Fault::SingleNetworkLiveness) {
            return peer.alive_on(0, now, self.p.timeout);
        }
        peer.alive(self.p.networks, now, self.p.timeout)
    }

    /// The best-ranked other member that is alive and hot.
    fn hot_peer(&self, now: Duration) -> Option<usize> {
        (0..self.peers.len())
            .filter(|&i| i != self.p.me && self.peers[i].state == State::HS && self.alive(i, now))
            .max_by(|&a, &b| self.rank(a).cmp(&self.rank(b)))
    }

    fn net_ok(&self) -> bool {
        !self.p.net_check || self.net_last == Some(true) || self.faulty(Fault::IgnoreNetCheck)
    }

    /// Whether this member may become hot now (`manual`: by an operator's command).
    fn eligible(&self, manual: bool) -> bool {
        let priority_ok = self.p.priorities[self.p.me] > 0
            || manual
            || self.faulty(Fault::PromotePriorityZero);
        priority_ok && self.net_ok() && matches!(self.state, State::SS | State::SBS)
    }

    fn peer_candidate(&self, i: usize, now: Duration, include_starting: bool) -> bool {
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

    fn evaluate_hot(&mut self, now: Duration, out: &mut Vec<Output>) {
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

    fn evaluate_standby(&mut self, now: Duration, out: &mut Vec<Output>) {
        let expired = self.deadline.is_some_and(|d| now >= d);
        if let Some(h) = self.hot_peer(now) {
            self.passed_over.clear();
            self.awaiting.clear();
            match (self.state, self.temporal) {
                (State::SS, TemporalState::Election) => {
                    let all = (0..self.p.networks).all(|n| self.peers[h].alive_on(n, now, self.p.timeout));
                    if all {
                        self.set_state(State::SBS, TemporalState::None, None, out);
                    } else {
                        self.set_state(
                            State::SS,
                            TemporalState::StartingKernelToSbs,
                            Some(now + self.p.starting_to_standby),
                            out,
                        );
                    }
                }
                (State::SS, _) => {
                    let all = (0..self.p.networks).all(|n| self.peers[h].alive_on(n, now, self.p.timeout));
                    if all || expired {
                        self.set_state(State::SBS, TemporalState::None, None, out);
                    }
                }
                (State::SBS, TemporalState::WaitingReadyHot) => {
                    if expired {
                        self.set_state(State::SBS, TemporalState::None, None, out);
                        out.push(Output::Event(Event::SwitchoverRejected {
                            target: self.p.my_name().to_string(),
                            reason: "the hot member did not hand over in time".into(),
                        }));
                    }
                }
                (State::SBS, TemporalState::None) => {}
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
            TemporalState::Election | TemporalState::WaitingReadyHot if !expired => return,
            TemporalState::HotOrSbsToSbsWaitForHot => {
                if let Some((t, _)) = self.handover {
                    if !expired && self.alive(t, now) {
                        return;
                    }
                    self.passed_over.push(t);
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
                self.passed_over.extend(awaited.into_iter().filter(|&a| a != self.p.me));
            }
            _ => {}
        }
        self.decide(now, out);
    }

    /// No hot member is known: the best eligible candidate takes the role, the others wait.
    fn decide(&mut self, now: Duration, out: &mut Vec<Output>) {
        let electing = self.state == State::SS && self.temporal == TemporalState::Election;
        let me = self.p.me;
        let mut candidates: Vec<usize> = (0..self.peers.len())
            .filter(|&i| i != me && self.peer_candidate(i, now, electing))
            .collect();
        if self.eligible(false) {
            candidates.push(me);
        }
        let key = |i: &usize| (self.p.priorities[*i], Reverse(self.p.names[*i].as_str()));
        let best = candidates.iter().copied().max_by_key(key);
        match best {
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

    fn temporal_wait_hot(&mut self, now: Duration) {
        if self.temporal != TemporalState::WaitingHot {
            self.temporal = TemporalState::WaitingHot;
            self.deadline = Some(now + self.p.waiting_hot);
            self.announce = true;
        }
    }

    fn consider_preempt(&mut self, now: Duration, h: usize, out: &mut Vec<Output>) {
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
            self.set_state(
                State::SBS,
                TemporalState::WaitingReadyHot,
                Some(now + self.p.waiting_ready_hot),
                out,
            );
            let target = self.p.my_name().to_string();
            self.broadcast(MessageType::SwitchoverRequest, &target, Flags::default(), out);
        }
    }

    /// Joined/lost members and per-network anomalies, from the silence clocks.
    fn update_links(&mut self, now: Duration, out: &mut Vec<Output>) {
        let (timeout, interval, networks) = (self.p.timeout, self.p.interval, self.p.networks);
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
                let silent = now >= since + timeout;
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
    fn note_hot_lost(&mut self, now: Duration, out: &mut Vec<Output>) {
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
        }
    }

    fn track_known_hot(&mut self, now: Duration, out: &mut Vec<Output>) {
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

    // ----- transitions ----------------------------------------------------------------------

    fn become_hot(&mut self, now: Duration, reason: HotReason, out: &mut Vec<Output>) {
        let previous = self
            .known_hot
            .filter(|&h| h != self.p.me)
            .map(|h| self.p.names[h].clone());
        self.epoch += 1;
        self.hot_epoch = self.epoch;
        self.lease_until = Some(now + self.p.lease());
        self.awaiting.clear();
        self.passed_over.clear();
        self.handover = None;
        self.preempt_since = None;
        self.set_state(
            State::HS,
            TemporalState::StartingKernelToHot,
            Some(now + self.p.starting_to_hot),
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
            self.emit_role(out);
        }
        self.announce = true;
    }

    fn emit_role(&self, out: &mut Vec<Output>) {
        out.push(Output::Role {
            state: self.state,
            epoch: self.epoch(),
            lease_until: self.lease_until.filter(|_| self.state == State::HS),
        });
    }

    fn shutdown(&mut self, _now: Duration, out: &mut Vec<Output>) {
        let successor = if self.state == State::HS {
            let now = self.last_now.unwrap_or_default();
            let me = self.p.me;
            let best = (0..self.peers.len())
                .filter(|&i| i != me && self.peer_candidate(i, now, false))
                .max_by_key(|&i| (self.p.priorities[i], Reverse(self.p.names[i].as_str())));
            self.release(ReleaseReason::Shutdown, State::SBS, TemporalState::None, None, out);
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
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Fault {
    SingleNetworkLiveness,
    IgnoreNetCheck,
    PromotePriorityZero,
    NoConflictResolution,
}

//! What one member knows about the others: when each was last heard on each network and what
//! it said. Liveness is judged per network; a member is alive while heard on *any* network.

use crate::wire::{Flags, Message};
use crate::{State, TemporalState};
use std::net::SocketAddr;
use std::time::Duration;

/// Most networks a group can use.
pub const MAX_NETWORKS: usize = 2;

/// The last word of one other member.
#[derive(Debug, Clone, Hash)]
pub struct Peer {
    /// When it was last heard, per network.
    pub heard: [Option<Duration>; MAX_NETWORKS],
    /// When it was first heard in its current incarnation (start of the anomaly clock for a
    /// network it was never heard on).
    pub first_seen: Option<Duration>,
    /// Where its datagrams came from, per network.
    pub addr: [Option<SocketAddr>; MAX_NETWORKS],
    /// Its last reported state.
    pub state: State,
    /// Its last reported temporal state.
    pub temporal: TemporalState,
    /// Its last reported epoch (its own term when hot).
    pub epoch: u64,
    /// Its last reported flags (net check, hand-over).
    pub flags: Flags,
    /// The hot member it named.
    pub hot: String,
    /// Its incarnation.
    pub incarnation: u64,
    /// Highest sequence number whose contents were taken (across all networks).
    pub sequence: u64,
    /// Sent `leaving`: treated as gone until heard again.
    pub left: bool,
    /// Liveness as last reported in an event (edge detection for joined/lost).
    pub alive_reported: bool,
    /// Per network: an anomaly is being reported.
    pub anomaly: [bool; MAX_NETWORKS],
    /// Per network: when the last reported anomaly ended (start of its hold-down).
    pub anomaly_ended: [Option<Duration>; MAX_NETWORKS],
    /// When it was last heard on any network, as received (never moved by
    /// [`Peer::extend_after_gap`]): what this member vouches for to the others.
    pub heard_direct: Option<Duration>,
    /// Latest time another member heard it directly (from their heartbeats' "hot heard"), so
    /// its heartbeats lost on our way only do not make it look dead.
    pub hearsay: Option<Duration>,
}

impl Default for Peer {
    fn default() -> Self {
        Peer {
            heard: [None; MAX_NETWORKS],
            first_seen: None,
            addr: [None; MAX_NETWORKS],
            state: State::SS,
            temporal: TemporalState::None,
            epoch: 0,
            flags: Flags::default(),
            hot: String::new(),
            incarnation: 0,
            sequence: 0,
            left: false,
            alive_reported: false,
            anomaly: [false; MAX_NETWORKS],
            anomaly_ended: [None; MAX_NETWORKS],
            heard_direct: None,
            hearsay: None,
        }
    }
}

impl Peer {
    /// Records a datagram heard on `network` at `now`. Returns false when the datagram is
    /// older than one already taken from another network (each network keeps its own order,
    /// so a slow network can deliver an older state late): it still proves the member alive on
    /// that network, but its contents are stale and are not taken.
    pub fn record(&mut self, now: Duration, network: usize, from: SocketAddr, m: &Message) -> bool {
        let new_process = self.incarnation != m.incarnation || self.first_seen.is_none();
        if new_process {
            // A new process: its silence clock restarts.
            if self.incarnation != m.incarnation {
                self.heard = [None; MAX_NETWORKS];
                self.hearsay = None;
                self.sequence = 0;
            }
            self.first_seen = Some(now);
        }
        self.incarnation = m.incarnation;
        self.heard[network] = Some(now);
        self.heard_direct = Some(now);
        self.addr[network] = Some(from);
        if m.sequence <= self.sequence && !new_process {
            return false;
        }
        self.left = false;
        self.sequence = m.sequence;
        self.state = m.state;
        self.temporal = m.temporal;
        self.epoch = m.epoch;
        self.flags = m.flags;
        self.hot.clone_from(&m.hot);
        true
    }

    /// Heard on `network` within `timeout` before `now`.
    pub fn alive_on(&self, network: usize, now: Duration, timeout: Duration) -> bool {
        !self.left && self.heard[network].is_some_and(|t| now < t + timeout)
    }

    /// Heard on any of the first `networks` networks within `timeout`.
    pub fn alive(&self, networks: usize, now: Duration, timeout: Duration) -> bool {
        (0..networks).any(|n| self.alive_on(n, now, timeout))
    }

    /// Another member heard it within `timeout` before `now` (and it has not left).
    pub fn vouched_for(&self, now: Duration, timeout: Duration) -> bool {
        !self.left && self.hearsay.is_some_and(|t| now < t + timeout)
    }

    /// The latest time it was heard on any network.
    pub fn last_heard(&self) -> Option<Duration> {
        self.heard.iter().flatten().max().copied()
    }

    /// Whether it reports a passing net check.
    pub fn net_ok(&self) -> bool {
        self.flags.contains(Flags::NET_CHECK_OK)
    }

    /// Start of the silence on `network`: last heard there, or first seen if never heard there.
    pub fn silent_since(&self, network: usize) -> Option<Duration> {
        self.heard[network].or(self.first_seen)
    }

    /// After the state machine was not run for a while (process frozen), gives every member
    /// that was alive before the gap at least `grace` more, so a stale view causes no
    /// takeover before fresh heartbeats (already queued in the socket) are read.
    pub fn extend_after_gap(
        &mut self,
        before_gap: Duration,
        now: Duration,
        timeout: Duration,
        grace: Duration,
    ) {
        let floor = (now + grace).saturating_sub(timeout);
        for t in self.heard.iter_mut().flatten() {
            if before_gap < *t + timeout && *t < floor {
                *t = floor;
            }
        }
    }
}

//! What goes into the state machine and what comes out: inputs are observations (a datagram,
//! a net-check round, a timer, a command), outputs are effects for the runtime to carry out.

use crate::wire::Message;
use crate::{State, TemporalState};
use std::fmt;
use std::net::SocketAddr;
use std::time::Duration;

/// An observation fed to [`super::Node::handle`].
#[derive(Debug, Clone, PartialEq)]
pub enum Input {
    /// A timer fired (call at or after [`super::Node::next_deadline`]; early calls are harmless).
    Tick,
    /// A datagram that passed decoding, MAC and replay checks arrived on network `network`.
    Received {
        /// Index of the network the datagram arrived on.
        network: u8,
        /// Source address (to answer status queries and to log where the hot member is).
        from: SocketAddr,
        /// The decoded datagram.
        message: Message,
    },
    /// A net-check round finished: `ok` = at least one target answered.
    NetCheck {
        /// Whether any target answered in this round.
        ok: bool,
    },
    /// An operator asks for a planned hand-over to `target` (priority 0 allowed).
    Switchover {
        /// Member that should become hot.
        target: String,
    },
    /// This member's carousel, at start and whenever it changed (None: no transmitter). The
    /// hot member advertises it; a standby compares the hot member's advert with it.
    Content(Option<crate::content::Manifest>),
    /// Graceful stop (SIGTERM): release the role, tell the group, stop.
    Shutdown,
}

/// Where a datagram goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Destination {
    /// The whole group on that network (the multicast group, or every other member's address).
    Group,
    /// One address (the answer to a status query).
    To(SocketAddr),
}

/// An effect the runtime carries out, in order.
#[derive(Debug, Clone, PartialEq)]
pub enum Output {
    /// Send a datagram on network `network`.
    Send {
        /// Index of the network.
        network: u8,
        /// Group or a single address.
        to: Destination,
        /// The datagram (the runtime encodes and signs it).
        message: Message,
    },
    /// The role changed, the lease was renewed, or a standby learned a new epoch (someone else
    /// took over): write the role file now. A hot member's `lease_until` is a monotonic time;
    /// every other state has no lease.
    Role {
        /// New state.
        state: State,
        /// Epoch of the hot member this member knows (its own when hot).
        epoch: u64,
        /// End of the lease (hot only).
        lease_until: Option<Duration>,
        /// Set on the write that makes this member hot: why, so the runtime can act on it
        /// before the [`Event::BecameHot`] that follows (a cold start probes its VIPs first).
        became_hot: Option<HotReason>,
    },
    /// Something worth logging, counting or notifying.
    Event(Event),
    /// The member has stopped after a graceful shutdown; nothing more will come out.
    Stopped,
}

/// Why a member became hot.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HotReason {
    /// Standalone mode: always hot.
    Standalone,
    /// Won the start-up election (nobody was hot).
    Election,
    /// The hot member was lost (silent on every network for the timeout) or left.
    Takeover,
    /// Planned hand-over (operator switchover or preemption) to this member.
    Handover,
}

impl HotReason {
    /// Short label for logs and notifications.
    pub fn as_str(self) -> &'static str {
        match self {
            HotReason::Standalone => "standalone",
            HotReason::Election => "election",
            HotReason::Takeover => "takeover",
            HotReason::Handover => "handover",
        }
    }
}

/// Why a hot member stopped being hot.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReleaseReason {
    /// Another hot member ranks higher (epoch, then priority, then name).
    Conflict {
        /// The member that stays hot.
        winner: String,
    },
    /// Its lease ran out before it could renew it (the process was frozen or starved).
    LeaseExpired,
    /// Planned hand-over to `target`.
    Handover {
        /// The member that becomes hot.
        target: String,
    },
    /// Net check failed twice: this member is isolated (CS).
    NetCheckFailed,
    /// Graceful shutdown.
    Shutdown,
}

impl ReleaseReason {
    /// Short label for logs and notifications.
    pub fn as_str(&self) -> &'static str {
        match self {
            ReleaseReason::Conflict { .. } => "conflict",
            ReleaseReason::LeaseExpired => "lease-expired",
            ReleaseReason::Handover { .. } => "handover",
            ReleaseReason::NetCheckFailed => "net-check-failed",
            ReleaseReason::Shutdown => "shutdown",
        }
    }
}

/// A notable happening, for logs, metrics and notify commands.
#[derive(Debug, Clone, PartialEq)]
pub enum Event {
    /// State or temporal state changed.
    StateChanged {
        /// Before.
        from: (State, TemporalState),
        /// After.
        to: (State, TemporalState),
    },
    /// The hot member this member knows changed (Infocast's `Primary/coordinator: <addr>`).
    PrimaryCoordinator {
        /// The hot member.
        member: String,
        /// Where its heartbeats come from (None for this member itself).
        address: Option<SocketAddr>,
    },
    /// This member became hot.
    BecameHot {
        /// The new epoch.
        epoch: u64,
        /// Why.
        reason: HotReason,
        /// The previous hot member, if one was known.
        previous: Option<String>,
    },
    /// A new verdict on the hot member's carousel compared with this member's: reported when
    /// it differs from the last verdict (the first comparison included).
    ContentCompared {
        /// The hot member.
        hot: String,
        /// How this member's carousel differs; None when they are the same.
        difference: Option<crate::content::Difference>,
        /// The previous verdict was a difference (so a None here is a recovery).
        was_different: bool,
    },
    /// This member stopped being hot.
    Released {
        /// Why.
        reason: ReleaseReason,
    },
    /// The known hot member was lost: silent on every network for the timeout, or it left.
    HotLost {
        /// The lost member.
        member: String,
        /// Time since its last heartbeat on any network.
        silent_for: Duration,
        /// True when it announced a graceful stop.
        left: bool,
    },
    /// A member that was heard is now silent on every network.
    MemberLost {
        /// The member.
        member: String,
    },
    /// A member is heard again (or for the first time).
    MemberJoined {
        /// The member.
        member: String,
    },
    /// A member is silent on one network but heard on another: no takeover, but report it.
    NetworkAnomaly {
        /// The member.
        member: String,
        /// Index of the silent network.
        network: u8,
    },
    /// The network of an earlier anomaly carries the member's heartbeats again.
    NetworkRecovered {
        /// The member.
        member: String,
        /// Index of the network.
        network: u8,
    },
    /// Net check failed twice: this member is isolated and went to CS (notified as `crashed`).
    Isolated,
    /// Net check passes again: this member left CS.
    IsolationEnded,
    /// A switchover was accepted (by this hot member) or requested (by this member).
    SwitchoverStarted {
        /// The member that should become hot.
        target: String,
    },
    /// A switchover could not be done.
    SwitchoverRejected {
        /// The requested target.
        target: String,
        /// Why.
        reason: String,
    },
    /// Another process claims this member's name (two agents started with one `--member`).
    DuplicateMember {
        /// Where the impostor's datagrams come from.
        from: SocketAddr,
    },
    /// A datagram was ignored by the state machine (after decoding succeeded).
    Ignored {
        /// Why (short label, for metrics).
        reason: &'static str,
    },
    /// The state machine was not run for longer than a lease (process frozen or starved).
    ClockGap {
        /// How long nothing was processed.
        gap: Duration,
    },
}

/// One readable line per event, in the words an operator would use (the simulator's timeline,
/// `rdg demo`, and the agent's log).
impl fmt::Display for Event {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Event::StateChanged { from, to } => {
                write!(f, "{}/{} -> {}/{}", from.0, from.1, to.0, to.1)
            }
            Event::PrimaryCoordinator { member, address } => match address {
                Some(a) => write!(f, "Primary/coordinator: {member}@{}", a.ip()),
                None => write!(f, "Primary/coordinator: {member} (this member)"),
            },
            Event::BecameHot {
                epoch,
                reason,
                previous,
            } => {
                write!(f, "became HOT (epoch {epoch}, {}", reason.as_str())?;
                if let Some(p) = previous {
                    write!(f, ", previous {p}")?;
                }
                f.write_str(")")
            }
            Event::Released { reason } => {
                write!(f, "released the hot role ({})", reason.as_str())
            }
            Event::ContentCompared {
                hot,
                difference: Some(d),
                ..
            } => write!(
                f,
                "carousel differs from hot member {hot}'s: {}",
                d.describe(hot)
            ),
            Event::ContentCompared {
                hot,
                was_different: true,
                ..
            } => write!(f, "carousel equals hot member {hot}'s again"),
            Event::ContentCompared { hot, .. } => {
                write!(f, "carousel equals hot member {hot}'s")
            }
            Event::HotLost {
                member, left: true, ..
            } => write!(f, "hot member {member} left the group"),
            Event::HotLost {
                member, silent_for, ..
            } => write!(
                f,
                "hot member {member} lost (silent for {} ms on every network)",
                silent_for.as_millis()
            ),
            Event::MemberLost { member } => write!(f, "member {member} lost"),
            Event::MemberJoined { member } => write!(f, "member {member} heard"),
            Event::NetworkAnomaly { member, network } => {
                write!(
                    f,
                    "network anomaly: {member} silent on network {network} only; no takeover"
                )
            }
            Event::NetworkRecovered { member, network } => {
                write!(
                    f,
                    "network recovered: {member} heard on network {network} again"
                )
            }
            Event::Isolated => {
                f.write_str("net check failed twice: isolated, going to CS (will not take over)")
            }
            Event::IsolationEnded => f.write_str("net check passes again: leaving CS"),
            Event::SwitchoverStarted { target } => write!(f, "switchover to {target} started"),
            Event::SwitchoverRejected { target, reason } => {
                write!(f, "switchover to {target} rejected: {reason}")
            }
            Event::DuplicateMember { from } => {
                write!(
                    f,
                    "another process at {from} sends as this member (two agents with one --member?)"
                )
            }
            Event::Ignored { reason } => write!(f, "ignored a datagram ({reason})"),
            Event::ClockGap { gap } => write!(
                f,
                "not run for {} ms, longer than the lease (frozen or starved)",
                gap.as_millis()
            ),
        }
    }
}

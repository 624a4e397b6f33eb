//! The decoded form of a datagram.

use crate::{State, TemporalState};

/// What a datagram is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MessageType {
    /// Periodic "I am here, in this state" on every network.
    Heartbeat = 1,
    /// Graceful stop: the sender is leaving the group now (a hot sender has already released).
    Leaving = 2,
    /// Asks the hot member to hand over to the member named in `hot` (the target).
    SwitchoverRequest = 3,
    /// The hot member's answer; `Flags::ACCEPTED` set = it has released the role to `hot`.
    SwitchoverAck = 4,
    /// Asks every member to answer with a [`MessageType::StatusReply`] (used by `rdg status`).
    StatusQuery = 5,
    /// A member's answer to a status query: its state, priority, epoch and the hot member it knows.
    StatusReply = 6,
    /// The sender's carousel summarised ([`crate::content::Advert`]): sent by the hot member
    /// every few heartbeats, and by every member in answer to a status query.
    Content = 7,
}

impl MessageType {
    /// All message types, in numeric order.
    pub const ALL: [MessageType; 7] = [
        MessageType::Heartbeat,
        MessageType::Leaving,
        MessageType::SwitchoverRequest,
        MessageType::SwitchoverAck,
        MessageType::StatusQuery,
        MessageType::StatusReply,
        MessageType::Content,
    ];

    /// The numeric value on the wire.
    pub fn code(self) -> u8 {
        self as u8
    }

    /// Inverse of [`MessageType::code`].
    pub fn from_code(code: u8) -> Option<MessageType> {
        MessageType::ALL.iter().copied().find(|t| t.code() == code)
    }
}

/// Bit flags carried in every datagram.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Flags(pub u16);

impl Flags {
    /// The sender's net check passes (it could take over).
    pub const NET_CHECK_OK: Flags = Flags(1 << 0);
    /// Switchover: requested by an operator (not by automatic preemption).
    pub const MANUAL: Flags = Flags(1 << 1);
    /// Switchover ack: the hot member accepted and has already released the role.
    pub const ACCEPTED: Flags = Flags(1 << 2);
    /// Heartbeat of a member handing over: `hot` names the member it handed the role to.
    pub const HANDOVER: Flags = Flags(1 << 3);
    /// Every flag this version knows; others make a datagram invalid.
    pub const KNOWN: Flags = Flags(0b1111);

    /// True when every bit of `other` is set in `self`.
    pub fn contains(self, other: Flags) -> bool {
        self.0 & other.0 == other.0
    }

    /// `self` with the bits of `other` set (when `on`) or cleared.
    pub fn with(self, other: Flags, on: bool) -> Flags {
        if on {
            Flags(self.0 | other.0)
        } else {
            Flags(self.0 & !other.0)
        }
    }
}

/// One datagram. Names are at most [`super::MAX_NAME`] bytes of UTF-8.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Message {
    /// What the datagram is for.
    pub kind: MessageType,
    /// Group name; receivers drop datagrams of other groups.
    pub group: String,
    /// Sending member (for `rdg status` queries: the querying tool's name).
    pub member: String,
    /// Sender's state.
    pub state: State,
    /// Sender's temporal state.
    pub temporal: TemporalState,
    /// Sender's priority.
    pub priority: u16,
    /// Highest epoch the sender knows; a hot sender's own epoch. Grows by one per takeover.
    pub epoch: u64,
    /// Random per process start; resets the replay window of the sender.
    pub incarnation: u64,
    /// Grows with every datagram the sender sends in this incarnation.
    pub sequence: u64,
    /// Index of the network (in `networks`) the datagram was sent on.
    pub network: u8,
    /// See [`Flags`].
    pub flags: Flags,
    /// The hot member the sender knows ("" = none); for switchover messages, the target.
    pub hot: String,
    /// Heartbeats only: how long ago the sender last heard `hot` itself (on any network), so
    /// a member that lost the hot member's heartbeats to packet loss learns it is still alive
    /// from the others. `None` when the sender is the hot member, knows none, or for other
    /// message types. Sent in whole milliseconds, rounded down (never fresher than the truth).
    pub hot_heard_ago: Option<std::time::Duration>,
    /// Content datagrams only: the sender's carousel; None for every other type.
    pub content: Option<crate::content::Advert>,
}

//! Sans-IO core of rdg: everything that decides who is hot, with no sockets, no tokio and no
//! clock reads. The runtime (agent) and the deterministic simulator both drive the same
//! [`election::Node`] through `handle(now, input) -> outputs` and `next_deadline()`.
//!
//! - [`config`]: the group configuration file (a contract) and its validation.
//! - [`wire`]: the binary datagram format, strict decoding, HMAC, replay protection.
//! - [`election`]: the state machine of one member.
//! - [`sim`]: a deterministic simulator of whole groups with faults and invariant checks.
//! - [`check`]: a model checker exploring every state of small groups within bounds.

pub mod check;
pub mod config;
pub mod content;
pub mod duration;
pub mod election;
pub mod sim;
pub mod state;
pub mod wire;

pub use duration::Dur;
pub use state::{State, TemporalState};

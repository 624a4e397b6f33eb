//! The datagram members exchange: a compact, versioned binary format with an optional
//! HMAC-SHA256 trailer. [`decode`] is strict: every malformed, oversized, foreign or forged
//! datagram is rejected with a typed [`DecodeError`], never a panic. Replays are caught by a
//! [`ReplayGuard`] kept per sender and network, since decoding itself is stateless.

mod codec;
mod message;
mod replay;

pub use codec::{
    DecodeError, EncodeError, MAC_LEN, MAX_DATAGRAM, MAX_NAME, VERSION, decode, decode_with_keys,
    encode,
};
pub use message::{Flags, Message, MessageType};
pub use replay::{ReplayError, ReplayGuard};

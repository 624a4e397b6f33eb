//! Binary encoding of a [`Message`], with an optional HMAC-SHA256 trailer.
//!
//! # Format (version 2, all integers big-endian)
//!
//! | offset | size | field       | notes                                                     |
//! |-------:|-----:|-------------|-----------------------------------------------------------|
//! |      0 |    3 | magic       | `b"RDG"`                                                  |
//! |      3 |    1 | version     | [`VERSION`] (1)                                           |
//! |      4 |    1 | type        | [`MessageType::code`]                                     |
//! |      5 |    2 | flags       | [`Flags`]; bits outside [`Flags::KNOWN`] must be zero     |
//! |      7 |    1 | state       | [`State::code`] (0..=5)                                   |
//! |      8 |    1 | temporal    | [`TemporalState::code`] (0..=7)                           |
//! |      9 |    1 | network     | index of the network the datagram was sent on             |
//! |     10 |    1 | mac flag    | bit 0 = a MAC trailer follows; bits 1..=7 reserved, zero  |
//! |     11 |    2 | priority    |                                                           |
//! |     13 |    8 | epoch       |                                                           |
//! |     21 |    8 | incarnation |                                                           |
//! |     29 |    8 | sequence    |                                                           |
//! |     37 |    2 | hot heard   | ms since the sender heard `hot` itself; 0xFFFF = not given; at most 0xFFFE |
//! |     39 |  1+n | group       | u8 length n ≤ [`MAX_NAME`], then n bytes of UTF-8         |
//! |      … |  1+n | member      | same                                                      |
//! |      … |  1+n | hot         | same ("" = no hot member known)                           |
//! |      … |    8 | digest      | content datagrams (type 7) only, as the next three rows:  |
//! |        |      |             | [`crate::content::Manifest::digest`]                      |
//! |      … |    2 | total       | number of objects in the sender's carousel                |
//! |      … | 1+8k | objects     | u8 count k ≤ [`crate::content::MAX_ADVERT_OBJECTS`], then k × (name hash u32, version u32) |
//! |      … |   32 | MAC         | only if the mac flag is set: HMAC-SHA256 over every byte before it |
//!
//! Nothing may follow the last field. The smallest datagram is 42 bytes (three empty names, no
//! MAC), the largest heartbeat 263 (three 63-byte names and a MAC) and the largest content
//! datagram 466, under [`MAX_DATAGRAM`]. Members of an older version reject content datagrams
//! as `unknown_type` and go on; heartbeats are unchanged.
//!
//! # Decoding order
//!
//! [`decode`] first checks the structure (size, magic, version, reserved bits, name lengths,
//! exact total length), then the group name, then the MAC policy and the MAC itself, and only
//! then interprets the authenticated fields (type, flags, state, temporal, UTF-8). Nothing is
//! *accepted* on the strength of an unauthenticated byte: the checks before the MAC can only
//! reject. The group is compared before the MAC on purpose: another group sharing the port with
//! a different key is then counted as `wrong_group`, so `bad_mac` keeps meaning "forged or
//! misconfigured key in my own group".

use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;

use super::message::{Flags, Message, MessageType};
use crate::content::{Advert, AdvertObject, MAX_ADVERT_OBJECTS};
use crate::{State, TemporalState};

/// Version of the format written by [`encode`]; [`decode`] accepts only this one. Version 2
/// added the "hot heard" field.
pub const VERSION: u8 = 2;
/// Longest group, member or hot name in bytes (UTF-8); longer names cannot be encoded.
pub const MAX_NAME: usize = 63;
/// Length of the HMAC-SHA256 trailer in bytes.
pub const MAC_LEN: usize = 32;
/// Largest datagram [`decode`] looks at; anything bigger is rejected outright.
pub const MAX_DATAGRAM: usize = 512;

/// First three bytes of every datagram.
const MAGIC: &[u8; 3] = b"RDG";
/// Bit of the mac-flag byte that says a MAC trailer follows; the other bits are reserved.
const MAC_PRESENT: u8 = 0x01;
/// Size of the fixed-size part before the names.
const HEADER_LEN: usize = 39;
/// "hot heard" value meaning "not given".
const HOT_HEARD_NONE: u16 = u16::MAX;
/// Smallest valid datagram: the header and three empty names.
const MIN_LEN: usize = HEADER_LEN + 3;

type HmacSha256 = Hmac<Sha256>;

/// Why [`encode`] refused a message: it would produce a datagram [`decode`] rejects.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EncodeError {
    /// A name is longer than [`MAX_NAME`] bytes.
    #[error("{field} name is {len} bytes long, at most {MAX_NAME} are allowed")]
    NameTooLong {
        /// `"group"`, `"member"` or `"hot"`.
        field: &'static str,
        /// Its length in bytes.
        len: usize,
    },
    /// The flags contain bits this version does not know.
    #[error("unknown flag bits {0:#06x}")]
    UnknownFlags(u16),
    /// A content datagram without a carousel, or a carousel on another type.
    #[error("content belongs in content datagrams, and only there")]
    ContentMismatch,
    /// More listed objects than a datagram carries.
    #[error("{0} listed objects, at most {MAX_ADVERT_OBJECTS} are allowed")]
    TooManyObjects(usize),
}

/// Why [`decode`] rejected a datagram; one variant per reason, labelled by [`DecodeError::reason`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    /// Shorter than the smallest possible datagram (includes empty).
    #[error("datagram too short ({len} bytes)")]
    TooShort {
        /// Length received.
        len: usize,
    },
    /// A field runs past the end of the datagram.
    #[error("datagram truncated in {field}")]
    Truncated {
        /// The field that is cut off.
        field: &'static str,
    },
    /// Longer than [`MAX_DATAGRAM`].
    #[error("datagram too large ({len} bytes)")]
    Oversized {
        /// Length received.
        len: usize,
    },
    /// Does not start with `RDG`: not ours.
    #[error("bad magic")]
    BadMagic,
    /// A format version this build does not speak.
    #[error("unsupported version {0}")]
    UnsupportedVersion(u8),
    /// Unknown message type code.
    #[error("unknown message type {0}")]
    UnknownType(u8),
    /// Unknown state code.
    #[error("unknown state {0}")]
    UnknownState(u8),
    /// Unknown temporal state code.
    #[error("unknown temporal state {0}")]
    UnknownTemporal(u8),
    /// Flag bits outside [`Flags::KNOWN`] are set (only those bits are given).
    #[error("unknown flag bits {0:#06x}")]
    UnknownFlags(u16),
    /// Reserved bits of the mac-flag byte are set (the whole byte is given).
    #[error("reserved bits set ({0:#04x})")]
    ReservedBits(u8),
    /// A name length prefix above [`MAX_NAME`].
    #[error("{field} name is {len} bytes long, at most {MAX_NAME} are allowed")]
    NameTooLong {
        /// `"group"`, `"member"` or `"hot"`.
        field: &'static str,
        /// The length prefix.
        len: usize,
    },
    /// A name is not valid UTF-8.
    #[error("{field} name is not valid UTF-8")]
    InvalidUtf8 {
        /// `"group"`, `"member"` or `"hot"`.
        field: &'static str,
    },
    /// Bytes left over after the last field (or after the MAC).
    #[error("{count} trailing bytes")]
    TrailingBytes {
        /// How many.
        count: usize,
    },
    /// The datagram belongs to another group.
    #[error("datagram of group {got:?}")]
    WrongGroup {
        /// The group it names (lossily decoded if not UTF-8).
        got: String,
    },
    /// This member has a key but the datagram carries no MAC.
    #[error("MAC required but missing")]
    MissingMac,
    /// The datagram carries a MAC but this member has no key: the group's keys are misconfigured.
    #[error("datagram has a MAC but no key is configured")]
    UnexpectedMac,
    /// The MAC does not match: forged, corrupted, or a different key.
    #[error("bad MAC")]
    BadMac,
    /// A content datagram lists more objects than allowed or than its total.
    #[error("{count} listed objects: more than allowed or than the carousel has")]
    TooManyObjects {
        /// How many it says it lists.
        count: usize,
    },
}

impl DecodeError {
    /// Short snake_case label for metrics and logs (`"truncated"`, `"bad_mac"`, ...).
    pub fn reason(&self) -> &'static str {
        match self {
            DecodeError::TooShort { .. } => "too_short",
            DecodeError::Truncated { .. } => "truncated",
            DecodeError::Oversized { .. } => "oversized",
            DecodeError::BadMagic => "bad_magic",
            DecodeError::UnsupportedVersion(_) => "unsupported_version",
            DecodeError::UnknownType(_) => "unknown_type",
            DecodeError::UnknownState(_) => "unknown_state",
            DecodeError::UnknownTemporal(_) => "unknown_temporal",
            DecodeError::UnknownFlags(_) => "unknown_flags",
            DecodeError::ReservedBits(_) => "reserved_bits",
            DecodeError::NameTooLong { .. } => "name_too_long",
            DecodeError::InvalidUtf8 { .. } => "invalid_utf8",
            DecodeError::TrailingBytes { .. } => "trailing_bytes",
            DecodeError::WrongGroup { .. } => "wrong_group",
            DecodeError::MissingMac => "missing_mac",
            DecodeError::UnexpectedMac => "unexpected_mac",
            DecodeError::BadMac => "bad_mac",
            DecodeError::TooManyObjects { .. } => "too_many_objects",
        }
    }
}

/// A keyed HMAC-SHA256 instance.
fn hmac(key: &[u8]) -> HmacSha256 {
    // HMAC hashes long keys and pads short ones: every length is valid.
    <HmacSha256 as KeyInit>::new_from_slice(key).expect("HMAC accepts keys of any length")
}

/// Encodes `msg`; with a `key`, appends an HMAC-SHA256 over the whole datagram.
/// Fails (instead of panicking) on names longer than [`MAX_NAME`] or unknown flag bits.
pub fn encode(msg: &Message, key: Option<&[u8]>) -> Result<Vec<u8>, EncodeError> {
    let names = [
        ("group", msg.group.as_bytes()),
        ("member", msg.member.as_bytes()),
        ("hot", msg.hot.as_bytes()),
    ];
    for (field, name) in names {
        if name.len() > MAX_NAME {
            return Err(EncodeError::NameTooLong {
                field,
                len: name.len(),
            });
        }
    }
    if msg.flags.0 & !Flags::KNOWN.0 != 0 {
        return Err(EncodeError::UnknownFlags(msg.flags.0 & !Flags::KNOWN.0));
    }
    if (msg.kind == MessageType::Content) != msg.content.is_some() {
        return Err(EncodeError::ContentMismatch);
    }
    if let Some(c) = &msg.content
        && c.objects.len() > MAX_ADVERT_OBJECTS
    {
        return Err(EncodeError::TooManyObjects(c.objects.len()));
    }

    let names_len: usize = names.iter().map(|(_, n)| 1 + n.len()).sum();
    let mut out = Vec::with_capacity(HEADER_LEN + names_len + MAC_LEN);
    out.extend_from_slice(MAGIC);
    out.push(VERSION);
    out.push(msg.kind.code());
    out.extend_from_slice(&msg.flags.0.to_be_bytes());
    out.push(msg.state.code());
    out.push(msg.temporal.code());
    out.push(msg.network);
    out.push(if key.is_some() { MAC_PRESENT } else { 0 });
    out.extend_from_slice(&msg.priority.to_be_bytes());
    out.extend_from_slice(&msg.epoch.to_be_bytes());
    out.extend_from_slice(&msg.incarnation.to_be_bytes());
    out.extend_from_slice(&msg.sequence.to_be_bytes());
    let hot_heard = msg.hot_heard_ago.map_or(HOT_HEARD_NONE, |d| {
        u16::try_from(d.as_millis()).map_or(HOT_HEARD_NONE - 1, |ms| ms.min(HOT_HEARD_NONE - 1))
    });
    out.extend_from_slice(&hot_heard.to_be_bytes());
    for (_, name) in names {
        // Checked above: fits in a u8.
        out.push(name.len() as u8);
        out.extend_from_slice(name);
    }
    if let Some(c) = &msg.content {
        out.extend_from_slice(&c.digest.to_be_bytes());
        out.extend_from_slice(&c.total.to_be_bytes());
        // Checked above: at most MAX_ADVERT_OBJECTS.
        out.push(c.objects.len() as u8);
        for o in &c.objects {
            out.extend_from_slice(&o.name.to_be_bytes());
            out.extend_from_slice(&o.version.to_be_bytes());
        }
    }
    if let Some(key) = key {
        let mut mac = hmac(key);
        mac.update(&out);
        out.extend_from_slice(&mac.finalize().into_bytes());
    }
    Ok(out)
}

/// Bounds-checked cursor over a datagram: every read returns `Truncated` instead of panicking.
struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize, field: &'static str) -> Result<&'a [u8], DecodeError> {
        let end = self
            .pos
            .checked_add(n)
            .ok_or(DecodeError::Truncated { field })?;
        let slice = self
            .buf
            .get(self.pos..end)
            .ok_or(DecodeError::Truncated { field })?;
        self.pos = end;
        Ok(slice)
    }

    fn array<const N: usize>(&mut self, field: &'static str) -> Result<[u8; N], DecodeError> {
        let mut out = [0u8; N];
        out.copy_from_slice(self.take(N, field)?);
        Ok(out)
    }

    fn u8(&mut self, field: &'static str) -> Result<u8, DecodeError> {
        Ok(self.array::<1>(field)?[0])
    }

    fn u16(&mut self, field: &'static str) -> Result<u16, DecodeError> {
        Ok(u16::from_be_bytes(self.array(field)?))
    }

    fn u64(&mut self, field: &'static str) -> Result<u64, DecodeError> {
        Ok(u64::from_be_bytes(self.array(field)?))
    }

    /// A length-prefixed name, checked against [`MAX_NAME`] but not yet for UTF-8.
    fn name(&mut self, field: &'static str) -> Result<&'a [u8], DecodeError> {
        let len = usize::from(self.u8(field)?);
        if len > MAX_NAME {
            return Err(DecodeError::NameTooLong { field, len });
        }
        self.take(len, field)
    }

    /// The carousel of a content datagram.
    fn advert(&mut self) -> Result<Advert, DecodeError> {
        let digest = self.u64("digest")?;
        let total = self.u16("total")?;
        let count = usize::from(self.u8("objects")?);
        if count > MAX_ADVERT_OBJECTS || count > usize::from(total) {
            return Err(DecodeError::TooManyObjects { count });
        }
        let mut objects = Vec::with_capacity(count);
        for _ in 0..count {
            let name = u32::from_be_bytes(self.array("objects")?);
            let version = u32::from_be_bytes(self.array("objects")?);
            objects.push(AdvertObject { name, version });
        }
        Ok(Advert {
            digest,
            total,
            objects,
        })
    }

    fn remaining(&self) -> usize {
        self.buf.len().saturating_sub(self.pos)
    }
}

/// Validates a name as UTF-8.
fn utf8(bytes: &[u8], field: &'static str) -> Result<String, DecodeError> {
    std::str::from_utf8(bytes)
        .map(str::to_owned)
        .map_err(|_| DecodeError::InvalidUtf8 { field })
}

/// Decodes one datagram of `expected_group`, strictly: any malformed, foreign, unauthenticated
/// (when `key` is set) or unexpectedly authenticated (when it is not) datagram is an error.
/// Never panics. Replays are not detected here; see [`super::ReplayGuard`].
pub fn decode(
    bytes: &[u8],
    expected_group: &str,
    key: Option<&[u8]>,
) -> Result<Message, DecodeError> {
    decode_with_keys(bytes, expected_group, key.as_slice())
}

/// [`decode`] with the group's keys while they are rotated: a MAC made with any of `keys` is
/// accepted; no keys means unauthenticated datagrams only. Each key costs one HMAC, and only
/// for a datagram that the earlier keys did not match.
pub fn decode_with_keys(
    bytes: &[u8],
    expected_group: &str,
    keys: &[&[u8]],
) -> Result<Message, DecodeError> {
    if bytes.len() > MAX_DATAGRAM {
        return Err(DecodeError::Oversized { len: bytes.len() });
    }
    if bytes.len() < MIN_LEN {
        return Err(DecodeError::TooShort { len: bytes.len() });
    }

    // Structure: everything needed to find the fields and the MAC.
    let mut r = Reader { buf: bytes, pos: 0 };
    if r.take(MAGIC.len(), "magic")? != MAGIC {
        return Err(DecodeError::BadMagic);
    }
    let version = r.u8("version")?;
    if version != VERSION {
        return Err(DecodeError::UnsupportedVersion(version));
    }
    let kind = r.u8("type")?;
    let flags = r.u16("flags")?;
    let state = r.u8("state")?;
    let temporal = r.u8("temporal")?;
    let network = r.u8("network")?;
    let mac_flag = r.u8("mac flag")?;
    if mac_flag & !MAC_PRESENT != 0 {
        return Err(DecodeError::ReservedBits(mac_flag));
    }
    let priority = r.u16("priority")?;
    let epoch = r.u64("epoch")?;
    let incarnation = r.u64("incarnation")?;
    let sequence = r.u64("sequence")?;
    let hot_heard = r.u16("hot heard")?;
    let group = r.name("group")?;
    let member = r.name("member")?;
    let hot = r.name("hot")?;
    let content = if kind == MessageType::Content.code() {
        Some(r.advert()?)
    } else {
        None
    };
    let body_len = r.pos;
    let tag = if mac_flag & MAC_PRESENT != 0 {
        Some(r.take(MAC_LEN, "mac")?)
    } else {
        None
    };
    if r.remaining() != 0 {
        return Err(DecodeError::TrailingBytes {
            count: r.remaining(),
        });
    }

    // Filter foreign groups (rejecting only; see the module doc for why before the MAC).
    if group != expected_group.as_bytes() {
        return Err(DecodeError::WrongGroup {
            got: String::from_utf8_lossy(group).into_owned(),
        });
    }

    // Authenticate before interpreting anything.
    match (keys.is_empty(), tag) {
        (false, Some(tag)) => {
            let body = bytes
                .get(..body_len)
                .ok_or(DecodeError::Truncated { field: "mac" })?;
            let verified = keys.iter().any(|key| {
                let mut mac = hmac(key);
                mac.update(body);
                mac.verify_slice(tag).is_ok()
            });
            if !verified {
                return Err(DecodeError::BadMac);
            }
        }
        (false, None) => return Err(DecodeError::MissingMac),
        (true, Some(_)) => return Err(DecodeError::UnexpectedMac),
        (true, None) => {}
    }

    // Semantics.
    let kind = MessageType::from_code(kind).ok_or(DecodeError::UnknownType(kind))?;
    if flags & !Flags::KNOWN.0 != 0 {
        return Err(DecodeError::UnknownFlags(flags & !Flags::KNOWN.0));
    }
    let state = State::from_code(state).ok_or(DecodeError::UnknownState(state))?;
    let temporal =
        TemporalState::from_code(temporal).ok_or(DecodeError::UnknownTemporal(temporal))?;
    Ok(Message {
        kind,
        group: utf8(group, "group")?,
        member: utf8(member, "member")?,
        state,
        temporal,
        priority,
        epoch,
        incarnation,
        sequence,
        network,
        flags: Flags(flags),
        hot: utf8(hot, "hot")?,
        hot_heard_ago: (hot_heard != HOT_HEARD_NONE)
            .then(|| std::time::Duration::from_millis(u64::from(hot_heard))),
        content,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    const KEY: &[u8] = b"test key";

    fn sample() -> Message {
        Message {
            kind: MessageType::Heartbeat,
            group: "infocast".into(),
            member: "ics-a".into(),
            state: State::HS,
            temporal: TemporalState::None,
            priority: 100,
            epoch: 7,
            incarnation: 0xdead_beef,
            sequence: 42,
            network: 1,
            flags: Flags::NET_CHECK_OK,
            hot: "ics-a".into(),
            hot_heard_ago: Some(Duration::from_millis(42)),
            content: None,
        }
    }

    fn content_sample(objects: usize) -> Message {
        Message {
            kind: MessageType::Content,
            hot_heard_ago: None,
            content: Some(Advert {
                digest: 0x0123_4567_89ab_cdef,
                total: 30,
                objects: (0..objects as u32)
                    .map(|i| AdvertObject {
                        name: i,
                        version: !i,
                    })
                    .collect(),
            }),
            ..sample()
        }
    }

    #[test]
    fn content_datagrams_round_trip_and_fit() {
        let long = "x".repeat(MAX_NAME);
        let msg = Message {
            group: long.clone(),
            member: long.clone(),
            hot: long.clone(),
            ..content_sample(MAX_ADVERT_OBJECTS)
        };
        let bytes = enc(&msg, Some(KEY));
        assert_eq!(bytes.len(), 466);
        assert!(bytes.len() <= MAX_DATAGRAM);
        assert_eq!(decode(&bytes, &long, Some(KEY)).unwrap(), msg);
        let empty = content_sample(0);
        assert_eq!(decode(&enc(&empty, None), "infocast", None).unwrap(), empty);
    }

    #[test]
    fn content_only_in_content_datagrams() {
        let hb = Message {
            content: content_sample(1).content,
            ..sample()
        };
        assert_eq!(encode(&hb, None), Err(EncodeError::ContentMismatch));
        let bare = Message {
            content: None,
            ..content_sample(0)
        };
        assert_eq!(encode(&bare, None), Err(EncodeError::ContentMismatch));
        assert_eq!(
            encode(&content_sample(MAX_ADVERT_OBJECTS + 1), None),
            Err(EncodeError::TooManyObjects(MAX_ADVERT_OBJECTS + 1))
        );
        // A listed count above the total, or above the limit, is refused before the MAC.
        let mut bytes = enc(&content_sample(2), Some(KEY));
        let count_at = bytes.len() - MAC_LEN - 2 * 8 - 1;
        assert_eq!(bytes[count_at], 2);
        bytes[count_at - 1] = 1; // total = 1 (low byte), fewer than listed
        bytes[count_at - 2] = 0;
        assert_eq!(
            decode(&bytes, "infocast", Some(KEY)),
            Err(DecodeError::TooManyObjects { count: 2 })
        );
    }

    fn enc(msg: &Message, key: Option<&[u8]>) -> Vec<u8> {
        encode(msg, key).expect("valid message")
    }

    /// Re-signs a tampered keyed datagram so the MAC passes and the semantic check is reached.
    fn resign(bytes: &mut Vec<u8>) {
        let body_len = bytes.len() - MAC_LEN;
        bytes.truncate(body_len);
        let mut mac = hmac(KEY);
        mac.update(bytes);
        let tag = mac.finalize().into_bytes();
        bytes.extend_from_slice(&tag);
    }

    #[test]
    fn layout_matches_the_documented_table() {
        let bytes = enc(&sample(), None);
        assert_eq!(&bytes[0..3], b"RDG");
        assert_eq!(bytes[3], VERSION);
        assert_eq!(bytes[4], 1);
        assert_eq!(&bytes[5..7], &[0, 1]);
        assert_eq!(bytes[7], 0);
        assert_eq!(bytes[8], 0);
        assert_eq!(bytes[9], 1);
        assert_eq!(bytes[10], 0);
        assert_eq!(&bytes[11..13], &100u16.to_be_bytes());
        assert_eq!(&bytes[13..21], &7u64.to_be_bytes());
        assert_eq!(&bytes[21..29], &0xdead_beefu64.to_be_bytes());
        assert_eq!(&bytes[29..37], &42u64.to_be_bytes());
        assert_eq!(&bytes[37..39], &42u16.to_be_bytes());
        assert_eq!(bytes[39], 8);
        assert_eq!(&bytes[40..48], b"infocast");
        assert_eq!(bytes.len(), HEADER_LEN + 3 + 8 + 5 + 5);
        let keyed = enc(&sample(), Some(KEY));
        assert_eq!(keyed[10], MAC_PRESENT);
        assert_eq!(keyed.len(), bytes.len() + MAC_LEN);
    }

    #[test]
    fn smallest_and_largest_datagrams() {
        let mut m = sample();
        m.group.clear();
        m.member.clear();
        m.hot.clear();
        let small = enc(&m, None);
        assert_eq!(small.len(), MIN_LEN);
        assert_eq!(decode(&small, "", None), Ok(m.clone()));
        m.group = "g".repeat(MAX_NAME);
        m.member = "m".repeat(MAX_NAME);
        m.hot = "h".repeat(MAX_NAME);
        let big = enc(&m, Some(KEY));
        assert_eq!(big.len(), 263);
        assert!(big.len() <= MAX_DATAGRAM);
        assert_eq!(decode(&big, &m.group, Some(KEY)), Ok(m));
    }

    #[test]
    fn round_trip_with_and_without_key() {
        let m = sample();
        assert_eq!(decode(&enc(&m, None), "infocast", None), Ok(m.clone()));
        assert_eq!(decode(&enc(&m, Some(KEY)), "infocast", Some(KEY)), Ok(m));
    }

    #[test]
    fn hot_heard_is_optional_whole_milliseconds_and_saturates() {
        let heard = |ago: Option<Duration>| {
            let mut m = sample();
            m.hot_heard_ago = ago;
            decode(&enc(&m, None), "infocast", None).map(|m| m.hot_heard_ago)
        };
        assert_eq!(heard(None), Ok(None));
        assert_eq!(heard(Some(Duration::ZERO)), Ok(Some(Duration::ZERO)));
        // Rounded down: the receiver never thinks the hot member was heard later than it was.
        assert_eq!(
            heard(Some(Duration::from_micros(41_999))),
            Ok(Some(Duration::from_millis(41)))
        );
        let most = Some(Duration::from_millis(0xFFFE));
        assert_eq!(heard(Some(Duration::from_secs(3600))), Ok(most));
        assert_eq!(heard(Some(Duration::from_millis(0xFFFF))), Ok(most));
    }

    #[test]
    fn encode_rejects_long_names_and_unknown_flags() {
        for field in ["group", "member", "hot"] {
            let mut m = sample();
            let long = "x".repeat(MAX_NAME + 1);
            match field {
                "group" => m.group = long,
                "member" => m.member = long,
                _ => m.hot = long,
            }
            assert_eq!(
                encode(&m, None),
                Err(EncodeError::NameTooLong {
                    field,
                    len: MAX_NAME + 1
                })
            );
        }
        // 63 bytes of multi-byte characters fit; 64 bytes do not.
        let mut m = sample();
        m.member = "é".repeat(31) + "a";
        assert!(encode(&m, None).is_ok());
        m.member = "é".repeat(32);
        assert!(encode(&m, None).is_err());
        let mut m = sample();
        m.flags = Flags(0x8001);
        assert_eq!(encode(&m, None), Err(EncodeError::UnknownFlags(0x8000)));
    }

    #[test]
    fn during_a_rotation_any_listed_key_verifies_and_no_other() {
        const NEW: &[u8] = b"new key";
        let old_signed = enc(&sample(), Some(KEY));
        let new_signed = enc(&sample(), Some(NEW));
        for keys in [[KEY, NEW], [NEW, KEY]] {
            assert_eq!(
                decode_with_keys(&old_signed, "infocast", &keys),
                Ok(sample())
            );
            assert_eq!(
                decode_with_keys(&new_signed, "infocast", &keys),
                Ok(sample())
            );
        }
        assert_eq!(
            decode_with_keys(&new_signed, "infocast", &[KEY]),
            Err(DecodeError::BadMac)
        );
        assert_eq!(
            decode_with_keys(&new_signed, "infocast", &[]),
            Err(DecodeError::UnexpectedMac)
        );
        assert_eq!(
            decode_with_keys(&enc(&sample(), None), "infocast", &[KEY, NEW]),
            Err(DecodeError::MissingMac)
        );
    }

    #[test]
    fn each_variant_from_a_crafted_input() {
        let good = enc(&sample(), None);
        let keyed = enc(&sample(), Some(KEY));
        let d = |b: &[u8]| decode(b, "infocast", None);
        let dk = |b: &[u8]| decode(b, "infocast", Some(KEY));

        assert_eq!(d(&[]), Err(DecodeError::TooShort { len: 0 }));
        assert_eq!(d(&good[..41]), Err(DecodeError::TooShort { len: 41 }));
        assert_eq!(
            d(&good[..good.len() - 1]),
            Err(DecodeError::Truncated { field: "hot" })
        );
        assert_eq!(
            dk(&keyed[..keyed.len() - 1]),
            Err(DecodeError::Truncated { field: "mac" })
        );
        assert_eq!(
            d(&vec![0u8; MAX_DATAGRAM + 1]),
            Err(DecodeError::Oversized {
                len: MAX_DATAGRAM + 1
            })
        );

        let mut b = good.clone();
        b[0] = b'X';
        assert_eq!(d(&b), Err(DecodeError::BadMagic));

        let mut b = good.clone();
        b[3] = 1;
        assert_eq!(d(&b), Err(DecodeError::UnsupportedVersion(1)));

        let mut b = good.clone();
        b[4] = 0;
        assert_eq!(d(&b), Err(DecodeError::UnknownType(0)));
        b[4] = 8;
        assert_eq!(d(&b), Err(DecodeError::UnknownType(8)));
        // A heartbeat relabelled as content lacks the carousel the type promises.
        b[4] = 7;
        assert_eq!(d(&b), Err(DecodeError::Truncated { field: "digest" }));

        let mut b = good.clone();
        b[5] = 0x80;
        assert_eq!(d(&b), Err(DecodeError::UnknownFlags(0x8000)));

        let mut b = good.clone();
        b[7] = 6;
        assert_eq!(d(&b), Err(DecodeError::UnknownState(6)));

        let mut b = good.clone();
        b[8] = 8;
        assert_eq!(d(&b), Err(DecodeError::UnknownTemporal(8)));

        let mut b = good.clone();
        b[10] = 0x02;
        assert_eq!(d(&b), Err(DecodeError::ReservedBits(0x02)));
        b[10] = 0x81;
        assert_eq!(d(&b), Err(DecodeError::ReservedBits(0x81)));

        let mut b = good.clone();
        b[39] = 64;
        assert_eq!(
            d(&b),
            Err(DecodeError::NameTooLong {
                field: "group",
                len: 64
            })
        );

        // Member "ics-a" → "ics\xffa": invalid UTF-8.
        let mut m = sample();
        m.member = "icsXa".into();
        let mut b = enc(&m, None);
        let pos = b.windows(5).position(|w| w == b"icsXa").unwrap();
        b[pos + 3] = 0xff;
        assert_eq!(d(&b), Err(DecodeError::InvalidUtf8 { field: "member" }));

        let mut b = good.clone();
        b.push(0);
        assert_eq!(d(&b), Err(DecodeError::TrailingBytes { count: 1 }));
        let mut b = keyed.clone();
        b.extend_from_slice(&[1, 2]);
        assert_eq!(dk(&b), Err(DecodeError::TrailingBytes { count: 2 }));

        assert_eq!(
            decode(&good, "other", None),
            Err(DecodeError::WrongGroup {
                got: "infocast".into()
            })
        );
        assert_eq!(dk(&good), Err(DecodeError::MissingMac));
        assert_eq!(d(&keyed), Err(DecodeError::UnexpectedMac));
        assert_eq!(
            decode(&keyed, "infocast", Some(b"other key")),
            Err(DecodeError::BadMac)
        );
        let mut b = keyed.clone();
        let last = b.len() - 1;
        b[last] ^= 1;
        assert_eq!(dk(&b), Err(DecodeError::BadMac));
    }

    #[test]
    fn semantic_checks_run_after_the_mac() {
        // A tampered type byte is reported as a bad MAC, not as an unknown type...
        let mut b = enc(&sample(), Some(KEY));
        b[4] = 9;
        assert_eq!(decode(&b, "infocast", Some(KEY)), Err(DecodeError::BadMac));
        // ...but a correctly signed datagram with an unknown type is reported as such.
        resign(&mut b);
        assert_eq!(
            decode(&b, "infocast", Some(KEY)),
            Err(DecodeError::UnknownType(9))
        );
    }

    #[test]
    fn reasons_are_distinct_snake_case_labels() {
        let all = [
            DecodeError::TooShort { len: 0 },
            DecodeError::Truncated { field: "hot" },
            DecodeError::Oversized { len: 600 },
            DecodeError::BadMagic,
            DecodeError::UnsupportedVersion(2),
            DecodeError::UnknownType(0),
            DecodeError::UnknownState(9),
            DecodeError::UnknownTemporal(9),
            DecodeError::UnknownFlags(0x10),
            DecodeError::ReservedBits(2),
            DecodeError::NameTooLong {
                field: "group",
                len: 64,
            },
            DecodeError::InvalidUtf8 { field: "hot" },
            DecodeError::TrailingBytes { count: 1 },
            DecodeError::WrongGroup { got: "x".into() },
            DecodeError::MissingMac,
            DecodeError::UnexpectedMac,
            DecodeError::BadMac,
        ];
        let mut seen = std::collections::HashSet::new();
        for e in &all {
            let r = e.reason();
            assert!(
                r.chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_'),
                "{r}"
            );
            assert!(seen.insert(r), "duplicate reason {r}");
            assert!(!e.to_string().is_empty());
        }
        assert_eq!(DecodeError::BadMac.reason(), "bad_mac");
        assert_eq!(DecodeError::Truncated { field: "x" }.reason(), "truncated");
        assert_eq!(
            DecodeError::WrongGroup { got: String::new() }.reason(),
            "wrong_group"
        );
    }
}

//! Heartbeat datagram decoder (`rdg_core::wire::decode`) with and without an HMAC key, and the
//! `ReplayGuard` fed with every accepted message, in order, with a growing monotonic clock.
//!
//! Structure-aware: the input is a sequence of datagrams (layout at `parse`), each either raw bytes or a message
//! built from fuzzer-chosen fields, encoded (optionally signed with the key, so it gets past
//! the MAC check) and then optionally corrupted. Invariants checked besides "never panics":
//! * an accepted message re-encodes and decodes to itself;
//! * right after the guard accepts a message, the same message is rejected as a replay;
//! * the guard never remembers more than its bound.
#![no_main]

use arbitrary::{Arbitrary, Unstructured};
use libfuzzer_sys::fuzz_target;
use rdg_core::content::{Advert, AdvertObject, MAX_ADVERT_OBJECTS};
use rdg_core::wire::{self, Flags, Message, MessageType, ReplayGuard};
use rdg_core::{State, TemporalState};
use std::time::Duration;

const GROUP: &str = "g";

#[derive(Arbitrary, Debug)]
struct Fields {
    kind: u8,
    other_group: bool,
    member: u8,
    state: u8,
    temporal: u8,
    priority: u16,
    epoch: u64,
    incarnation: u8,
    sequence: u64,
    network: u8,
    flags: u16,
    hot: u8,
    hot_heard_ago_ms: Option<u32>,
    /// Digest, total and listed objects of a content datagram.
    content: (u64, u16, Vec<(u32, u32)>),
}

#[derive(Arbitrary, Debug)]
enum Datagram {
    /// Bytes exactly as received.
    Raw(Vec<u8>),
    /// A valid message, then maybe corrupted.
    Built {
        fields: Fields,
        signed: bool,
        /// XOR one byte at this position (modulo length) with this value.
        flip: Option<(u16, u8)>,
        /// Cut to this length (modulo length + 1).
        truncate: Option<u16>,
    },
}

const NAMES: [&str; 4] = ["a", "b", "rdg-status", ""];

fn message(f: &Fields) -> Message {
    let types = MessageType::ALL;
    let kind = types[f.kind as usize % types.len()];
    let (digest, more, listed) = &f.content;
    let objects: Vec<AdvertObject> = listed
        .iter()
        .take(MAX_ADVERT_OBJECTS)
        .map(|&(name, version)| AdvertObject { name, version })
        .collect();
    Message {
        kind,
        group: if f.other_group {
            "h".into()
        } else {
            GROUP.into()
        },
        member: NAMES[f.member as usize % NAMES.len()].into(),
        state: State::ALL[f.state as usize % State::ALL.len()],
        temporal: temporal(f.temporal),
        priority: f.priority,
        epoch: f.epoch,
        incarnation: u64::from(f.incarnation % 4),
        sequence: f.sequence,
        network: f.network % 3,
        flags: Flags(f.flags & Flags::KNOWN.0),
        hot: NAMES[f.hot as usize % NAMES.len()].into(),
        hot_heard_ago: f
            .hot_heard_ago_ms
            .map(|ms| Duration::from_millis(u64::from(ms))),
        content: (kind == MessageType::Content).then(|| Advert {
            digest: *digest,
            total: (objects.len() as u16).saturating_add(*more % 64),
            objects,
        }),
    }
}

fn temporal(code: u8) -> TemporalState {
    TemporalState::ALL[code as usize % TemporalState::ALL.len()]
}

fn bytes_of(d: &Datagram, key: &[u8]) -> Vec<u8> {
    match d {
        Datagram::Raw(b) => b.clone(),
        Datagram::Built {
            fields,
            signed,
            flip,
            truncate,
        } => {
            let msg = message(fields);
            let mut b = wire::encode(&msg, signed.then_some(key))
                .expect("a message with short names and known flags encodes");
            if let Some((at, x)) = flip {
                if !b.is_empty() {
                    let i = *at as usize % b.len();
                    b[i] ^= x;
                }
            }
            if let Some(n) = truncate {
                let n = *n as usize % (b.len() + 1);
                b.truncate(n);
            }
            b
        }
    }
}

fn check_roundtrip(msg: &Message, key: Option<&[u8]>) {
    let again = wire::encode(msg, key).expect("a decoded message re-encodes");
    let back = wire::decode(&again, GROUP, key).expect("a re-encoded message decodes");
    assert_eq!(&back, msg, "decode(encode(m)) != m");
}

/// Input layout (so plain datagrams can be seeds): `key[4] stale_after_ms[u16 BE]
/// max_entries[1]`, then records `dt_ms[1] tag[1] len[1] body[len]` (a short last body is
/// taken as is). `tag` even: `body` is a raw datagram; odd: `body` drives a `Datagram::Built`
/// (through `arbitrary`).
fn parse(data: &[u8]) -> Option<([u8; 4], u16, u8, Vec<(u8, Datagram)>)> {
    if data.len() < 7 {
        return None;
    }
    let key = [data[0], data[1], data[2], data[3]];
    let stale = u16::from_be_bytes([data[4], data[5]]);
    let max = data[6];
    let mut rest = &data[7..];
    let mut out = Vec::new();
    while rest.len() >= 3 && out.len() < 64 {
        let (dt, tag, len) = (rest[0], rest[1], rest[2] as usize);
        let body = &rest[3..(3 + len).min(rest.len())];
        rest = &rest[(3 + len).min(rest.len())..];
        let d = if tag & 1 == 0 {
            Datagram::Raw(body.to_vec())
        } else {
            match Datagram::arbitrary(&mut Unstructured::new(body)) {
                Ok(Datagram::Raw(_)) | Err(_) => continue,
                Ok(d) => d,
            }
        };
        out.push((dt, d));
    }
    Some((key, stale, max, out))
}

fuzz_target!(|data: &[u8]| {
    let Some((key, stale_after_ms, max_entries, datagrams)) = parse(data) else {
        return;
    };
    let key: &[u8] = &key;
    let stale = Duration::from_millis(u64::from(stale_after_ms));
    let max_entries = usize::from(max_entries % 8) + 1;
    let mut guards = [
        ReplayGuard::with_max_entries(stale, max_entries),
        ReplayGuard::with_max_entries(stale, max_entries),
    ];
    let mut now = Duration::ZERO;
    for (dt, d) in &datagrams {
        now += Duration::from_millis(u64::from(*dt));
        let bytes = bytes_of(d, key);
        for (guard, k) in guards.iter_mut().zip([None, Some(key)]) {
            let Ok(msg) = wire::decode(&bytes, GROUP, k) else {
                continue;
            };
            assert_eq!(msg.group, GROUP);
            check_roundtrip(&msg, k);
            if guard.check(&msg, now).is_ok() {
                assert!(
                    guard.check(&msg, now).is_err(),
                    "the same datagram was accepted twice"
                );
            }
            assert!(guard.len() <= max_entries);
        }
        // During a key rotation: the same verdict with the key listed first or second beside
        // another key (whose MAC the fuzzer cannot forge).
        let single = wire::decode(&bytes, GROUP, Some(key));
        for keys in [[key, OTHER_KEY], [OTHER_KEY, key]] {
            assert_eq!(wire::decode_with_keys(&bytes, GROUP, &keys), single);
        }
    }
});

/// A second key that is never the one the structured inputs sign with.
const OTHER_KEY: &[u8] = b"another key, listed while keys are rotated";

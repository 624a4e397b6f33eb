//! Property and robustness tests of the wire codec and replay guard: round trips of arbitrary
//! messages, no panic on arbitrary or mutated input, every bit flip and truncation rejected.

use std::collections::BTreeMap;
use std::time::Duration;

use proptest::prelude::*;
use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rdg_core::content::{Advert, AdvertObject, MAX_ADVERT_OBJECTS};
use rdg_core::wire::{
    DecodeError, Flags, MAC_LEN, MAX_DATAGRAM, MAX_NAME, Message, MessageType, ReplayError,
    ReplayGuard, decode, encode,
};
use rdg_core::{State, TemporalState};

mod common;
use common::ms;

const KEY: &[u8] = b"0123456789abcdef0123456789abcdef";

/// Arbitrary Unicode (any `char`) cut to at most [`MAX_NAME`] bytes of UTF-8.
fn name() -> impl Strategy<Value = String> {
    let unicode = proptest::collection::vec(any::<char>(), 0..=MAX_NAME).prop_map(|chars| {
        let mut s = String::new();
        for c in chars {
            if s.len() + c.len_utf8() > MAX_NAME {
                break;
            }
            s.push(c);
        }
        s
    });
    prop_oneof!["[a-z0-9-]{0,63}", unicode]
}

/// A carousel summary as content datagrams carry it.
fn advert() -> impl Strategy<Value = Advert> {
    (
        any::<u64>(),
        proptest::collection::vec((any::<u32>(), any::<u32>()), 0..=MAX_ADVERT_OBJECTS),
        0u16..100,
    )
        .prop_map(|(digest, objects, more)| Advert {
            digest,
            total: objects.len() as u16 + more,
            objects: objects
                .into_iter()
                .map(|(name, version)| AdvertObject { name, version })
                .collect(),
        })
}

fn message() -> impl Strategy<Value = Message> {
    (
        (
            proptest::sample::select(MessageType::ALL.to_vec()),
            name(),
            name(),
            proptest::sample::select(State::ALL.to_vec()),
            proptest::sample::select(TemporalState::ALL.to_vec()),
            any::<u16>(),
        ),
        (
            any::<u64>(),
            any::<u64>(),
            any::<u64>(),
            any::<u8>(),
            0..=Flags::KNOWN.0,
            name(),
            proptest::option::of(0u64..0xFFFF),
        ),
        advert(),
    )
        .prop_map(
            |(
                (kind, group, member, state, temporal, priority),
                (epoch, incarnation, sequence, network, flags, hot, heard),
                content,
            )| Message {
                kind,
                group,
                member,
                state,
                temporal,
                priority,
                epoch,
                incarnation,
                sequence,
                network,
                flags: Flags(flags),
                hot,
                hot_heard_ago: heard.map(std::time::Duration::from_millis),
                content: (kind == MessageType::Content).then_some(content),
            },
        )
}

fn sample() -> Message {
    Message {
        kind: MessageType::Heartbeat,
        group: "infocast".into(),
        member: "ics-a".into(),
        state: State::HS,
        temporal: TemporalState::None,
        priority: 100,
        epoch: 3,
        incarnation: 0x0123_4567_89ab_cdef,
        sequence: 1000,
        network: 0,
        flags: Flags::NET_CHECK_OK,
        hot: "ics-a".into(),
        hot_heard_ago: None,
        content: None,
    }
}

/// A few messages covering empty, ASCII, multi-byte and maximum-length names.
fn samples() -> Vec<Message> {
    let mut out = vec![sample()];
    let mut m = sample();
    m.kind = MessageType::SwitchoverAck;
    m.group = "ģrøüp-ünïcode-🚀".into();
    m.member = "ч".repeat(31);
    m.hot = String::new();
    m.flags = Flags::KNOWN;
    m.state = State::TS;
    m.temporal = TemporalState::HotOrSbsToSbsWaitAnsConn;
    m.network = 255;
    m.priority = u16::MAX;
    m.epoch = u64::MAX;
    m.incarnation = 0;
    m.sequence = u64::MAX;
    out.push(m);
    let mut m = sample();
    m.kind = MessageType::StatusQuery;
    m.group = "g".repeat(MAX_NAME);
    m.member = String::new();
    m.hot = "h".repeat(MAX_NAME);
    out.push(m);
    let mut m = sample();
    m.kind = MessageType::Content;
    m.content = Some(Advert {
        digest: u64::MAX,
        total: MAX_ADVERT_OBJECTS as u16,
        objects: (0..MAX_ADVERT_OBJECTS as u32)
            .map(|i| AdvertObject {
                name: i,
                version: i << 8,
            })
            .collect(),
    });
    out.push(m);
    out
}

#[test]
fn every_type_state_and_temporal_round_trips() {
    for kind in MessageType::ALL {
        for state in State::ALL {
            for temporal in TemporalState::ALL {
                let mut m = sample();
                m.kind = kind;
                m.content = (kind == MessageType::Content).then(|| Advert {
                    digest: 42,
                    total: 3,
                    objects: vec![AdvertObject {
                        name: 1,
                        version: 2,
                    }],
                });
                m.state = state;
                m.temporal = temporal;
                for key in [None, Some(KEY)] {
                    let bytes = encode(&m, key).unwrap();
                    assert_eq!(decode(&bytes, "infocast", key), Ok(m.clone()));
                }
            }
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn arbitrary_messages_round_trip(msg in message(), key in proptest::collection::vec(any::<u8>(), 0..80)) {
        let plain = encode(&msg, None).unwrap();
        prop_assert!(plain.len() <= MAX_DATAGRAM);
        prop_assert_eq!(decode(&plain, &msg.group, None), Ok(msg.clone()));

        let signed = encode(&msg, Some(&key)).unwrap();
        prop_assert_eq!(signed.len(), plain.len() + MAC_LEN);
        prop_assert_eq!(decode(&signed, &msg.group, Some(&key)), Ok(msg.clone()));

        // The MAC policy is enforced both ways, and another key never verifies.
        prop_assert_eq!(decode(&plain, &msg.group, Some(&key)), Err(DecodeError::MissingMac));
        prop_assert_eq!(decode(&signed, &msg.group, None), Err(DecodeError::UnexpectedMac));
        let mut other = key.clone();
        other.push(1);
        prop_assert_eq!(decode(&signed, &msg.group, Some(&other)), Err(DecodeError::BadMac));

        // Another group's datagram is filtered.
        let foreign = format!("{}x", msg.group);
        prop_assert_eq!(
            decode(&plain, &foreign, None),
            Err(DecodeError::WrongGroup { got: msg.group.clone() })
        );
    }

    #[test]
    fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..=600)) {
        let _ = decode(&bytes, "infocast", None);
        let _ = decode(&bytes, "infocast", Some(KEY));
        let _ = decode(&bytes, "", None);
    }
}

/// Decodes without panicking; an accepted datagram must re-encode to exactly the same bytes
/// (the format has a single encoding per message).
fn decode_is_canonical(bytes: &[u8], group: &str, key: Option<&[u8]>) {
    if let Ok(m) = decode(bytes, group, key) {
        assert_eq!(encode(&m, key).unwrap(), bytes);
    }
}

/// Magic, version and a header of random values mostly near the valid ranges, three names of
/// random length (sometimes above [`MAX_NAME`]) and bytes (sometimes not UTF-8), the group
/// usually empty (so the group check passes), sometimes a MAC-sized tail and extra bytes.
fn plausible(rng: &mut ChaCha8Rng) -> Vec<u8> {
    let mut d = b"RDG\x01".to_vec();
    d.push(rng.random_range(0..=8)); // type
    let flags: u16 = if rng.random_range(0..8) == 0 {
        rng.random()
    } else {
        rng.random_range(0..=Flags::KNOWN.0)
    };
    d.extend_from_slice(&flags.to_be_bytes());
    d.push(rng.random_range(0..=7)); // state
    d.push(rng.random_range(0..=9)); // temporal
    d.push(rng.random()); // network
    let mac_flag: u8 = if rng.random_range(0..16) == 0 {
        rng.random()
    } else {
        rng.random_range(0..=1)
    };
    d.push(mac_flag);
    let mut numbers = [0u8; 26];
    rng.fill(&mut numbers[..]);
    d.extend_from_slice(&numbers);
    for field in 0..3 {
        let len = if field == 0 && rng.random_range(0..4) != 0 {
            0
        } else {
            rng.random_range(0..=70usize)
        };
        d.push(len as u8);
        // Mostly lowercase letters, about 3% raw bytes (often invalid UTF-8).
        let mut bytes = vec![0u8; len];
        rng.fill(&mut bytes[..]);
        d.extend(
            bytes
                .into_iter()
                .map(|b| if b >= 0xf8 { b } else { b'a' + b % 26 }),
        );
    }
    if mac_flag & 1 == 1 || rng.random_range(0..4) == 0 {
        let mut tail = vec![0u8; rng.random_range(MAC_LEN - 2..=MAC_LEN + 2)];
        rng.fill(&mut tail[..]);
        d.extend_from_slice(&tail);
    }
    d
}

#[test]
fn random_inputs_never_panic() {
    let mut rng = ChaCha8Rng::seed_from_u64(0x5eed_0001);
    let valid: Vec<(String, Vec<u8>)> = samples()
        .iter()
        .flat_map(|m| [None, Some(KEY)].map(|key| (m.group.clone(), encode(m, key).unwrap())))
        .collect();
    let mut buf = vec![0u8; 600];
    for i in 0..100_000u32 {
        // Pure noise, lengths 0..=600.
        let len = rng.random_range(0..=600usize);
        rng.fill(&mut buf[..len]);
        decode_is_canonical(&buf[..len], "infocast", None);
        decode_is_canonical(&buf[..len], "infocast", Some(KEY));

        // Structurally plausible datagrams with random field values, so parsing goes deep.
        let d = plausible(&mut rng);
        decode_is_canonical(&d, "", None);
        decode_is_canonical(&d, "", Some(KEY));

        // A valid datagram with a few random bytes changed, maybe resized.
        let (group, original) = &valid[i as usize % valid.len()];
        let mut d = original.clone();
        for _ in 0..rng.random_range(1..=4) {
            let pos = rng.random_range(0..d.len());
            d[pos] = rng.random();
        }
        match rng.random_range(0..4) {
            0 => d.truncate(rng.random_range(0..=d.len())),
            1 => d.push(rng.random()),
            _ => {}
        }
        let group = if i % 4 == 0 { "" } else { group.as_str() };
        decode_is_canonical(&d, group, None);
        decode_is_canonical(&d, group, Some(KEY));
    }
}

#[test]
fn every_single_bit_flip_is_detected() {
    for m in samples() {
        // With a key, nothing that was tampered with is ever accepted.
        let signed = encode(&m, Some(KEY)).unwrap();
        for bit in 0..signed.len() * 8 {
            let mut d = signed.clone();
            d[bit / 8] ^= 1 << (bit % 8);
            let err = decode(&d, &m.group, Some(KEY)).expect_err("tampered datagram accepted");
            assert!(
                matches!(
                    err,
                    DecodeError::BadMac
                        | DecodeError::BadMagic
                        | DecodeError::UnsupportedVersion(_)
                        | DecodeError::ReservedBits(_)
                        | DecodeError::NameTooLong { .. }
                        | DecodeError::Truncated { .. }
                        | DecodeError::TrailingBytes { .. }
                        | DecodeError::TooManyObjects { .. }
                        | DecodeError::WrongGroup { .. }
                ),
                "bit {bit}: unexpected {err:?}"
            );
        }
        // Without a key, a flip is either rejected or visibly changes the message.
        let plain = encode(&m, None).unwrap();
        for bit in 0..plain.len() * 8 {
            let mut d = plain.clone();
            d[bit / 8] ^= 1 << (bit % 8);
            if let Ok(got) = decode(&d, &m.group, None) {
                assert_ne!(got, m, "bit {bit} flipped without effect");
            }
        }
    }
}

#[test]
fn every_truncation_is_rejected() {
    for m in samples() {
        for key in [None, Some(KEY)] {
            let full = encode(&m, key).unwrap();
            for len in 0..full.len() {
                let err = decode(&full[..len], &m.group, key).expect_err("truncation accepted");
                assert!(
                    matches!(
                        err,
                        DecodeError::TooShort { .. } | DecodeError::Truncated { .. }
                    ),
                    "len {len}: unexpected {err:?}"
                );
            }
        }
    }
}

#[test]
fn oversized_and_padded_datagrams_are_rejected() {
    let mut d = encode(&sample(), Some(KEY)).unwrap();
    d.resize(MAX_DATAGRAM, 0);
    let extra = MAX_DATAGRAM - encode(&sample(), Some(KEY)).unwrap().len();
    assert_eq!(
        decode(&d, "infocast", Some(KEY)),
        Err(DecodeError::TrailingBytes { count: extra })
    );
    d.push(0);
    assert_eq!(
        decode(&d, "infocast", Some(KEY)),
        Err(DecodeError::Oversized {
            len: MAX_DATAGRAM + 1
        })
    );
    assert_eq!(
        decode(&vec![0xff; 65_507], "infocast", None).map_err(|e| e.reason()),
        Err("oversized")
    );
}

#[test]
fn encode_refuses_what_decode_would_reject() {
    let mut m = sample();
    m.hot = "x".repeat(MAX_NAME + 1);
    assert!(encode(&m, None).is_err());
    let mut m = sample();
    m.flags = Flags(1 << 15);
    assert!(encode(&m, Some(KEY)).is_err());
}

#[test]
fn replay_guard_scenarios() {
    let stale = Duration::from_millis(500);
    let mut g = ReplayGuard::new(stale);
    let mut m = sample();

    // In order on both networks: every copy accepted once.
    for seq in 1..=3 {
        for net in 0..2 {
            m.sequence = seq;
            m.network = net;
            assert_eq!(g.check(&m, ms(seq * 100)), Ok(()));
        }
    }
    // Duplicate and lower sequences rejected, per network.
    m.network = 0;
    m.sequence = 3;
    assert_eq!(
        g.check(&m, ms(400)),
        Err(ReplayError::Replayed { last: 3, got: 3 })
    );
    m.sequence = 1;
    assert_eq!(
        g.check(&m, ms(400)).map_err(|e| e.reason()),
        Err("replayed")
    );
    // Network 1 may get ahead alone.
    m.network = 1;
    m.sequence = 4;
    assert_eq!(g.check(&m, ms(400)), Ok(()));

    // A restart with a higher incarnation is accepted immediately...
    let old = m.incarnation;
    m.incarnation = old + 1;
    m.sequence = 1;
    assert_eq!(g.check(&m, ms(450)), Ok(()));
    // ...the old incarnation's datagrams are refused while the new one is alive...
    m.incarnation = old;
    m.sequence = 99;
    assert_eq!(
        g.check(&m, ms(900)).map_err(|e| e.reason()),
        Err("stale_incarnation")
    );
    // ...and a lower incarnation is accepted once the current one is silent for stale_after.
    m.incarnation = 7;
    assert_eq!(g.check(&m, ms(950)), Ok(()));
}

proptest! {
    /// Whatever order datagrams arrive in, the guard accepts exactly the ones whose sequence is
    /// above everything accepted before on the same network.
    #[test]
    fn replay_guard_accepts_each_sequence_once_per_network(
        arrivals in proptest::collection::vec((0u8..2, 0u64..20), 0..200),
    ) {
        let mut g = ReplayGuard::new(Duration::from_secs(1));
        let mut highest: BTreeMap<u8, u64> = BTreeMap::new();
        let mut m = sample();
        for (i, (net, seq)) in arrivals.into_iter().enumerate() {
            m.network = net;
            m.sequence = seq;
            let expected = highest.get(&net).is_none_or(|&h| seq > h);
            let got = g.check(&m, Duration::from_millis(i as u64));
            prop_assert_eq!(got.is_ok(), expected);
            if expected {
                highest.insert(net, seq);
            }
        }
    }
}

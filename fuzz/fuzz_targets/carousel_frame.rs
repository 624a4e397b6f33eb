//! Carousel datagrams: `rdg_infocast::frame::decode` and what the receiver does with every
//! datagram (its private `on_datagram`, mirrored here from the public pieces): chunks and
//! announcements into `reassembly::Reassembly`, accepted datagrams into `timeline::Timeline`,
//! then the report figures. `Receiver` itself only reads from a UDP socket, so it is not
//! driven directly.
//!
//! Structure-aware (layout at `parse`): the input is a sequence of actions, each a raw datagram (optionally with
//! its length and CRC fields patched so it passes the frame checks), a chunk or announcement
//! built from fuzzer-chosen fields, or a whole object (announcement + chunks, in a chosen
//! order). Invariant besides "never panics": a decoded frame re-encodes to the same bytes.
#![no_main]

use arbitrary::{Arbitrary, Unstructured};
use libfuzzer_sys::fuzz_target;
use rdg_core::config::ObjectKind;
use rdg_infocast::frame::{self, Announcement, Chunk, Frame, HEADER_LEN, ObjectRef};
use rdg_infocast::reassembly::Reassembly;
use rdg_infocast::timeline::{Sender, Timeline};
use std::net::{IpAddr, Ipv4Addr};
use std::time::{Duration, Instant};

#[derive(Arbitrary, Debug, Clone, Copy)]
struct Obj {
    session: u8,
    object_id: u8,
    version: u32,
    chunk_count: u32,
}

impl Obj {
    fn get(self) -> ObjectRef {
        ObjectRef {
            session: u32::from(self.session % 4),
            object_id: u32::from(self.object_id % 8),
            version: self.version,
            chunk_count: self.chunk_count,
        }
    }
}

#[derive(Arbitrary, Debug)]
enum Action {
    Chunk {
        object: Obj,
        index: u32,
        payload: Vec<u8>,
    },
    Announce {
        object: Obj,
        name: String,
        bootcast: bool,
        total_size: u64,
        chunk_size: u32,
        crc: Option<u32>,
    },
    Whole {
        session: u8,
        object_id: u8,
        name: String,
        data: Vec<u8>,
        chunk_size: u8,
        with_crc: bool,
        order: Vec<u8>,
        announce_last: bool,
    },
}

/// Sets the payload length and CRC fields so the header checks pass.
fn patch(b: &mut [u8]) {
    if b.len() < HEADER_LEN {
        return;
    }
    let len = (b.len() - HEADER_LEN) as u32;
    b[28..32].copy_from_slice(&len.to_be_bytes());
    let mut h = crc32fast::Hasher::new();
    h.update(&b[..32]);
    h.update(&b[HEADER_LEN..]);
    let crc = h.finalize();
    b[32..36].copy_from_slice(&crc.to_be_bytes());
}

fn datagrams(a: &Action) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    match a {
        Action::Chunk {
            object,
            index,
            payload,
        } => {
            let mut b = Vec::new();
            Chunk {
                object: object.get(),
                index: *index,
                payload,
            }
            .encode(&mut b);
            out.push(b);
        }
        Action::Announce {
            object,
            name,
            bootcast,
            total_size,
            chunk_size,
            crc,
        } => {
            let mut b = Vec::new();
            Announcement {
                object: object.get(),
                name: name.clone(),
                kind: if *bootcast {
                    ObjectKind::Bootcastinfo
                } else {
                    ObjectKind::Generic
                },
                total_size: *total_size,
                chunk_size: *chunk_size,
                object_crc: *crc,
            }
            .encode(&mut b);
            out.push(b);
        }
        Action::Whole {
            session,
            object_id,
            name,
            data,
            chunk_size,
            with_crc,
            order,
            announce_last,
        } => {
            let chunk_size = u32::from(*chunk_size).max(1);
            let count = frame::chunk_count(data.len() as u64, chunk_size) as u32;
            let object = ObjectRef {
                session: u32::from(session % 4),
                object_id: u32::from(object_id % 8),
                version: crc32fast::hash(data),
                chunk_count: count,
            };
            let mut ann = Vec::new();
            Announcement {
                object,
                name: if name.is_empty() {
                    "o".into()
                } else {
                    name.clone()
                },
                kind: ObjectKind::Generic,
                total_size: data.len() as u64,
                chunk_size,
                object_crc: with_crc.then(|| crc32fast::hash(data)),
            }
            .encode(&mut ann);
            if !announce_last {
                out.push(ann.clone());
            }
            let mut indices: Vec<u32> = (0..count).collect();
            // A fuzzer-chosen permutation (and duplicates) of the chunks.
            for (i, o) in order.iter().enumerate() {
                let n = indices.len();
                indices.swap(i % n, *o as usize % n);
            }
            for &o in order.iter().take(4) {
                indices.push(u32::from(o) % count);
            }
            for i in indices.into_iter().take(512) {
                let start = (i * chunk_size) as usize;
                let end = (start + chunk_size as usize).min(data.len());
                let mut b = Vec::new();
                Chunk {
                    object,
                    index: i,
                    payload: &data[start.min(end)..end],
                }
                .encode(&mut b);
                out.push(b);
            }
            if *announce_last {
                out.push(ann);
            }
        }
    }
    out
}

/// Input layout (so plain datagrams can be seeds): records `dt_ms[1] tag[1] len[u16 BE]
/// body[len]` (a short last body is taken as is). `tag & 3`: 0 = `body` is a raw datagram,
/// 1 = raw with its length and CRC fields patched, 2/3 = `body` drives an `Action` (through
/// `arbitrary`); `tag & 4` picks the second sender address.
fn parse(data: &[u8]) -> Vec<(u8, bool, Vec<Vec<u8>>)> {
    let mut rest = data;
    let mut out = Vec::new();
    while rest.len() >= 4 && out.len() < 64 {
        let (dt, tag) = (rest[0], rest[1]);
        let len = usize::from(u16::from_be_bytes([rest[2], rest[3]]));
        let end = (4 + len).min(rest.len());
        let body = &rest[4..end];
        rest = &rest[end..];
        let dgrams = match tag & 3 {
            0 => vec![body.to_vec()],
            1 => {
                let mut b = body.to_vec();
                patch(&mut b);
                vec![b]
            }
            _ => match Action::arbitrary(&mut Unstructured::new(body)) {
                Ok(a) => datagrams(&a),
                Err(_) => continue,
            },
        };
        out.push((dt, tag & 4 != 0, dgrams));
    }
    out
}

fuzz_target!(|data: &[u8]| {
    let start = Instant::now();
    let mut now = start;
    let mut objects = Reassembly::default();
    let mut timeline = Timeline::new(start);
    let mut malformed = 0u64;
    for (dt, second_sender, dgrams) in parse(data) {
        for bytes in dgrams {
            now += Duration::from_millis(u64::from(dt));
            let from = IpAddr::V4(Ipv4Addr::new(10, 0, 0, if second_sender { 2 } else { 1 }));
            let (session, is_chunk, accepted) = match frame::decode(&bytes) {
                Ok(f) => {
                    let mut again = Vec::new();
                    match &f {
                        Frame::Chunk(c) => c.encode(&mut again),
                        Frame::Announcement(a) => a.encode(&mut again),
                    }
                    assert_eq!(again, bytes, "a decoded frame re-encodes differently");
                    match f {
                        Frame::Chunk(c) => (c.object.session, true, objects.on_chunk(&c)),
                        Frame::Announcement(a) => {
                            (a.object.session, false, objects.on_announcement(a))
                        }
                    }
                }
                Err(e) => {
                    let _ = e.to_string();
                    malformed += 1;
                    continue;
                }
            };
            if accepted.is_err() {
                malformed += 1;
                continue;
            }
            timeline.on_datagram(
                now,
                Sender {
                    address: from,
                    session,
                },
                bytes.len(),
                is_chunk,
            );
        }
    }
    for f in objects.figures() {
        let _ = objects.last_complete(&f.name);
    }
    let _ = (
        timeline.longest_silence(),
        timeline.first_chunk(),
        timeline.first_and_last(),
    );
    let _ = (
        timeline.switches().len(),
        timeline.switch_count(),
        timeline.interleaved(),
        timeline.totals(),
    );
    let _ = timeline.addresses().count();
    let _ = malformed;
});

//! The carousel's datagram format: every UDP datagram is one frame, a fixed header and a
//! payload, protected by a CRC32 over both. Big-endian throughout.
//!
//! Header (36 bytes):
//!
//! | offset | size | field                                                              |
//! |-------:|-----:|--------------------------------------------------------------------|
//! |      0 |    4 | magic `RDGC`                                                       |
//! |      4 |    1 | format version, [`FORMAT_VERSION`] (1)                             |
//! |      5 |    1 | kind: 1 = chunk, 2 = announcement                                  |
//! |      6 |    2 | reserved, 0                                                        |
//! |      8 |    4 | session: random per transmitter run (per gate opening)            |
//! |     12 |    4 | object id: the object's index in its channel                       |
//! |     16 |    4 | object version: CRC32 of the object's bytes (changes with them)    |
//! |     20 |    4 | chunk index (0 in an announcement)                                 |
//! |     24 |    4 | chunk count of the object (at least 1)                             |
//! |     28 |    4 | payload length: exactly the bytes after the header                 |
//! |     32 |    4 | CRC32 (IEEE, `crc32fast`) of bytes 0..32 followed by the payload   |
//!
//! A **chunk**'s payload is bytes `index * chunkSize ..` of the object (the announcement gives
//! `chunkSize`); an empty object is one empty chunk.
//!
//! An **announcement**'s payload says what the object is, so a receiver that joins mid-cycle
//! knows what it is collecting. It is sent at the start of each object cycle and every
//! [`ANNOUNCE_EVERY`] chunks:
//!
//! | offset | size | field                                                              |
//! |-------:|-----:|--------------------------------------------------------------------|
//! |      0 |    1 | object type: 0 = generic, 1 = bootcastinfo                         |
//! |      1 |    1 | flags: bit 0 = whole-object CRC present (`crc: true`); others 0     |
//! |      2 |    2 | name length N (1..=[`MAX_NAME`])                                   |
//! |      4 |    8 | total size of the object in bytes                                  |
//! |     12 |    4 | chunk size: payload bytes of every chunk but the last (at least 1) |
//! |     16 |    4 | CRC32 of the whole object when flag bit 0 is set, else 0           |
//! |     20 |    N | object name, UTF-8                                                 |
//!
//! Decoding is strict: every field is checked (magic, version, kind, reserved bits, lengths
//! exact, index below count, chunk count consistent with size and chunk size, CRC) and a
//! mismatch is a typed [`FrameError`], never a panic.

use rdg_core::config::ObjectKind;

/// First four bytes of every frame.
pub const MAGIC: [u8; 4] = *b"RDGC";
/// The format version this code writes and reads.
pub const FORMAT_VERSION: u8 = 1;
/// Bytes of the fixed header.
pub const HEADER_LEN: usize = 36;
/// Bytes of an announcement payload before the name.
pub const ANNOUNCEMENT_FIXED_LEN: usize = 20;
/// Longest object name in an announcement, in bytes.
pub const MAX_NAME: usize = 1024;
/// Largest UDP payload over IPv4; no frame is longer.
pub const MAX_DATAGRAM: usize = 65_507;
/// An announcement is repeated every this many chunks within an object.
pub const ANNOUNCE_EVERY: u32 = 64;

const KIND_CHUNK: u8 = 1;
const KIND_ANNOUNCEMENT: u8 = 2;
const FLAG_CRC: u8 = 1;

/// The header fields shared by both kinds of frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ObjectRef {
    /// Random per transmitter run; tells two transmitters apart even from one address.
    pub session: u32,
    /// The object's index in its channel.
    pub object_id: u32,
    /// CRC32 of the object's bytes: changes when the source changes.
    pub version: u32,
    /// Number of chunks of the object (at least 1).
    pub chunk_count: u32,
}

/// One piece of an object.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Chunk<'a> {
    /// Which object, version and session.
    pub object: ObjectRef,
    /// Position of this chunk (below `object.chunk_count`).
    pub index: u32,
    /// The object's bytes `index * chunk_size ..`.
    pub payload: &'a [u8],
}

/// What an object is: sent before and during its chunks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Announcement {
    /// Which object, version and session.
    pub object: ObjectRef,
    /// The object's name (`Processing "<name>"`).
    pub name: String,
    /// Boot descriptor or any other file.
    pub kind: ObjectKind,
    /// Size of the whole object in bytes.
    pub total_size: u64,
    /// Payload bytes of every chunk but the last.
    pub chunk_size: u32,
    /// CRC32 of the whole object, when the object is configured with `crc: true`.
    pub object_crc: Option<u32>,
}

/// A decoded datagram.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Frame<'a> {
    /// A piece of an object.
    Chunk(Chunk<'a>),
    /// What an object is.
    Announcement(Announcement),
}

/// Why a datagram is not a valid frame.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FrameError {
    /// Shorter than the header.
    #[error("{len} bytes is shorter than the {HEADER_LEN}-byte header")]
    TooShort {
        /// Datagram length.
        len: usize,
    },
    /// Does not start with `RDGC`.
    #[error("bad magic {0:02x?}")]
    BadMagic([u8; 4]),
    /// A format version this code does not read.
    #[error("unsupported format version {0}")]
    UnsupportedVersion(u8),
    /// Neither chunk nor announcement.
    #[error("unknown frame kind {0}")]
    UnknownKind(u8),
    /// Reserved header bits set.
    #[error("reserved header bytes are {0:#06x}, not 0")]
    Reserved(u16),
    /// The declared payload length is not what follows the header.
    #[error("payload length {declared} declared, {actual} present")]
    LengthMismatch {
        /// From the header.
        declared: u32,
        /// In the datagram.
        actual: usize,
    },
    /// The CRC does not match: the datagram was damaged.
    #[error("CRC32 {carried:#010x} carried, {computed:#010x} computed")]
    BadCrc {
        /// From the header.
        carried: u32,
        /// Over the received bytes.
        computed: u32,
    },
    /// A chunk count of 0.
    #[error("chunk count 0")]
    ZeroChunkCount,
    /// A chunk index not below the chunk count.
    #[error("chunk index {index} not below chunk count {count}")]
    IndexOutOfRange {
        /// From the header.
        index: u32,
        /// From the header.
        count: u32,
    },
    /// An announcement that does not follow its layout.
    #[error("invalid announcement: {0}")]
    Announcement(&'static str),
    /// An announcement whose chunk count does not follow from size and chunk size.
    #[error(
        "announcement says {count} chunks, but {size} bytes in chunks of {chunk_size} make {expected}"
    )]
    ChunkCountMismatch {
        /// From the header.
        count: u32,
        /// Total size.
        size: u64,
        /// Chunk size.
        chunk_size: u32,
        /// What size and chunk size imply.
        expected: u64,
    },
}

/// Chunks an object of `size` bytes in chunks of `chunk_size` makes (an empty object is one
/// empty chunk).
pub fn chunk_count(size: u64, chunk_size: u32) -> u64 {
    size.div_ceil(u64::from(chunk_size.max(1))).max(1)
}

impl Chunk<'_> {
    /// Appends the encoded chunk to `out` (cleared first).
    pub fn encode(&self, out: &mut Vec<u8>) {
        encode(out, KIND_CHUNK, &self.object, self.index, |o| {
            o.extend_from_slice(self.payload)
        });
    }
}

impl Announcement {
    /// Appends the encoded announcement to `out` (cleared first).
    pub fn encode(&self, out: &mut Vec<u8>) {
        encode(out, KIND_ANNOUNCEMENT, &self.object, 0, |o| {
            o.push(match self.kind {
                ObjectKind::Generic => 0,
                ObjectKind::Bootcastinfo => 1,
            });
            o.push(if self.object_crc.is_some() {
                FLAG_CRC
            } else {
                0
            });
            let name = &self.name.as_bytes()[..self.name.len().min(MAX_NAME)];
            o.extend_from_slice(&(name.len() as u16).to_be_bytes());
            o.extend_from_slice(&self.total_size.to_be_bytes());
            o.extend_from_slice(&self.chunk_size.to_be_bytes());
            o.extend_from_slice(&self.object_crc.unwrap_or(0).to_be_bytes());
            o.extend_from_slice(name);
        });
    }
}

fn encode(
    out: &mut Vec<u8>,
    kind: u8,
    obj: &ObjectRef,
    index: u32,
    body: impl FnOnce(&mut Vec<u8>),
) {
    out.clear();
    out.extend_from_slice(&MAGIC);
    out.push(FORMAT_VERSION);
    out.push(kind);
    out.extend_from_slice(&[0, 0]);
    for v in [
        obj.session,
        obj.object_id,
        obj.version,
        index,
        obj.chunk_count,
    ] {
        out.extend_from_slice(&v.to_be_bytes());
    }
    out.extend_from_slice(&[0; 8]);
    body(out);
    let payload_len = (out.len() - HEADER_LEN) as u32;
    out[28..32].copy_from_slice(&payload_len.to_be_bytes());
    let mut h = crc32fast::Hasher::new();
    h.update(&out[..32]);
    h.update(&out[HEADER_LEN..]);
    let crc = h.finalize();
    out[32..36].copy_from_slice(&crc.to_be_bytes());
}

fn u16_at(b: &[u8], at: usize) -> u16 {
    u16::from_be_bytes([b[at], b[at + 1]])
}

fn u32_at(b: &[u8], at: usize) -> u32 {
    u32::from_be_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

fn u64_at(b: &[u8], at: usize) -> u64 {
    (u64::from(u32_at(b, at)) << 32) | u64::from(u32_at(b, at + 4))
}

/// Decodes one datagram, checking every field.
pub fn decode(b: &[u8]) -> Result<Frame<'_>, FrameError> {
    if b.len() < HEADER_LEN {
        return Err(FrameError::TooShort { len: b.len() });
    }
    let magic = [b[0], b[1], b[2], b[3]];
    if magic != MAGIC {
        return Err(FrameError::BadMagic(magic));
    }
    if b[4] != FORMAT_VERSION {
        return Err(FrameError::UnsupportedVersion(b[4]));
    }
    let kind = b[5];
    if kind != KIND_CHUNK && kind != KIND_ANNOUNCEMENT {
        return Err(FrameError::UnknownKind(kind));
    }
    let reserved = u16_at(b, 6);
    if reserved != 0 {
        return Err(FrameError::Reserved(reserved));
    }
    let declared = u32_at(b, 28);
    let payload = &b[HEADER_LEN..];
    if declared as usize != payload.len() {
        return Err(FrameError::LengthMismatch {
            declared,
            actual: payload.len(),
        });
    }
    let carried = u32_at(b, 32);
    let mut h = crc32fast::Hasher::new();
    h.update(&b[..32]);
    h.update(payload);
    let computed = h.finalize();
    if carried != computed {
        return Err(FrameError::BadCrc { carried, computed });
    }
    let object = ObjectRef {
        session: u32_at(b, 8),
        object_id: u32_at(b, 12),
        version: u32_at(b, 16),
        chunk_count: u32_at(b, 24),
    };
    let index = u32_at(b, 20);
    if object.chunk_count == 0 {
        return Err(FrameError::ZeroChunkCount);
    }
    if kind == KIND_CHUNK {
        if index >= object.chunk_count {
            return Err(FrameError::IndexOutOfRange {
                index,
                count: object.chunk_count,
            });
        }
        return Ok(Frame::Chunk(Chunk {
            object,
            index,
            payload,
        }));
    }
    if index != 0 {
        return Err(FrameError::Announcement("chunk index is not 0"));
    }
    decode_announcement(object, payload).map(Frame::Announcement)
}

fn decode_announcement(object: ObjectRef, p: &[u8]) -> Result<Announcement, FrameError> {
    if p.len() < ANNOUNCEMENT_FIXED_LEN {
        return Err(FrameError::Announcement("shorter than its fixed part"));
    }
    let kind = match p[0] {
        0 => ObjectKind::Generic,
        1 => ObjectKind::Bootcastinfo,
        _ => return Err(FrameError::Announcement("unknown object type")),
    };
    let flags = p[1];
    if flags & !FLAG_CRC != 0 {
        return Err(FrameError::Announcement("unknown flags"));
    }
    let name_len = usize::from(u16_at(p, 2));
    if name_len == 0 || name_len > MAX_NAME {
        return Err(FrameError::Announcement("name length out of range"));
    }
    if p.len() != ANNOUNCEMENT_FIXED_LEN + name_len {
        return Err(FrameError::Announcement("name length does not match"));
    }
    let total_size = u64_at(p, 4);
    let chunk_size = u32_at(p, 12);
    if chunk_size == 0 {
        return Err(FrameError::Announcement("chunk size 0"));
    }
    let crc = u32_at(p, 16);
    let object_crc = if flags & FLAG_CRC != 0 {
        Some(crc)
    } else if crc != 0 {
        return Err(FrameError::Announcement("object CRC without its flag"));
    } else {
        None
    };
    let expected = chunk_count(total_size, chunk_size);
    if expected != u64::from(object.chunk_count) {
        return Err(FrameError::ChunkCountMismatch {
            count: object.chunk_count,
            size: total_size,
            chunk_size,
            expected,
        });
    }
    let name = std::str::from_utf8(&p[ANNOUNCEMENT_FIXED_LEN..])
        .map_err(|_| FrameError::Announcement("name is not UTF-8"))?
        .to_string();
    Ok(Announcement {
        object,
        name,
        kind,
        total_size,
        chunk_size,
        object_crc,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn obj(count: u32) -> ObjectRef {
        ObjectRef {
            session: 0xdead_beef,
            object_id: 3,
            version: 0x1234_5678,
            chunk_count: count,
        }
    }

    fn announcement() -> Announcement {
        Announcement {
            object: obj(3),
            name: "bootcast_1900".into(),
            kind: ObjectKind::Bootcastinfo,
            total_size: 2049,
            chunk_size: 1024,
            object_crc: Some(7),
        }
    }

    #[test]
    fn header_layout_is_the_documented_one() {
        let mut out = Vec::new();
        Chunk {
            object: obj(5),
            index: 4,
            payload: b"abc",
        }
        .encode(&mut out);
        assert_eq!(out.len(), HEADER_LEN + 3);
        assert_eq!(&out[0..4], b"RDGC");
        assert_eq!(out[4], 1);
        assert_eq!(out[5], 1);
        assert_eq!(&out[8..12], &0xdead_beef_u32.to_be_bytes());
        assert_eq!(&out[20..24], &4u32.to_be_bytes());
        assert_eq!(&out[24..28], &5u32.to_be_bytes());
        assert_eq!(&out[28..32], &3u32.to_be_bytes());
        assert_eq!(&out[36..], b"abc");
    }

    #[test]
    fn every_field_is_checked() {
        let mut good = Vec::new();
        announcement().encode(&mut good);
        assert_eq!(decode(&good).unwrap(), Frame::Announcement(announcement()));
        let mut c = Vec::new();
        Chunk {
            object: obj(2),
            index: 2,
            payload: b"x",
        }
        .encode(&mut c);
        assert_eq!(
            decode(&c),
            Err(FrameError::IndexOutOfRange { index: 2, count: 2 })
        );
        let mut wrong_count = announcement();
        wrong_count.object.chunk_count = 4;
        wrong_count.encode(&mut c);
        assert!(matches!(
            decode(&c),
            Err(FrameError::ChunkCountMismatch { expected: 3, .. })
        ));
        assert_eq!(decode(&good[..10]), Err(FrameError::TooShort { len: 10 }));
        let mut bad = good.clone();
        bad[40] ^= 1;
        assert!(matches!(decode(&bad), Err(FrameError::BadCrc { .. })));
        let mut long = good.clone();
        long.push(0);
        assert!(matches!(
            decode(&long),
            Err(FrameError::LengthMismatch { .. })
        ));
        let mut v2 = good.clone();
        v2[4] = 2;
        assert_eq!(decode(&v2), Err(FrameError::UnsupportedVersion(2)));
    }

    #[test]
    fn empty_objects_are_one_empty_chunk() {
        assert_eq!(chunk_count(0, 1024), 1);
        assert_eq!(chunk_count(1024, 1024), 1);
        assert_eq!(chunk_count(1025, 1024), 2);
    }

    proptest! {
        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..2000)) {
            let _ = decode(&bytes);
        }

        #[test]
        fn arbitrary_bodies_with_a_valid_header_never_panic(
            kind in 0u8..4,
            index in any::<u32>(),
            count in any::<u32>(),
            body in proptest::collection::vec(any::<u8>(), 0..100),
        ) {
            // Valid CRC and length, so decoding reaches the body checks.
            let mut out = Vec::new();
            encode(&mut out, kind, &obj(count), index, |o| o.extend_from_slice(&body));
            let _ = decode(&out);
        }

        #[test]
        fn chunks_round_trip(
            session in any::<u32>(), id in any::<u32>(), version in any::<u32>(),
            count in 1u32..1000, index_seed in any::<u32>(),
            payload in proptest::collection::vec(any::<u8>(), 0..1500),
        ) {
            let object = ObjectRef { session, object_id: id, version, chunk_count: count };
            let chunk = Chunk { object, index: index_seed % count, payload: &payload };
            let mut out = Vec::new();
            chunk.encode(&mut out);
            prop_assert_eq!(decode(&out), Ok(Frame::Chunk(chunk)));
        }

        #[test]
        fn announcements_round_trip(
            session in any::<u32>(), id in any::<u32>(), version in any::<u32>(),
            size in 0u64..10_000_000, chunk_size in 1u32..65_000,
            name in "[a-zA-Z0-9_ é]{1,60}", crc in proptest::option::of(any::<u32>()),
            boot in any::<bool>(),
        ) {
            let a = Announcement {
                object: ObjectRef {
                    session, object_id: id, version,
                    chunk_count: chunk_count(size, chunk_size) as u32,
                },
                name,
                kind: if boot { ObjectKind::Bootcastinfo } else { ObjectKind::Generic },
                total_size: size,
                chunk_size,
                object_crc: crc,
            };
            let mut out = Vec::new();
            a.encode(&mut out);
            prop_assert_eq!(decode(&out), Ok(Frame::Announcement(a)));
        }

        #[test]
        fn any_flipped_bit_is_detected(pos_seed in any::<usize>(), bit in 0u8..8) {
            let mut out = Vec::new();
            announcement().encode(&mut out);
            let pos = pos_seed % out.len();
            out[pos] ^= 1 << bit;
            prop_assert!(decode(&out).is_err());
        }
    }
}

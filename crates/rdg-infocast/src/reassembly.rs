//! Putting objects back together from chunks, as a set-top box does (sans-IO).
//!
//! Chunks are collected per object id and version, whatever the session: two transmitters
//! sending the same bytes send the same version, so a box that sees a failover mid-object
//! completes it from the new transmitter's chunks. A chunk of another version (or chunk
//! count) starts the collection over. A chunk already held is a **duplicate**. When every
//! chunk is in and an announcement of that version is known, the object is assembled and
//! checked: its size must be the announced one and, when the announcement carries a CRC32,
//! so must its CRC; it then counts as **completed**, otherwise as **corrupt**. Either way the
//! collection starts afresh for the next cycle.
//!
//! Memory is bounded against forged frames: at most [`MAX_OBJECTS`] object ids and
//! [`MAX_CHUNKS`] chunks per object are tracked; frames beyond are refused (the receiver
//! counts them as malformed).

use crate::frame::{Announcement, Chunk};
use rdg_core::config::ObjectKind;
use std::collections::BTreeMap;
use std::sync::Arc;

/// Most object ids tracked at once.
pub const MAX_OBJECTS: usize = 4096;
/// Most chunks of one object (64 GB in 65 000-byte chunks).
pub const MAX_CHUNKS: u32 = 1 << 20;

/// A frame the reassembly will not track.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Refused {
    /// More object ids than [`MAX_OBJECTS`].
    #[error("too many objects")]
    TooManyObjects,
    /// A chunk count above [`MAX_CHUNKS`].
    #[error("chunk count {0} too large")]
    TooManyChunks(u32),
}

/// What the receiver knows about one object.
#[derive(Debug, Default)]
struct ObjectState {
    announced: Option<Announcement>,
    collection: Option<Collection>,
    completed: u64,
    corrupt: u64,
    duplicate: u64,
    last_complete: Option<Arc<[u8]>>,
}

#[derive(Debug)]
struct Collection {
    version: u32,
    chunks: Vec<Option<Box<[u8]>>>,
    have: usize,
}

/// Per-object figures for the report.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectFigures {
    /// Object id (index in its channel).
    pub id: u32,
    /// Name from the latest announcement.
    pub name: String,
    /// Kind from the latest announcement.
    pub kind: ObjectKind,
    /// Version from the latest announcement.
    pub version: u32,
    /// Size from the latest announcement.
    pub size: u64,
    /// Times the whole object was received and checked.
    pub completed: u64,
    /// Times it was assembled but failed its size or CRC check.
    pub corrupt: u64,
    /// Chunks received while already held.
    pub duplicate: u64,
}

/// Objects being collected, by object id.
#[derive(Debug, Default)]
pub struct Reassembly {
    objects: BTreeMap<u32, ObjectState>,
}

impl Reassembly {
    /// Takes note of what an object is; may complete a collection that only lacked it.
    pub fn on_announcement(&mut self, a: Announcement) -> Result<(), Refused> {
        let st = self.state(a.object.object_id, a.object.chunk_count)?;
        st.announced = Some(a);
        try_complete(st);
        Ok(())
    }

    fn state(&mut self, id: u32, chunk_count: u32) -> Result<&mut ObjectState, Refused> {
        if chunk_count > MAX_CHUNKS {
            return Err(Refused::TooManyChunks(chunk_count));
        }
        if self.objects.len() >= MAX_OBJECTS && !self.objects.contains_key(&id) {
            return Err(Refused::TooManyObjects);
        }
        Ok(self.objects.entry(id).or_default())
    }

    /// Adds a chunk; may complete its object.
    pub fn on_chunk(&mut self, c: &Chunk<'_>) -> Result<(), Refused> {
        let st = self.state(c.object.object_id, c.object.chunk_count)?;
        let count = c.object.chunk_count as usize;
        let fresh = match &st.collection {
            Some(col) => col.version != c.object.version || col.chunks.len() != count,
            None => true,
        };
        if fresh {
            st.collection = Some(Collection {
                version: c.object.version,
                // Grown on demand: a forged huge chunk count costs nothing up front.
                chunks: Vec::new(),
                have: 0,
            });
        }
        let Some(col) = st.collection.as_mut() else {
            return Ok(());
        };
        if col.chunks.len() != count {
            col.chunks.resize_with(count, || None);
        }
        let slot = &mut col.chunks[c.index as usize];
        if slot.is_some() {
            st.duplicate += 1;
            return Ok(());
        }
        *slot = Some(c.payload.into());
        col.have += 1;
        try_complete(st);
        Ok(())
    }

    /// Figures of every announced object, by id.
    pub fn figures(&self) -> Vec<ObjectFigures> {
        self.objects
            .iter()
            .filter_map(|(&id, st)| {
                st.announced.as_ref().map(|a| ObjectFigures {
                    id,
                    name: a.name.clone(),
                    kind: a.kind,
                    version: a.object.version,
                    size: a.total_size,
                    completed: st.completed,
                    corrupt: st.corrupt,
                    duplicate: st.duplicate,
                })
            })
            .collect()
    }

    /// The bytes of the last completed copy of the object named `name`.
    pub fn last_complete(&self, name: &str) -> Option<Arc<[u8]>> {
        self.objects
            .values()
            .find(|st| st.announced.as_ref().is_some_and(|a| a.name == name))
            .and_then(|st| st.last_complete.clone())
    }
}

fn try_complete(st: &mut ObjectState) {
    let (Some(col), Some(a)) = (&st.collection, &st.announced) else {
        return;
    };
    if col.have != col.chunks.len()
        || a.object.version != col.version
        || a.object.chunk_count as usize != col.chunks.len()
    {
        return;
    }
    let Some(col) = st.collection.take() else {
        return;
    };
    let last = col.chunks.len() - 1;
    let mut shaped = true;
    let mut bytes = Vec::with_capacity(usize::try_from(a.total_size).unwrap_or(0).min(1 << 30));
    for (i, chunk) in col.chunks.into_iter().enumerate() {
        let chunk = chunk.unwrap_or_default();
        if i < last && chunk.len() != a.chunk_size as usize {
            shaped = false;
        }
        bytes.extend_from_slice(&chunk);
    }
    let crc_ok = a
        .object_crc
        .is_none_or(|crc| crc32fast::hash(&bytes) == crc);
    if shaped && bytes.len() as u64 == a.total_size && crc_ok {
        st.completed += 1;
        st.last_complete = Some(bytes.into());
    } else {
        st.corrupt += 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::frame::ObjectRef;

    fn obj(version: u32, count: u32) -> ObjectRef {
        ObjectRef {
            session: 1,
            object_id: 0,
            version,
            chunk_count: count,
        }
    }

    fn announce(version: u32, size: u64, crc: Option<u32>) -> Announcement {
        Announcement {
            object: obj(version, crate::frame::chunk_count(size, 4) as u32),
            name: "o".into(),
            kind: ObjectKind::Generic,
            total_size: size,
            chunk_size: 4,
            object_crc: crc,
        }
    }

    fn chunk(version: u32, count: u32, index: u32, payload: &[u8]) -> Chunk<'_> {
        Chunk {
            object: obj(version, count),
            index,
            payload,
        }
    }

    #[test]
    fn joining_mid_cycle_completes_with_the_next_cycle() {
        let mut r = Reassembly::default();
        let data = b"0123456789";
        r.on_chunk(&chunk(7, 3, 2, &data[8..])).unwrap();
        r.on_announcement(announce(7, 10, Some(crc32fast::hash(data))))
            .unwrap();
        r.on_chunk(&chunk(7, 3, 0, &data[..4])).unwrap();
        assert_eq!(r.figures()[0].completed, 0);
        r.on_chunk(&chunk(7, 3, 1, &data[4..8])).unwrap();
        let f = &r.figures()[0];
        assert_eq!((f.completed, f.corrupt, f.duplicate), (1, 0, 0));
        assert_eq!(&*r.last_complete("o").unwrap(), data);
    }

    #[test]
    fn duplicates_new_versions_and_corruption() {
        let mut r = Reassembly::default();
        r.on_announcement(announce(1, 8, Some(0xbad))).unwrap();
        r.on_chunk(&chunk(1, 2, 0, b"abcd")).unwrap();
        r.on_chunk(&chunk(1, 2, 0, b"abcd")).unwrap();
        r.on_chunk(&chunk(1, 2, 1, b"efgh")).unwrap();
        let f = &r.figures()[0];
        assert_eq!(
            (f.completed, f.corrupt, f.duplicate),
            (0, 1, 1),
            "CRC mismatch"
        );
        // A new version replaces a partial collection of the old one.
        r.on_announcement(announce(2, 8, None)).unwrap();
        r.on_chunk(&chunk(1, 2, 0, b"abcd")).unwrap();
        r.on_chunk(&chunk(2, 2, 0, b"ABCD")).unwrap();
        r.on_chunk(&chunk(2, 2, 1, b"EFGH")).unwrap();
        let f = &r.figures()[0];
        assert_eq!((f.completed, f.version), (1, 2));
        assert_eq!(&*r.last_complete("o").unwrap(), b"ABCDEFGH");
        // Wrong size is corrupt even without a CRC.
        r.on_chunk(&chunk(2, 2, 0, b"ABCD")).unwrap();
        r.on_chunk(&chunk(2, 2, 1, b"EF")).unwrap();
        assert_eq!(r.figures()[0].corrupt, 2);
        assert_eq!(
            r.on_chunk(&chunk(2, MAX_CHUNKS + 1, 0, b"x")),
            Err(Refused::TooManyChunks(MAX_CHUNKS + 1))
        );
    }
}

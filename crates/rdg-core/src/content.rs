//! The carousel a member would send, summarised so members can compare it: set-top boxes that
//! fail over from one member to another must keep receiving the same objects.
//!
//! A [`Manifest`] lists every channel's settings and every object's name and content hash; the
//! runtime builds it from the configuration and the object files. Its [`Advert`] (a 64-bit
//! digest of the whole manifest plus a 4-byte name hash and 4-byte version per object) fits in
//! one datagram, so the hot member can advertise it and a standby can say which of its own
//! objects differ without the hot member's names ([`compare`]).

use sha2::{Digest, Sha256};

/// Objects listed one by one in an [`Advert`]; beyond this only the digest is compared (it
/// keeps the datagram under the 512-byte limit with the longest names and a MAC).
pub const MAX_ADVERT_OBJECTS: usize = 24;

/// One object as this member would send it.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ObjectEntry {
    /// The channel it is sent on, `address:port`.
    pub channel: String,
    /// Its name.
    pub name: String,
    /// SHA-256 of its bytes and of the settings that change what a box receives (kind, CRC
    /// announcement, repeat delay); None when the source file was never readable.
    pub hash: Option<[u8; 32]>,
    /// Its size in bytes (0 when unreadable).
    pub size: u64,
}

impl ObjectEntry {
    /// `address:port/name`, unique within a carousel.
    pub fn key(&self) -> String {
        format!("{}/{}", self.channel, self.name)
    }

    /// The 4-byte name hash of an [`AdvertObject`].
    fn name_hash(&self) -> u32 {
        name_hash(&self.key())
    }

    /// The 4-byte version of an [`AdvertObject`] (0 for an unreadable object).
    fn version(&self) -> u32 {
        self.hash.map_or(0, |h| first_u32(&h))
    }
}

/// Everything a member's carousel consists of, in configuration order.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
pub struct Manifest {
    /// Each channel's `address:port` and a canonical text of its settings (TTL, bit rate,
    /// payload size, burst delay).
    pub channels: Vec<(String, String)>,
    /// Every object of every channel.
    pub objects: Vec<ObjectEntry>,
}

impl Manifest {
    /// Digest of the whole manifest: equal digests mean the same carousel.
    pub fn digest(&self) -> u64 {
        let mut h = Sha256::new();
        for (channel, settings) in &self.channels {
            h.update(b"C");
            field(&mut h, channel.as_bytes());
            field(&mut h, settings.as_bytes());
        }
        for o in &self.objects {
            h.update(b"O");
            field(&mut h, o.key().as_bytes());
            field(&mut h, o.hash.as_ref().map_or(&[][..], |x| &x[..]));
        }
        let d = h.finalize();
        u64::from_be_bytes([d[0], d[1], d[2], d[3], d[4], d[5], d[6], d[7]])
    }

    /// The summary sent in a content datagram.
    pub fn advert(&self) -> Advert {
        Advert {
            digest: self.digest(),
            total: u16::try_from(self.objects.len()).unwrap_or(u16::MAX),
            objects: self
                .objects
                .iter()
                .take(MAX_ADVERT_OBJECTS)
                .map(|o| AdvertObject {
                    name: o.name_hash(),
                    version: o.version(),
                })
                .collect(),
        }
    }
}

/// Length-prefixed, so no two different field lists hash alike.
fn field(h: &mut Sha256, bytes: &[u8]) {
    h.update((bytes.len() as u64).to_be_bytes());
    h.update(bytes);
}

/// The 4-byte name hash of an object called `key` (`address:port/name`) in an [`Advert`].
pub fn name_hash(key: &str) -> u32 {
    first_u32(&Sha256::digest(key.as_bytes()))
}

/// Name hashes of the objects two adverts disagree on (listed in one only, or with
/// different versions), in the order of `a` then `b`.
pub fn differing_objects(a: &Advert, b: &Advert) -> Vec<u32> {
    let mut out = Vec::new();
    for x in &a.objects {
        match b.objects.iter().find(|y| y.name == x.name) {
            Some(y) if y.version == x.version => {}
            _ => out.push(x.name),
        }
    }
    for y in &b.objects {
        if !a.objects.iter().any(|x| x.name == y.name) {
            out.push(y.name);
        }
    }
    out
}

fn first_u32(bytes: &[u8]) -> u32 {
    u32::from_be_bytes([bytes[0], bytes[1], bytes[2], bytes[3]])
}

/// One object in an [`Advert`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct AdvertObject {
    /// First 4 bytes of SHA-256 of `address:port/name`.
    pub name: u32,
    /// First 4 bytes of the object's hash (0: not readable).
    pub version: u32,
}

/// A manifest summarised for the wire.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Advert {
    /// [`Manifest::digest`].
    pub digest: u64,
    /// How many objects the manifest has (`objects` lists at most [`MAX_ADVERT_OBJECTS`]).
    pub total: u16,
    /// The first objects, in configuration order.
    pub objects: Vec<AdvertObject>,
}

impl Advert {
    /// True when every object of the manifest is listed.
    pub fn complete(&self) -> bool {
        self.objects.len() == usize::from(self.total)
    }
}

/// How this member's carousel compares with another member's advert.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Difference {
    /// Objects of this member whose content differs from the other member's (`address:port/name`).
    pub changed: Vec<String>,
    /// Objects of this member the other member does not send.
    pub only_here: Vec<String>,
    /// How many objects only the other member sends.
    pub only_there: usize,
    /// The digests differ but no listed object does: channel settings, order, or objects
    /// beyond those an advert lists.
    pub settings_or_unlisted: bool,
}

impl Difference {
    /// One line for logs, status and mail, e.g. `"bootcast_1900" differs; 1 object only on the
    /// hot member`.
    pub fn describe(&self, other: &str) -> String {
        let mut parts = Vec::new();
        if !self.changed.is_empty() {
            parts.push(format!("content differs: {}", self.changed.join(", ")));
        }
        if !self.only_here.is_empty() {
            parts.push(format!(
                "not sent by {other}: {}",
                self.only_here.join(", ")
            ));
        }
        if self.only_there > 0 {
            parts.push(format!(
                "{} object(s) sent only by {other}",
                self.only_there
            ));
        }
        if self.settings_or_unlisted {
            parts.push("channel settings or object order differ".to_string());
        }
        parts.join("; ")
    }
}

/// Compares `mine` with `theirs`; None when the carousels are the same.
pub fn compare(mine: &Manifest, theirs: &Advert) -> Option<Difference> {
    if mine.digest() == theirs.digest {
        return None;
    }
    let listed_there = theirs.complete();
    let mut diff = Difference {
        changed: Vec::new(),
        only_here: Vec::new(),
        only_there: 0,
        settings_or_unlisted: false,
    };
    let mut matched = vec![false; theirs.objects.len()];
    for o in &mine.objects {
        let name = o.name_hash();
        match theirs.objects.iter().position(|t| t.name == name) {
            Some(i) => {
                matched[i] = true;
                if theirs.objects[i].version != o.version() {
                    diff.changed.push(o.key());
                }
            }
            None if listed_there => diff.only_here.push(o.key()),
            None => {}
        }
    }
    diff.only_there = matched.iter().filter(|m| !**m).count();
    if listed_there && mine.objects.len() <= MAX_ADVERT_OBJECTS {
        // Both fully listed: anything not explained by objects is settings or order.
        diff.settings_or_unlisted =
            diff.changed.is_empty() && diff.only_here.is_empty() && diff.only_there == 0;
    } else {
        diff.settings_or_unlisted = true;
    }
    Some(diff)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn obj(channel: &str, name: &str, bytes: &[u8]) -> ObjectEntry {
        ObjectEntry {
            channel: channel.into(),
            name: name.into(),
            hash: Some(Sha256::digest(bytes).into()),
            size: bytes.len() as u64,
        }
    }

    fn manifest(objects: Vec<ObjectEntry>) -> Manifest {
        Manifest {
            channels: vec![("224.2.2.2:22222".into(), "ttl=1".into())],
            objects,
        }
    }

    #[test]
    fn equal_carousels_compare_equal_and_one_change_is_named() {
        let a = manifest(vec![
            obj("224.2.2.2:22222", "boot", b"1"),
            obj("224.2.2.2:22222", "kernel", b"k"),
        ]);
        assert_eq!(compare(&a, &a.clone().advert()), None);
        let mut b = a.clone();
        b.objects[1] = obj("224.2.2.2:22222", "kernel", b"k2");
        let d = compare(&b, &a.advert()).expect("differs");
        assert_eq!(d.changed, vec!["224.2.2.2:22222/kernel".to_string()]);
        assert!(d.only_here.is_empty() && d.only_there == 0 && !d.settings_or_unlisted);
        assert_eq!(d.describe("a"), "content differs: 224.2.2.2:22222/kernel");
    }

    #[test]
    fn missing_and_extra_objects_and_settings_are_told_apart() {
        let a = manifest(vec![obj("c", "x", b"1"), obj("c", "y", b"2")]);
        let b = manifest(vec![obj("c", "x", b"1"), obj("c", "z", b"3")]);
        let d = compare(&b, &a.advert()).expect("differs");
        assert_eq!(d.only_here, vec!["c/z".to_string()]);
        assert_eq!(d.only_there, 1);
        let mut c = a.clone();
        c.channels[0].1 = "ttl=2".into();
        let d = compare(&c, &a.advert()).expect("differs");
        assert!(d.settings_or_unlisted && d.changed.is_empty());
        assert!(d.describe("a").contains("channel settings"));
    }

    #[test]
    fn adverts_name_the_objects_they_disagree_on() {
        let a = manifest(vec![obj("c", "x", b"1"), obj("c", "y", b"2")]);
        let b = manifest(vec![
            obj("c", "x", b"1"),
            obj("c", "y", b"3"),
            obj("c", "z", b""),
        ]);
        assert_eq!(
            differing_objects(&a.advert(), &b.advert()),
            vec![name_hash("c/y"), name_hash("c/z")]
        );
        assert!(differing_objects(&a.advert(), &a.advert()).is_empty());
    }

    #[test]
    fn an_unreadable_object_differs_from_a_readable_one() {
        let a = manifest(vec![obj("c", "x", b"1")]);
        let mut b = a.clone();
        b.objects[0].hash = None;
        let d = compare(&b, &a.advert()).expect("differs");
        assert_eq!(d.changed, vec!["c/x".to_string()]);
    }

    #[test]
    fn long_carousels_list_the_first_objects_and_still_compare_by_digest() {
        let objects: Vec<_> = (0..40)
            .map(|i| obj("c", &format!("o{i}"), &[i as u8]))
            .collect();
        let a = manifest(objects);
        let advert = a.advert();
        assert_eq!(advert.objects.len(), MAX_ADVERT_OBJECTS);
        assert_eq!(advert.total, 40);
        assert!(!advert.complete());
        assert_eq!(compare(&a, &advert), None);
        let mut b = a.clone();
        b.objects[39] = obj("c", "o39", b"changed");
        let d = compare(&b, &advert).expect("differs");
        assert!(d.changed.is_empty() && d.settings_or_unlisted);
        let mut b = a.clone();
        b.objects[3] = obj("c", "o3", b"changed");
        let d = compare(&b, &advert).expect("differs");
        assert_eq!(d.changed, vec!["c/o3".to_string()]);
    }
}

//! What this member's carousel consists of, for the comparison with the hot member's
//! ([`rdg_core::content`]): the channels' settings and every object's hash, read from the
//! same sources the transmitter reads (re-read only when a file changed).

use crate::object::ObjectSource;
use rdg_agent::content::ContentSource;
use rdg_core::config::{ObjectKind, Transmitter};
use rdg_core::content::{Manifest, ObjectEntry};
use sha2::{Digest, Sha256};
use std::sync::Arc;

/// One object's source and the hash of the content it last had.
struct Watched {
    channel: String,
    source: ObjectSource,
    /// Settings that change what a box receives, hashed with the bytes.
    settings: String,
    /// The bytes last hashed (held, so a new content is a new allocation) and their hash.
    last: Option<(Arc<[u8]>, [u8; 32])>,
}

/// The carousel of a `transmitter` section, as a [`ContentSource`].
pub struct CarouselManifest {
    channels: Vec<(String, String)>,
    objects: Vec<Watched>,
}

impl CarouselManifest {
    /// Watches the objects of `tx`; nothing is read before [`ContentSource::manifest`].
    pub fn new(tx: &Transmitter) -> CarouselManifest {
        let mut channels = Vec::new();
        let mut objects = Vec::new();
        for ch in &tx.channels {
            let label = format!("{}:{}", ch.address, ch.port);
            channels.push((
                label.clone(),
                format!(
                    "ttl={} bitRate={} payloadSize={} burstDelay={}",
                    ch.ttl,
                    ch.bit_rate,
                    ch.payload_size,
                    ch.burst_delay.map_or(0, |d| d.get().as_millis())
                ),
            ));
            for o in &ch.objects {
                objects.push(Watched {
                    channel: label.clone(),
                    source: ObjectSource::new(o, &label).quiet(),
                    settings: format!(
                        "type={} crc={} repeatDelay={}",
                        match o.kind {
                            ObjectKind::Bootcastinfo => "bootcastinfo",
                            ObjectKind::Generic => "generic",
                        },
                        o.crc,
                        o.repeat_delay.map_or(0, |d| d.get().as_millis())
                    ),
                    last: None,
                });
            }
        }
        CarouselManifest { channels, objects }
    }
}

impl ContentSource for CarouselManifest {
    fn manifest(&mut self) -> Manifest {
        let objects = self
            .objects
            .iter_mut()
            .map(|w| {
                let content = w.source.refresh();
                let (hash, size) = match content {
                    None => (None, 0),
                    Some(c) => {
                        let hash = match &w.last {
                            Some((bytes, h)) if Arc::ptr_eq(bytes, &c.bytes) => *h,
                            _ => {
                                let mut d = Sha256::new();
                                d.update(w.settings.as_bytes());
                                d.update([0]);
                                d.update(&c.bytes);
                                let h: [u8; 32] = d.finalize().into();
                                w.last = Some((Arc::clone(&c.bytes), h));
                                h
                            }
                        };
                        (Some(hash), c.bytes.len() as u64)
                    }
                };
                ObjectEntry {
                    channel: w.channel.clone(),
                    name: w.source.name.clone(),
                    hash,
                    size,
                }
            })
            .collect();
        Manifest {
            channels: self.channels.clone(),
            objects,
        }
    }
}

//! One carousel object as the transmitter sends it: its bytes, loaded from `source` (and
//! re-read when the file changes) or generated from `bootcast` fields.
//!
//! [`ObjectSource::refresh`] runs at the start of every object cycle. It compares the file's
//! inode, device, size, mtime and ctime with the last read; when any changed it reads the file
//! again, and a new content gets a new version (the CRC32 of the bytes), so the carousel never
//! stops for an update. A file that cannot be read logs an error (once per distinct error) and
//! the last good version keeps going out; a file that changes while being read is read again
//! at the next cycle.

use crate::bootcast;
use rdg_core::config::{CarouselObject, ObjectKind};
use std::os::unix::fs::MetadataExt;
use std::path::PathBuf;
use std::sync::Arc;

/// The bytes of one version of an object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Content {
    /// The object's bytes.
    pub bytes: Arc<[u8]>,
    /// CRC32 of `bytes`: the object version in frames, and the whole-object CRC.
    pub crc: u32,
}

impl Content {
    /// Wraps `bytes`, computing their CRC32.
    pub fn new(bytes: Vec<u8>) -> Content {
        let crc = crc32fast::hash(&bytes);
        Content {
            bytes: bytes.into(),
            crc,
        }
    }
}

/// What identifies one state of a file without reading it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Fingerprint {
    dev: u64,
    ino: u64,
    size: u64,
    mtime: (i64, i64),
    ctime: (i64, i64),
}

impl Fingerprint {
    fn of(m: &std::fs::Metadata) -> Fingerprint {
        Fingerprint {
            dev: m.dev(),
            ino: m.ino(),
            size: m.size(),
            mtime: (m.mtime(), m.mtime_nsec()),
            ctime: (m.ctime(), m.ctime_nsec()),
        }
    }
}

/// Where the bytes come from.
#[derive(Debug)]
enum Origin {
    /// A file, re-read when it changes.
    File {
        path: PathBuf,
        seen: Option<Fingerprint>,
        last_error: Option<String>,
    },
    /// Generated once from the configuration.
    Generated,
}

/// One object of a channel and its current content.
#[derive(Debug)]
pub struct ObjectSource {
    /// Name from the configuration.
    pub name: String,
    /// Kind from the configuration.
    pub kind: ObjectKind,
    /// Whether the whole-object CRC is announced (`crc: true`).
    pub announce_crc: bool,
    /// `repeatDelay`: at most one cycle of this object per delay.
    pub repeat_delay: Option<std::time::Duration>,
    origin: Origin,
    content: Option<Content>,
    /// Context for log lines, e.g. `(224.2.2.2:22222)`.
    label: String,
    /// Log nothing (a second reader of the same files, whose news the transmitter logs).
    quiet: bool,
}

impl ObjectSource {
    /// The object of `cfg`; `label` prefixes its log lines. Nothing is read until
    /// [`refresh`](Self::refresh).
    pub fn new(cfg: &CarouselObject, label: &str) -> ObjectSource {
        let (origin, content) = match (&cfg.source, &cfg.bootcast) {
            (_, Some(b)) => (
                Origin::Generated,
                Some(Content::new(
                    bootcast::descriptor(&cfg.name, b).into_bytes(),
                )),
            ),
            (Some(path), None) => (
                Origin::File {
                    path: PathBuf::from(path),
                    seen: None,
                    last_error: None,
                },
                None,
            ),
            // Validation requires one of the two; an object with neither is empty.
            (None, None) => (Origin::Generated, Some(Content::new(Vec::new()))),
        };
        ObjectSource {
            name: cfg.name.clone(),
            kind: cfg.kind,
            announce_crc: cfg.crc,
            repeat_delay: cfg.repeat_delay.map(|d| d.get()).filter(|d| !d.is_zero()),
            origin,
            content,
            label: label.to_string(),
            quiet: false,
        }
    }

    /// The same object, read without logging.
    pub fn quiet(mut self) -> ObjectSource {
        self.quiet = true;
        self
    }

    /// Re-reads the source when it changed and returns the content to send now: the newest
    /// good version, or None when the file was never readable.
    pub fn refresh(&mut self) -> Option<Content> {
        if let Origin::File {
            path,
            seen,
            last_error,
        } = &mut self.origin
        {
            match read_if_changed(path, *seen) {
                Ok(None) => {}
                Ok(Some((fp, bytes))) => {
                    *seen = Some(fp);
                    if last_error.take().is_some() && !self.quiet {
                        tracing::info!("{}: {} is readable again", self.label, path.display());
                    }
                    let new = Content::new(bytes);
                    match &self.content {
                        Some(old) if old.crc == new.crc && old.bytes == new.bytes => {}
                        old => {
                            if !self.quiet {
                                tracing::info!(
                                    "{}: {} \"{}\" version {:08x} ({} bytes) from {}",
                                    self.label,
                                    if old.is_some() { "updated" } else { "loaded" },
                                    self.name,
                                    new.crc,
                                    new.bytes.len(),
                                    path.display()
                                );
                            }
                            self.content = Some(new);
                        }
                    }
                }
                Err(e) => {
                    if last_error.as_deref() != Some(e.as_str()) {
                        match &self.content {
                            _ if self.quiet => {}
                            Some(c) => tracing::error!(
                                "{}: \"{}\": {e}; still sending version {:08x}",
                                self.label,
                                self.name,
                                c.crc
                            ),
                            None => tracing::error!(
                                "{}: \"{}\": {e}; nothing to send until it can be read",
                                self.label,
                                self.name
                            ),
                        }
                        *last_error = Some(e);
                    }
                }
            }
        }
        self.content.clone()
    }
}

/// Reads `path` when its fingerprint differs from `seen`; None when unchanged. A file that
/// changes during the read is an error (read again next time).
fn read_if_changed(
    path: &std::path::Path,
    seen: Option<Fingerprint>,
) -> Result<Option<(Fingerprint, Vec<u8>)>, String> {
    let fail = |e: std::io::Error| format!("cannot read {}: {e}", path.display());
    let before = Fingerprint::of(&std::fs::metadata(path).map_err(fail)?);
    if seen == Some(before) {
        return Ok(None);
    }
    let bytes = std::fs::read(path).map_err(fail)?;
    let after = Fingerprint::of(&std::fs::metadata(path).map_err(fail)?);
    if after != before || bytes.len() as u64 != after.size {
        return Err(format!(
            "{} changed while being read; reading it again next cycle",
            path.display()
        ));
    }
    Ok(Some((after, bytes)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dir(tag: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("rdg-object-{tag}-{}", std::process::id()));
        std::fs::create_dir_all(&d).unwrap();
        d
    }

    fn object(source: Option<String>) -> CarouselObject {
        CarouselObject {
            name: "o".into(),
            kind: ObjectKind::Generic,
            source,
            bootcast: None,
            crc: false,
            repeat_delay: None,
        }
    }

    #[test]
    fn change_bumps_the_version_and_errors_keep_the_last_good_one() {
        let d = dir("change");
        let p = d.join("obj");
        let mut src = ObjectSource::new(&object(Some(p.to_string_lossy().into())), "(t)");
        assert_eq!(src.refresh(), None, "missing file: nothing to send");
        std::fs::write(&p, b"one").unwrap();
        let v1 = src.refresh().unwrap();
        assert_eq!(&*v1.bytes, b"one");
        assert_eq!(src.refresh().unwrap(), v1, "unchanged file: same content");
        // Replace by rename, like an atomic deploy: new inode.
        std::fs::write(d.join("tmp"), b"two!").unwrap();
        std::fs::rename(d.join("tmp"), &p).unwrap();
        let v2 = src.refresh().unwrap();
        assert_eq!(&*v2.bytes, b"two!");
        assert_ne!(v2.crc, v1.crc);
        std::fs::remove_file(&p).unwrap();
        assert_eq!(
            src.refresh().unwrap(),
            v2,
            "unreadable: the last good version"
        );
        std::fs::remove_dir_all(&d).unwrap();
    }

    #[test]
    fn generated_bootcast_needs_no_file() {
        let mut cfg = object(None);
        cfg.kind = ObjectKind::Bootcastinfo;
        cfg.bootcast = Some(rdg_core::config::Bootcast {
            kernel_address: "224.2.2.3:22223".parse().unwrap(),
            kernel_name: "k".into(),
            kernel_version: "1".into(),
            kernel_args: None,
            extra: Default::default(),
        });
        let c = ObjectSource::new(&cfg, "(t)").refresh().unwrap();
        assert!(
            std::str::from_utf8(&c.bytes)
                .unwrap()
                .starts_with("name=o\n")
        );
    }
}

//! The role file (a **contract**): JSON `{"member", "role", "epoch", "leaseUntilMonotonicMs"}`,
//! written atomically (write to a temporary file in the same directory, then rename) so a
//! reader never sees half a file. The lease is in CLOCK_MONOTONIC milliseconds: a frozen
//! agent stops renewing it and it runs out by itself, which is what fences the transmitter.

use rdg_core::State;
use serde::{Deserialize, Serialize};
use std::io::Write;
use std::path::{Path, PathBuf};

/// What the role file says.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RoleRecord {
    /// The member writing the file.
    pub member: String,
    /// Its state (`"HS"`, `"SBS"`, `"CS"`, `"SS"`, `"FS"`, `"TS"`).
    pub role: State,
    /// The epoch of the hot term it knows (its own when hot).
    pub epoch: u64,
    /// End of the hot lease in CLOCK_MONOTONIC milliseconds; 0 when not hot.
    pub lease_until_monotonic_ms: u64,
}

impl RoleRecord {
    /// True when this member is hot and its lease has not run out at `now_ms` (monotonic).
    pub fn may_run(&self, now_ms: u64) -> bool {
        self.role == State::HS && now_ms < self.lease_until_monotonic_ms
    }
}

/// Why a role file could not be read or written.
#[derive(Debug, thiserror::Error)]
pub enum RoleFileError {
    /// The file exists but cannot be read.
    #[error("cannot read role file {path}: {source}")]
    Read {
        /// The role file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The file is not a role record (someone else wrote it, or a different version).
    #[error("role file {path} is not valid: {source}")]
    Invalid {
        /// The role file.
        path: PathBuf,
        /// The JSON error.
        source: serde_json::Error,
    },
    /// The file cannot be written.
    #[error("cannot write role file {path}: {source}")]
    Write {
        /// The role file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
}

/// Reads the role file; `Ok(None)` when it does not exist (no agent, or it cleaned up).
pub fn read(path: &Path) -> Result<Option<RoleRecord>, RoleFileError> {
    let bytes = match std::fs::read(path) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(source) => {
            return Err(RoleFileError::Read {
                path: path.to_path_buf(),
                source,
            });
        }
    };
    serde_json::from_slice(&bytes)
        .map(Some)
        .map_err(|source| RoleFileError::Invalid {
            path: path.to_path_buf(),
            source,
        })
}

/// Writes the role file atomically: a temporary file beside it, then `rename`, so readers see
/// either the old or the new record. Creates the directory if it is missing. A hot member
/// calls this every heartbeat, so the common case costs only open, write, close and rename.
pub fn write(path: &Path, record: &RoleRecord) -> Result<(), RoleFileError> {
    let err = |source| RoleFileError::Write {
        path: path.to_path_buf(),
        source,
    };
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    let name = path
        .file_name()
        .map_or_else(|| "role".into(), |n| n.to_string_lossy().into_owned());
    let tmp = dir.join(format!(".{name}.{}.tmp", process_id()));
    let mut body = serde_json::to_vec(record).expect("a role record serializes");
    body.push(b'\n');
    let create = || std::fs::File::create(&tmp);
    let file = match create() {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            std::fs::create_dir_all(dir).map_err(err)?;
            create()
        }
        other => other,
    };
    let result = file
        .and_then(|mut f| f.write_all(&body))
        .and_then(|()| std::fs::rename(&tmp, path));
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result.map_err(err)
}

/// This process's id, asked of the kernel once (the C library does not cache it).
fn process_id() -> u32 {
    static ID: std::sync::OnceLock<u32> = std::sync::OnceLock::new();
    *ID.get_or_init(std::process::id)
}

/// Whether the file system that holds (or will hold) the role file at `path` keeps it in
/// memory (tmpfs). A hot member renames its role file every heartbeat; on a disk file system
/// one rename can stall for tens of milliseconds on a busy host (measured up to 56 ms on ext4
/// beside a compile), which can let the lease lapse for a moment. Looks at the nearest existing
/// ancestor when the directory does not exist yet.
pub fn on_tmpfs(path: &Path) -> nix::Result<bool> {
    let mut dir = path.parent().unwrap_or(Path::new("."));
    while !dir.as_os_str().is_empty() && !dir.exists() {
        dir = dir.parent().unwrap_or(Path::new("/"));
    }
    if dir.as_os_str().is_empty() {
        dir = Path::new(".");
    }
    let fs = nix::sys::statfs::statfs(dir)?;
    Ok(fs.filesystem_type() == nix::sys::statfs::TMPFS_MAGIC)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dir() -> PathBuf {
        let d = std::env::temp_dir().join(format!(
            "rdg-role-{}-{:?}",
            std::process::id(),
            std::thread::current().id()
        ));
        std::fs::create_dir_all(&d).unwrap();
        d
    }

    #[test]
    fn contract_keys_and_round_trip() {
        let d = dir();
        let p = d.join("sub/infocast.role");
        let r = RoleRecord {
            member: "ics-a".into(),
            role: State::HS,
            epoch: 3,
            lease_until_monotonic_ms: 12345,
        };
        write(&p, &r).unwrap();
        let text = std::fs::read_to_string(&p).unwrap();
        let v: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert_eq!(v["member"], "ics-a");
        assert_eq!(v["role"], "HS");
        assert_eq!(v["epoch"], 3);
        assert_eq!(v["leaseUntilMonotonicMs"], 12345);
        assert_eq!(read(&p).unwrap(), Some(r));
        let leftovers: Vec<_> = std::fs::read_dir(d.join("sub")).unwrap().collect();
        assert_eq!(leftovers.len(), 1, "no temporary file left behind");
        std::fs::remove_dir_all(&d).unwrap();
    }

    #[test]
    fn a_directory_removed_between_writes_is_created_again() {
        let d = dir();
        let p = d.join("run/rdg/infocast.role");
        let mut r = RoleRecord {
            member: "ics-a".into(),
            role: State::HS,
            epoch: 1,
            lease_until_monotonic_ms: 100,
        };
        write(&p, &r).unwrap();
        std::fs::remove_dir_all(d.join("run")).unwrap();
        r.epoch = 2;
        write(&p, &r).unwrap();
        assert_eq!(read(&p).unwrap(), Some(r));
        std::fs::remove_dir_all(&d).unwrap();
    }

    #[test]
    fn missing_is_none_and_garbage_is_an_error() {
        let d = dir();
        assert!(read(&d.join("nope")).unwrap().is_none());
        std::fs::write(d.join("bad"), b"{\"role\": 7}").unwrap();
        assert!(matches!(
            read(&d.join("bad")),
            Err(RoleFileError::Invalid { .. })
        ));
        std::fs::remove_dir_all(&d).unwrap();
    }

    #[test]
    fn tmpfs_is_recognised_also_for_a_directory_not_created_yet() {
        // /dev/shm is tmpfs on every Linux; /proc is procfs, a file system that is not tmpfs.
        assert!(on_tmpfs(Path::new("/dev/shm/rdg-not-there/yet/g.role")).unwrap());
        assert!(on_tmpfs(Path::new("/dev/shm/g.role")).unwrap());
        assert!(!on_tmpfs(Path::new("/proc/self/g.role")).unwrap());
        assert!(!on_tmpfs(Path::new("/proc/rdg-not-there/g.role")).unwrap());
    }

    #[test]
    fn only_a_hot_member_with_a_running_lease_may_run() {
        let mut r = RoleRecord {
            member: "a".into(),
            role: State::HS,
            epoch: 1,
            lease_until_monotonic_ms: 1000,
        };
        assert!(r.may_run(999));
        assert!(!r.may_run(1000));
        r.role = State::SBS;
        assert!(!r.may_run(0));
    }
}

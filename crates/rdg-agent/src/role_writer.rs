//! Writes the role file without stalling the agent loop. A hot member renews its lease every
//! heartbeat interval; on a disk filesystem (ext4 flushes a file replaced by rename) one write
//! can block for tens of milliseconds, long enough to miss heartbeats and let the lease run out.
//! So lease renewals go to a writer thread that always writes the latest record (older pending
//! ones are skipped). Everything else — becoming hot, and above all *leaving* HS — is written
//! synchronously: the role file must say "not hot" before the loop announces anything
//! (`leaving`, a switchover ack), or a gate could run the work on two hosts at once.
//!
//! One lock orders every write, so a renewal written by the thread can never land after a
//! synchronous release.

use crate::role_file::{self, RoleFileError, RoleRecord};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

/// A role-file write slower than this is logged: at 50 Hz heartbeats the lease has only 20 ms
/// of slack, and a slow file system is otherwise invisible until a lease lapses.
const SLOW_WRITE: Duration = Duration::from_millis(20);

/// Logs a write that took longer than [`SLOW_WRITE`] since `started`.
fn note_if_slow(path: &Path, what: &str, started: Instant) {
    let took = started.elapsed();
    if took > SLOW_WRITE {
        tracing::warn!(
            role_file = %path.display(),
            took_ms = took.as_millis() as u64,
            "slow role file write ({what}): keep the role file on tmpfs"
        );
    }
}

#[derive(Debug, Default)]
struct Slot {
    /// The newest renewal not yet written.
    pending: Option<RoleRecord>,
    /// Set when the writer is dropped: the thread exits.
    closed: bool,
}

#[derive(Debug)]
struct Shared {
    path: PathBuf,
    slot: Mutex<Slot>,
    wake: Condvar,
    /// Held for the duration of every write.
    write: Mutex<()>,
}

/// The role file's writer: [`RoleWriter::renew`] in the background, [`RoleWriter::write_now`]
/// synchronously.
#[derive(Debug)]
pub struct RoleWriter {
    shared: Arc<Shared>,
    thread: Option<std::thread::JoinHandle<()>>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic while holding the lock leaves plain data behind; keep going.
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl RoleWriter {
    /// Starts the writer thread for the role file at `path`.
    pub fn new(path: &Path) -> std::io::Result<RoleWriter> {
        let shared = Arc::new(Shared {
            path: path.to_path_buf(),
            slot: Mutex::new(Slot::default()),
            wake: Condvar::new(),
            write: Mutex::new(()),
        });
        let s = Arc::clone(&shared);
        let thread = std::thread::Builder::new()
            .name("role-file".into())
            .spawn(move || background(&s))?;
        Ok(RoleWriter {
            shared,
            thread: Some(thread),
        })
    }

    /// Queues a lease renewal; returns at once. Only the newest queued record is written.
    pub fn renew(&self, record: RoleRecord) {
        lock(&self.shared.slot).pending = Some(record);
        self.shared.wake.notify_one();
    }

    /// Writes `record` now, after any write in progress, and drops queued renewals.
    pub fn write_now(&self, record: &RoleRecord) -> Result<(), RoleFileError> {
        let started = Instant::now();
        let _w = lock(&self.shared.write);
        lock(&self.shared.slot).pending = None;
        let result = role_file::write(&self.shared.path, record);
        note_if_slow(&self.shared.path, "role change", started);
        result
    }
}

fn background(s: &Shared) {
    loop {
        let mut slot = lock(&s.slot);
        while slot.pending.is_none() && !slot.closed {
            slot = s.wake.wait(slot).unwrap_or_else(|e| e.into_inner());
        }
        if slot.closed {
            return;
        }
        drop(slot);
        let _w = lock(&s.write);
        // Taken under the write lock: a synchronous write in between has cleared it.
        let Some(record) = lock(&s.slot).pending.take() else {
            continue;
        };
        let started = Instant::now();
        let result = role_file::write(&s.path, &record);
        note_if_slow(&s.path, "lease renewal", started);
        if let Err(e) = result {
            // The file keeps the previous lease, which runs out by itself: the gate stops the
            // work, it never starts a second copy.
            tracing::error!(error = %e, "lease renewal not written");
        }
    }
}

impl Drop for RoleWriter {
    fn drop(&mut self) {
        lock(&self.shared.slot).closed = true;
        self.shared.wake.notify_one();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rdg_core::State;

    fn record(role: State, lease: u64) -> RoleRecord {
        RoleRecord {
            member: "a".into(),
            role,
            epoch: 1,
            lease_until_monotonic_ms: lease,
        }
    }

    #[test]
    fn renewals_land_and_a_release_is_never_overwritten_by_one() {
        let dir = std::env::temp_dir().join(format!("rdg-role-writer-{}", std::process::id()));
        let path = dir.join("x.role");
        let w = RoleWriter::new(&path).unwrap();
        w.write_now(&record(State::HS, 10)).unwrap();
        for lease in 11..=500 {
            w.renew(record(State::HS, lease));
        }
        // The newest renewal is written eventually.
        let start = std::time::Instant::now();
        while role_file::read(&path)
            .unwrap()
            .map(|r| r.lease_until_monotonic_ms)
            != Some(500)
        {
            assert!(
                start.elapsed() < std::time::Duration::from_secs(5),
                "renewal not written"
            );
            std::thread::sleep(std::time::Duration::from_millis(1));
        }
        // Renewals racing with a release: the release is the last word.
        for round in 0..200 {
            w.renew(record(State::HS, 1000 + round));
            w.write_now(&record(State::SBS, 0)).unwrap();
        }
        drop(w);
        assert_eq!(role_file::read(&path).unwrap(), Some(record(State::SBS, 0)));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}

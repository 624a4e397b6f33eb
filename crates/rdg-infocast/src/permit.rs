//! The transmitter's gate: may the carousel be sent right now?
//!
//! Without a role file the gate is always open. With one, it is open only while the file says
//! this member is HS and its lease (CLOCK_MONOTONIC ms) has not run out — the same rule as
//! `rdg gate`, but in-process and per chunk:
//!
//! * A watcher task re-reads the role file whenever its directory reports a change to it
//!   (inotify: the agent replaces the file by rename, so the directory is watched, not the
//!   file), wakes exactly at the lease end, and otherwise re-reads it only every
//!   [`SAFETY_POLL`] (every [`FALLBACK_POLL`] while the directory cannot be watched, e.g.
//!   before it exists). Each verdict is published on a `watch` channel; every opening and
//!   closing is logged with its reason.
//! * Channels call [`Gate::check`] before **every** chunk. It compares the published lease
//!   with the monotonic clock itself, so an expired lease stops the carousel within one chunk
//!   even if the watcher has not run yet; a demotion stops it within one chunk of the watcher
//!   seeing the new file. Channels that find the gate closed wait in [`Gate::wait_open`] and
//!   start within one chunk of it opening.
//!
//! A missing, unreadable or invalid role file, one written for a different member (when a
//! member name is given), any role but HS, and an expired lease all mean closed.
//!
//! Each opening draws a new random **session** id for the frames, so a member that is hot
//! again later is a new sender to receivers, and an old session reappearing really means two
//! transmitters alternating.

use futures_util::StreamExt;
use inotify::{EventMask, EventStream, Inotify, WatchMask};
use rdg_agent::clock::monotonic_ms;
use rdg_agent::role_file;
use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;
use tokio::time::Instant;

/// Re-read of the role file even without a change notice (a safety net).
pub const SAFETY_POLL: Duration = Duration::from_secs(1);
/// Re-read period while the role file's directory cannot be watched.
pub const FALLBACK_POLL: Duration = Duration::from_millis(100);
/// How often [`Gate::follow`] looks at the lease even without a new verdict.
pub const FOLLOW_RECHECK: Duration = Duration::from_millis(200);

/// When the transmitter may send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GateMode {
    /// Always (no role file: a standalone transmitter).
    Always,
    /// Only while the role file says HS with a running lease.
    RoleFile {
        /// The role file the agent writes.
        path: PathBuf,
        /// When given, the record must be this member's (guards against reading the file of
        /// another member or group).
        member: Option<String>,
    },
}

/// The published verdict.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Permit {
    /// Send under `session` until `until_ms` (CLOCK_MONOTONIC ms; None = no end).
    Open { session: u32, until_ms: Option<u64> },
    /// Do not send.
    Closed,
}

/// A handle channels consult before every chunk; cheap to clone (one per channel).
#[derive(Debug, Clone)]
pub struct Gate {
    rx: watch::Receiver<Permit>,
    /// The sender of an always-open gate, kept so waiting channels never see it closed.
    _always: Option<Arc<watch::Sender<Permit>>>,
}

/// Why the gate could not start.
#[derive(Debug, thiserror::Error)]
pub enum GateError {
    /// The watcher task needs a tokio runtime.
    #[error("the transmitter gate must be started inside a tokio runtime")]
    NoRuntime,
}

impl Gate {
    /// Starts the gate for `mode`; with a role file, spawns its watcher task on the current
    /// tokio runtime (it ends when every [`Gate`] handle is dropped).
    pub fn start(mode: GateMode) -> Result<Gate, GateError> {
        match mode {
            GateMode::Always => {
                let session = rand::random();
                tracing::info!("gate open: no role file, always sending (session {session:08x})");
                let (tx, rx) = watch::channel(Permit::Open {
                    session,
                    until_ms: None,
                });
                Ok(Gate {
                    rx,
                    _always: Some(Arc::new(tx)),
                })
            }
            GateMode::RoleFile { path, member } => {
                let handle =
                    tokio::runtime::Handle::try_current().map_err(|_| GateError::NoRuntime)?;
                let (tx, rx) = watch::channel(Permit::Closed);
                handle.spawn(watch_role_file(path, member, tx));
                Ok(Gate { rx, _always: None })
            }
        }
    }

    /// The session to send the next chunk under, or None when the gate is closed. Checks the
    /// lease against the monotonic clock, so an expiry counts at once.
    pub fn check(&self) -> Option<u32> {
        open_session(*self.rx.borrow())
    }

    /// Waits until the gate is open and returns the session to send under.
    pub async fn wait_open(&mut self) -> u32 {
        loop {
            if let Some(s) = open_session(*self.rx.borrow_and_update()) {
                return s;
            }
            if self.rx.changed().await.is_err() {
                // The watcher is gone (runtime shutting down): stay closed.
                std::future::pending::<()>().await;
            }
        }
    }

    /// Calls `report` with whether the gate is open, at once and after every change, until
    /// the task is dropped; an expired lease counts within [`FOLLOW_RECHECK`] even before the
    /// watcher publishes it. Drives the `sending` gauge.
    pub async fn follow(mut self, mut report: impl FnMut(bool)) {
        let mut last = None;
        loop {
            let open = open_session(*self.rx.borrow_and_update()).is_some();
            if last != Some(open) {
                report(open);
                last = Some(open);
            }
            if let Ok(Err(_)) = tokio::time::timeout(FOLLOW_RECHECK, self.rx.changed()).await {
                // The watcher is gone (runtime shutting down): nothing changes any more.
                std::future::pending::<()>().await;
            }
        }
    }
}

fn open_session(p: Permit) -> Option<u32> {
    match p {
        Permit::Open { session, until_ms } if until_ms.is_none_or(|u| monotonic_ms() < u) => {
            Some(session)
        }
        _ => None,
    }
}

/// The lease end if the role file lets this member send now, otherwise why not.
fn verdict(path: &Path, member: Option<&str>, now_ms: u64) -> Result<(u64, String), String> {
    match role_file::read(path) {
        Ok(Some(r)) if member.is_some_and(|m| m != r.member) => Err(format!(
            "the role file is member {:?}'s, not {:?}'s",
            r.member,
            member.unwrap_or_default()
        )),
        Ok(Some(r)) if r.may_run(now_ms) => Ok((
            r.lease_until_monotonic_ms,
            format!(
                "member {} is HS, epoch {}, lease {} ms left",
                r.member,
                r.epoch,
                r.lease_until_monotonic_ms - now_ms
            ),
        )),
        Ok(Some(r)) if r.role == rdg_core::State::HS => Err(format!(
            "the lease ran out {} ms ago (agent frozen or gone)",
            now_ms.saturating_sub(r.lease_until_monotonic_ms)
        )),
        Ok(Some(r)) => Err(format!("member {} is {}", r.member, r.role)),
        Ok(None) => Err(format!("no role file at {}", path.display())),
        Err(e) => Err(e.to_string()),
    }
}

type Events = EventStream<Vec<u8>>;

/// Watches the directory of the role file; None (logged once by the caller) when it cannot.
fn watch_dir(dir: &Path) -> Result<Events, std::io::Error> {
    let inotify = Inotify::init()?;
    inotify.watches().add(
        dir,
        WatchMask::CLOSE_WRITE
            | WatchMask::MOVED_TO
            | WatchMask::MOVED_FROM
            | WatchMask::CREATE
            | WatchMask::DELETE
            | WatchMask::DELETE_SELF
            | WatchMask::MOVE_SELF,
    )?;
    inotify.into_event_stream(vec![0u8; 4096])
}

/// What an inotify event means for the gate.
enum Notice {
    /// The role file (or possibly it: queue overflow) changed: re-read it.
    Changed,
    /// Something else in the directory.
    Other,
    /// The watch is gone (directory removed or moved, stream ended).
    Lost,
}

async fn next_notice(events: &mut Option<Events>, name: &OsString) -> Notice {
    let Some(stream) = events.as_mut() else {
        return std::future::pending().await;
    };
    match stream.next().await {
        Some(Ok(e))
            if e.mask
                .intersects(EventMask::IGNORED | EventMask::DELETE_SELF | EventMask::MOVE_SELF) =>
        {
            Notice::Lost
        }
        Some(Ok(e)) if e.mask.contains(EventMask::Q_OVERFLOW) || e.name.as_ref() == Some(name) => {
            Notice::Changed
        }
        Some(Ok(_)) => Notice::Other,
        Some(Err(_)) | None => Notice::Lost,
    }
}

/// The watcher task: publishes the verdict until every gate handle is gone.
async fn watch_role_file(path: PathBuf, member: Option<String>, tx: watch::Sender<Permit>) {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let name = path.file_name().map(OsString::from).unwrap_or_default();
    let mut events: Option<Events> = None;
    let mut watch_error: Option<String> = None;
    let mut last_refusal = String::new();
    let mut first = true;
    loop {
        if events.is_none() {
            match watch_dir(&dir) {
                Ok(s) => {
                    if watch_error.take().is_some() {
                        tracing::info!("gate: watching {} again", dir.display());
                    }
                    events = Some(s);
                }
                Err(e) => {
                    let msg = e.to_string();
                    if watch_error.as_deref() != Some(msg.as_str()) {
                        tracing::warn!(
                            "gate: cannot watch {} ({msg}); reading {} every {} ms instead",
                            dir.display(),
                            path.display(),
                            FALLBACK_POLL.as_millis()
                        );
                        watch_error = Some(msg);
                    }
                }
            }
        }
        let now_ms = monotonic_ms();
        let current = *tx.borrow();
        let poll = if events.is_some() {
            SAFETY_POLL
        } else {
            FALLBACK_POLL
        };
        let wake = match verdict(&path, member.as_deref(), now_ms) {
            Ok((until_ms, why)) => {
                let session = match current {
                    Permit::Open { session, .. } => session,
                    Permit::Closed => {
                        let session = rand::random();
                        tracing::info!("gate open: {why} (session {session:08x})");
                        session
                    }
                };
                last_refusal.clear();
                tx.send_replace(Permit::Open {
                    session,
                    until_ms: Some(until_ms),
                });
                // Wake just after the lease end, to close (or see the renewal) at once.
                poll.min(Duration::from_millis(until_ms - now_ms + 1))
            }
            Err(why) => {
                if current != Permit::Closed {
                    tracing::info!("gate closed: {why}");
                    tx.send_replace(Permit::Closed);
                } else if first || why != last_refusal {
                    tracing::info!("gate: not sending: {why}");
                }
                last_refusal = why;
                poll
            }
        };
        first = false;
        let deadline = Instant::now() + wake;
        // Wait for a change to the role file, the deadline, or every handle to be dropped.
        loop {
            tokio::select! {
                () = tx.closed() => return,
                () = tokio::time::sleep_until(deadline) => break,
                notice = next_notice(&mut events, &name) => match notice {
                    Notice::Changed => break,
                    Notice::Other => {}
                    Notice::Lost => {
                        events = None;
                        break;
                    }
                },
            }
        }
    }
}

//! `rdg gate`: runs a command only while this member is hot and its lease is valid.
//!
//! The gate reads the role file every `poll` (and wakes exactly when the lease ends), starts
//! the command when the role is HS with a running lease, and stops it as soon as that is no
//! longer true: demotion, CS, lease expiry (a frozen or dead agent stops renewing it), role file
//! gone or unreadable. Stopping sends SIGTERM to the command's whole process group, then SIGKILL
//! after `grace`. A command that exits while hot is restarted with exponential back-off and each
//! exit is reported. The command also gets SIGKILL if the gate itself dies (PR_SET_PDEATHSIG),
//! so it never runs unsupervised.

use crate::clock::monotonic_ms;
use crate::role_file::{self, RoleRecord};
use nix::sys::signal::{Signal, killpg};
use nix::unistd::Pid;
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::PathBuf;
use std::process::{Child, Command, ExitStatus};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

/// First restart delay after the command exits while hot; doubles up to [`MAX_BACKOFF`].
pub const MIN_BACKOFF: Duration = Duration::from_millis(100);
/// Longest restart delay.
pub const MAX_BACKOFF: Duration = Duration::from_secs(10);
/// A command that ran this long before exiting is restarted after [`MIN_BACKOFF`] again.
const STABLE_RUN: Duration = Duration::from_secs(10);

/// How the gate runs.
#[derive(Debug, Clone)]
pub struct GateOptions {
    /// The role file written by the agent.
    pub role_file: PathBuf,
    /// Program and arguments.
    pub command: Vec<String>,
    /// Time between SIGTERM and SIGKILL when stopping the command.
    pub grace: Duration,
    /// How often the role file is read.
    pub poll: Duration,
}

/// Why the gate gave up.
#[derive(Debug, thiserror::Error)]
pub enum GateError {
    /// No command was given.
    #[error("no command to run")]
    NoCommand,
    /// The command cannot be started at all (not found, not executable).
    #[error("cannot start {program:?}: {source}")]
    Spawn {
        /// The program.
        program: String,
        /// The error from exec.
        source: std::io::Error,
    },
}

/// Whether the role file allows running, and why not.
fn verdict(opts: &GateOptions, now_ms: u64) -> Result<RoleRecord, String> {
    match role_file::read(&opts.role_file) {
        Ok(Some(r)) if r.may_run(now_ms) => Ok(r),
        Ok(Some(r)) if r.role == rdg_core::State::HS => Err(format!(
            "the lease ran out {} ms ago (agent frozen or gone)",
            now_ms.saturating_sub(r.lease_until_monotonic_ms)
        )),
        Ok(Some(r)) => Err(format!("this member is {}", r.role)),
        Ok(None) => Err(format!("no role file at {}", opts.role_file.display())),
        Err(e) => Err(e.to_string()),
    }
}

struct Running {
    child: Child,
    since: Instant,
}

/// Runs the gate until `stop` is set (SIGTERM/SIGINT in the CLI); stops the command on the way out.
pub fn run(opts: &GateOptions, stop: &AtomicBool) -> Result<(), GateError> {
    let program = opts.command.first().ok_or(GateError::NoCommand)?.clone();
    let mut running: Option<Running> = None;
    let mut backoff = MIN_BACKOFF;
    let mut not_before = Instant::now();
    let mut last_refusal = String::new();
    loop {
        if stop.load(Ordering::SeqCst) {
            if let Some(r) = running.take() {
                terminate(r, opts.grace, &program, "the gate is stopping");
            }
            return Ok(());
        }
        let now_ms = monotonic_ms();
        let verdict = verdict(opts, now_ms);
        if let Some(r) = running.as_mut() {
            if let Ok(Some(status)) = r.child.try_wait() {
                let ran = r.since.elapsed();
                running = None;
                if verdict.is_ok() {
                    backoff = if ran >= STABLE_RUN {
                        MIN_BACKOFF
                    } else {
                        backoff
                    };
                    eprintln!(
                        "rdg gate: {program} {} while hot after {} ms; restarting in {} ms",
                        describe(status),
                        ran.as_millis(),
                        backoff.as_millis()
                    );
                    not_before = Instant::now() + backoff;
                    backoff = (backoff * 2).min(MAX_BACKOFF);
                } else {
                    eprintln!("rdg gate: {program} {}", describe(status));
                }
            }
        }
        let wake = match &verdict {
            Ok(record) => {
                last_refusal.clear();
                if running.is_none() && Instant::now() >= not_before {
                    running = Some(spawn(opts, &program)?);
                    eprintln!(
                        "rdg gate: started {program} (member {} is HS, epoch {}, lease {} ms left)",
                        record.member,
                        record.epoch,
                        record.lease_until_monotonic_ms.saturating_sub(now_ms)
                    );
                }
                // Wake exactly when the lease ends, so expiry stops the command at once.
                let left = Duration::from_millis(record.lease_until_monotonic_ms - now_ms);
                opts.poll.min(left)
            }
            Err(why) => {
                if let Some(r) = running.take() {
                    terminate(r, opts.grace, &program, why);
                } else if *why != last_refusal {
                    eprintln!("rdg gate: not running {program}: {why}");
                }
                last_refusal.clone_from(why);
                opts.poll
            }
        };
        std::thread::sleep(wake.max(Duration::from_millis(1)));
    }
}

fn spawn(opts: &GateOptions, program: &str) -> Result<Running, GateError> {
    let mut cmd = Command::new(program);
    cmd.args(&opts.command[1..]).process_group(0);
    // SAFETY: the closure runs in the forked child before exec and only calls prctl, which is
    // async-signal-safe; it allocates nothing and touches no lock.
    unsafe {
        cmd.pre_exec(|| {
            nix::sys::prctl::set_pdeathsig(Signal::SIGKILL).map_err(std::io::Error::from)
        });
    }
    let child = cmd.spawn().map_err(|source| GateError::Spawn {
        program: program.to_string(),
        source,
    })?;
    Ok(Running {
        child,
        since: Instant::now(),
    })
}

/// SIGTERM to the command's process group, SIGKILL after `grace`, then reap it.
fn terminate(mut r: Running, grace: Duration, program: &str, why: &str) {
    let pgid = Pid::from_raw(r.child.id() as i32);
    eprintln!("rdg gate: stopping {program}: {why}");
    let _ = killpg(pgid, Signal::SIGTERM);
    let deadline = Instant::now() + grace;
    loop {
        match r.child.try_wait() {
            Ok(Some(status)) => {
                // The leader is gone; make sure nothing it started lingers in its group.
                let _ = killpg(pgid, Signal::SIGKILL);
                eprintln!("rdg gate: {program} {}", describe(status));
                return;
            }
            Ok(None) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(5)),
            _ => break,
        }
    }
    eprintln!(
        "rdg gate: {program} did not stop within {} ms; SIGKILL",
        grace.as_millis()
    );
    let _ = killpg(pgid, Signal::SIGKILL);
    let _ = r.child.wait();
}

fn describe(status: ExitStatus) -> String {
    match (status.code(), status.signal()) {
        (Some(code), _) => format!("exited with status {code}"),
        (None, Some(sig)) => format!(
            "was killed by {}",
            Signal::try_from(sig).map_or_else(|_| format!("signal {sig}"), |s| s.to_string())
        ),
        _ => "ended".to_string(),
    }
}

//! Part 1: failover timing after host death of the hot member.
//!
//! Per trial, once the group is settled and after a random pause (so the kill falls anywhere in
//! the heartbeat period):
//!
//! * `t0` is read from CLOCK_MONOTONIC (and CLOCK_REALTIME) immediately before the hot agent
//!   gets SIGKILL; its two bridge ports go down right after (`Lab::host_death`: the agent is
//!   dead from the signal on, so no heartbeat leaves it after `t0` either way).
//! * **takeover** = first CLOCK_MONOTONIC reading, by a loop that reads every other member's
//!   role file every 1 ms, at which one of them says `"role":"HS"` with a higher epoch, minus
//!   `t0`. The role file is what `rdg gate` (and so the transmitter) acts on, so this is the
//!   failover as the service sees it; it is late by at most one poll (~1 ms).
//! * **detection** = timestamp of the new hot member's log line `hot member lost (silent on
//!   every network)` minus `t0`. The line is logged (by `tracing`, microsecond resolution) in
//!   the very step in which the agent declares the hot member lost; its timestamp is
//!   CLOCK_REALTIME, so it is compared with the CLOCK_REALTIME reading taken together with
//!   `t0` (both clocks are read back to back; the only error is a wall-clock step during the
//!   trial, which `declared_to_role_file_ms` < 0 would expose). The line also carries
//!   `silent_ms`, the silence since the last heartbeat heard, which is reported as well: it is
//!   what the agent's `rdg_failover_detection_seconds` histogram records.
//! * **lease gap** = takeover minus the end of the killed member's last lease
//!   (`leaseUntilMonotonicMs` in its role file, CLOCK_MONOTONIC): positive means the new hot
//!   member's role file said HS only after the old lease had run out (no overlap).
//!
//! Then the group is restored as after a host revival (role file removed, cables back, agent
//! restarted) and the next trial waits until it is settled again, the revived member standing
//! by (no preemption), so the hot role alternates between the two best members.

use crate::group::{start_settled, wait_settled};
use rdg_e2e::stats::{round1, summary};
use rdg_e2e::{GroupConfig, Lab, Net, RoleRecord};
use serde_json::{Value, json};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// How long a member may take to settle after a (re)start.
const SETTLE: Duration = Duration::from_secs(20);
/// How long a takeover may take before the trial counts as failed.
const TAKEOVER_LIMIT: Duration = Duration::from_secs(5);
/// Role-file poll period while waiting for the takeover.
const POLL: Duration = Duration::from_millis(1);
/// The log line of a detection (rdg-agent's `Event::HotLost`, not `left`).
const LOST_LINE: &str = "hot member lost (silent on every network)";

/// The group of part 1: ics-a (100), ics-b (50), ics-c (10) on two networks (multicast
/// 224.0.0.35 / 224.0.0.36), interval 100 ms, timeout 300 ms, election 1 s (or the timeout
/// when it is longer, as the configuration requires), net check on the targets namespace on
/// both networks with a 50 ms timeout (2 * 2 * 50 ms < 1 s).
pub fn group_config(interval: Duration, timeout: Duration) -> GroupConfig {
    let mut config = GroupConfig::three_members();
    config.interval = interval;
    config.timeout = timeout;
    config.election = Duration::from_secs(1).max(timeout);
    config.net_check_targets = vec![Net::Primary.target(), Net::Secondary.target()];
    config.net_check_timeout = Duration::from_millis(50);
    config
}

/// One trial's measurements.
#[derive(Debug, Clone)]
struct Trial {
    killed: String,
    new_hot: String,
    epoch: u64,
    takeover_ms: f64,
    detection_ms: Option<f64>,
    silent_ms: Option<f64>,
    lease_gap_ms: Option<f64>,
    /// Other members that said HS with the new epoch within 3 timeouts (should be none).
    also_hot: Vec<String>,
}

impl Trial {
    fn to_json(&self) -> Value {
        json!({
            "killed": self.killed,
            "new_hot": self.new_hot,
            "epoch": self.epoch,
            "takeover_ms": round1(self.takeover_ms),
            "detection_ms": self.detection_ms.map(round1),
            "silent_ms": self.silent_ms,
            "lease_gap_ms": self.lease_gap_ms.map(round1),
            "also_hot": self.also_hot,
        })
    }
}

/// Runs `trials` host deaths; the report's fields, or an error that ended the run early
/// (with the trials measured so far).
pub fn run(trials: usize, interval: Duration, timeout: Duration) -> (Value, Vec<String>) {
    let config = group_config(interval, timeout);
    let mut errors = Vec::new();
    let mut done: Vec<Trial> = Vec::new();
    let mut failed = 0usize;
    let outcome = crate::guarded("failover lab", || {
        let lab = Lab::new(config.clone());
        eprintln!("failover: lab in {}", lab.dir().display());
        check_config(&lab)?;
        let hot = start_settled(&lab, SETTLE)?;
        eprintln!("failover: group settled, {hot} hot");
        for i in 0..trials {
            crate::check_interrupted()?;
            match trial(&lab, interval, timeout) {
                Ok(t) => {
                    eprintln!(
                        "failover: trial {:>2}/{trials}: {} killed, {} hot (epoch {}) takeover \
                         {:.1} ms, detection {} ms, silent {} ms",
                        i + 1,
                        t.killed,
                        t.new_hot,
                        t.epoch,
                        t.takeover_ms,
                        t.detection_ms.map_or("?".into(), |d| format!("{d:.1}")),
                        t.silent_ms.map_or("?".into(), |d| format!("{d}")),
                    );
                    if !t.also_hot.is_empty() {
                        errors.push(format!("trial {}: also hot: {:?}", i + 1, t.also_hot));
                    }
                    done.push(t);
                }
                Err(e) => {
                    failed += 1;
                    eprintln!("failover: trial {}/{trials} FAILED: {e}", i + 1);
                    errors.push(format!("trial {}: {e}", i + 1));
                    // Try to get back to a settled group; give up when that fails too.
                    restore_all(&lab);
                    wait_settled(&lab, SETTLE)
                        .map_err(|e| format!("after failed trial {}: {e}", i + 1))?;
                }
            }
        }
        Ok(())
    });
    if let Err(e) = outcome {
        errors.push(e);
    }
    let col = |f: fn(&Trial) -> Option<f64>| done.iter().filter_map(f).collect::<Vec<f64>>();
    let report = json!({
        "trials": trials,
        "completed_trials": done.len(),
        "failed_trials": failed,
        "interval_ms": interval.as_millis() as u64,
        "timeout_ms": timeout.as_millis() as u64,
        "election_ms": config.election.as_millis() as u64,
        "net_check": {
            "targets": config.net_check_targets.iter().map(ToString::to_string).collect::<Vec<_>>(),
            "timeout_ms": config.net_check_timeout.as_millis() as u64,
        },
        "detection_ms": summary(&col(|t| t.detection_ms)),
        "takeover_ms": summary(&col(|t| Some(t.takeover_ms))),
        "declared_to_role_file_ms": summary(&col(|t| t.detection_ms.map(|d| t.takeover_ms - d))),
        "silent_ms": summary(&col(|t| t.silent_ms)),
        "lease_gap_ms": summary(&col(|t| t.lease_gap_ms)),
        "per_trial": done.iter().map(Trial::to_json).collect::<Vec<_>>(),
    });
    (report, errors)
}

/// `rdg check-config` on the lab's configuration (the lab runs it too; this one is explicit).
fn check_config(lab: &Lab) -> Result<(), String> {
    let member = lab.member_names().remove(0);
    let out = std::process::Command::new(lab.rdg())
        .arg("check-config")
        .arg(lab.config_file(&member))
        .output()
        .map_err(|e| format!("rdg check-config: {e}"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "rdg check-config: {}: {}{}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ))
    }
}

/// One host death and its restoration.
fn trial(lab: &Lab, interval: Duration, timeout: Duration) -> Result<Trial, String> {
    let hot = wait_settled(lab, SETTLE)?;
    let old = lab
        .role(&hot)
        .ok_or_else(|| format!("{hot} has no role file"))?;
    let others: Vec<(String, PathBuf, PathBuf, u64)> = lab
        .member_names()
        .into_iter()
        .filter(|m| *m != hot)
        .map(|m| {
            let log = lab.log_file(&m).to_path_buf();
            let offset = std::fs::metadata(&log).map_or(0, |md| md.len());
            let role = lab.role_file(&m).to_path_buf();
            (m, role, log, offset)
        })
        .collect();
    // A settled group for a little while, then the kill at a random phase of the heartbeat.
    let pause = Duration::from_millis(300) + interval.mul_f64(rand::random::<f64>());
    std::thread::sleep(pause);

    let t0_real = SystemTime::now();
    let t0 = monotonic_ns();
    lab.host_death(&hot);
    let dead = lab
        .role(&hot)
        .filter(RoleRecord::says_hot)
        .map(|r| r.lease_until_monotonic_ms);

    // Takeover: poll the other role files every millisecond.
    let start = Instant::now();
    let (new_hot, seen_ns, epoch) = loop {
        let now_ns = monotonic_ns();
        if let Some((m, r)) = others
            .iter()
            .filter_map(|(m, path, _, _)| RoleRecord::read(path).map(|r| (m, r)))
            .find(|(_, r)| r.says_hot() && r.epoch > old.epoch)
        {
            break (m.clone(), now_ns, r.epoch);
        }
        if start.elapsed() > TAKEOVER_LIMIT {
            return Err(format!(
                "no takeover within {TAKEOVER_LIMIT:?} of {hot}'s death"
            ));
        }
        crate::check_interrupted()?;
        std::thread::sleep(POLL);
    };
    let takeover_ms = (seen_ns - t0) as f64 / 1e6;
    let lease_gap_ms = dead.map(|lease| (seen_ns as f64 / 1e6) - lease as f64);

    // No second taker: watch the others' role files for 3 timeouts.
    let mut also_hot = Vec::new();
    let watch_end = Instant::now() + timeout * 3;
    while Instant::now() < watch_end {
        for (m, path, _, _) in others.iter().filter(|(m, ..)| *m != new_hot) {
            if RoleRecord::read(path).is_some_and(|r| r.says_hot() && r.epoch >= epoch)
                && !also_hot.contains(m)
            {
                also_hot.push(m.clone());
            }
        }
        std::thread::sleep(Duration::from_millis(10));
    }

    // Detection: the new hot member's log line.
    let (_, _, log, offset) = others
        .iter()
        .find(|(m, ..)| *m == new_hot)
        .expect("the new hot member is one of the others");
    let line = lost_line(log, *offset, &hot);
    let t0_us = t0_real
        .duration_since(UNIX_EPOCH)
        .map_err(|e| format!("the wall clock is before 1970: {e}"))?
        .as_micros() as i64;
    let detection_ms = line
        .as_deref()
        .and_then(|l| crate::logtime::parse_utc_micros(l.split_whitespace().next()?))
        .map(|us| (us - t0_us) as f64 / 1e3);
    let silent_ms = line
        .as_deref()
        .and_then(|l| crate::logtime::field(l, "silent_ms")?.parse::<f64>().ok());
    if line.is_none() {
        eprintln!(
            "failover: no `{LOST_LINE}` line for {hot} in {}",
            log.display()
        );
    }

    revive(lab, &hot);
    Ok(Trial {
        killed: hot,
        new_hot,
        epoch,
        takeover_ms,
        detection_ms,
        silent_ms,
        lease_gap_ms,
        also_hot,
    })
}

/// The first detection line naming `member` after `offset` in `log`.
fn lost_line(log: &Path, offset: u64, member: &str) -> Option<String> {
    crate::logtime::lines_after(log, offset)
        .into_iter()
        .find(|l| {
            l.contains(LOST_LINE)
                && crate::logtime::field(l, "member").is_some_and(|m| m.trim_matches('"') == member)
        })
}

/// Host revival: the role file is gone (it would live on a tmpfs), cables back in, agent
/// started again.
fn revive(lab: &Lab, member: &str) {
    let _ = std::fs::remove_file(lab.role_file(member));
    for net in Net::BOTH {
        lab.link_up(member, net);
    }
    lab.start(member);
}

/// After a failed trial: every cable in, every stopped agent started again.
fn restore_all(lab: &Lab) {
    for m in lab.member_names() {
        for net in Net::BOTH {
            lab.link_up(&m, net);
        }
        if !lab.is_running(&m) {
            let _ = std::fs::remove_file(lab.role_file(&m));
            lab.start(&m);
        }
    }
}

/// CLOCK_MONOTONIC in nanoseconds (the clock of the role file's lease).
fn monotonic_ns() -> u64 {
    let ts = nix::time::clock_gettime(nix::time::ClockId::CLOCK_MONOTONIC)
        .expect("CLOCK_MONOTONIC is readable");
    (ts.tv_sec() as u64) * 1_000_000_000 + ts.tv_nsec() as u64
}

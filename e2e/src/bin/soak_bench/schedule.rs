//! The fault schedule: until the soak's time is up, a quiet pause, then one fault drawn at
//! random, held, healed, and the group's recovery awaited.
//!
//! Each round draws, in this order and whatever the outcome: the pause (`--fault-every-ms`),
//! the kind (equal weights over `--faults`), whether it hits the hot member (one time in two),
//! a member (used when it does not, or when nobody is hot), the hold time (`--hold-ms`), and
//! the fault's details (the cable of `cut-one`, the rate of `loss`). So a seed fixes the
//! sequence of draws; which member is hot when a fault "hits the hot member" depends on the
//! run. The fault in progress is announced to the checker before it is applied, and its end
//! after the heal has completed (for `kill`, once the new agent answers on its status
//! endpoint).
//!
//! **Recovery**: after each heal the schedule waits (up to [`RECOVER`]) until exactly one
//! member is hot and every agent runs; the time it took is in `recovery_ms`, a fault after
//! which the group did not recover in `unrecovered` (the schedule goes on).

use crate::fault::{Fault, Kind};
use crate::situation::Situation;
use rand::{Rng, RngExt};
use rdg_e2e::Lab;
use rdg_e2e::bench;
use rdg_e2e::stats::{self, round1};
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::ops::RangeInclusive;
use std::time::{Duration, Instant};

/// How long the group may take to recover after a heal.
pub const RECOVER: Duration = Duration::from_secs(15);
/// Faults recorded one by one in the report (counts go on).
const LOG_MAX: usize = 500;

/// What the schedule draws from.
pub struct Settings {
    /// How long faults are drawn.
    pub seconds: Duration,
    /// The quiet pause before each fault, in ms.
    pub pause_ms: RangeInclusive<u64>,
    /// How long each fault is held, in ms.
    pub hold_ms: RangeInclusive<u64>,
    /// The kinds drawn.
    pub kinds: Vec<Kind>,
}

/// Runs the schedule; its report, and whether it was interrupted.
pub fn run(
    lab: &Lab,
    s: &Settings,
    rng: &mut impl Rng,
    situation: &Situation,
    start: Instant,
) -> (Value, bool) {
    let names = lab.member_names();
    let mut by_kind: BTreeMap<&str, usize> = BTreeMap::new();
    let mut log = Vec::new();
    let mut recovery_ms = Vec::new();
    let mut unrecovered = Vec::new();
    let mut interrupted = false;
    while start.elapsed() < s.seconds {
        let pause = Duration::from_millis(rng.random_range(s.pause_ms.clone()));
        let kind = s.kinds[rng.random_range(0..s.kinds.len())];
        let on_hot = rng.random_bool(0.5);
        let drawn = names[rng.random_range(0..names.len())].clone();
        let hold = Duration::from_millis(rng.random_range(s.hold_ms.clone()));
        let left = s.seconds.saturating_sub(start.elapsed());
        if bench::sleep(pause.min(left)).is_err() {
            interrupted = true;
            break;
        }
        if start.elapsed() >= s.seconds {
            break;
        }
        let member = if on_hot {
            lab.hot_members().into_iter().next().unwrap_or(drawn)
        } else {
            drawn
        };
        let fault = Fault::draw(kind, member, rng);
        let label = fault.label();
        let at_s = start.elapsed().as_secs_f64();
        eprintln!(
            "soak_bench: {at_s:7.1} s  {label} for {} ms",
            hold.as_millis()
        );
        situation.begin(&label, &fault.out());
        fault.apply(lab);
        // The fault is healed even when interrupted, then the schedule ends.
        interrupted = bench::sleep(hold).is_err();
        fault.heal(lab);
        if kind == Kind::Kill {
            lab.poll_until(RECOVER, || lab.status(&fault.member).is_ok());
        }
        situation.healed();
        *by_kind.entry(kind.name()).or_default() += 1;
        let recovered = lab.poll_until(RECOVER, || {
            lab.hot_members().len() == 1 && names.iter().all(|m| lab.is_running(m))
        });
        match recovered {
            Some(took) => recovery_ms.push(took.as_secs_f64() * 1e3),
            None => {
                eprintln!("soak_bench: no single hot member {RECOVER:?} after healing {label}");
                let stopped: Vec<&String> = names.iter().filter(|m| !lab.is_running(m)).collect();
                unrecovered.push(json!({
                    "at_s": round1(at_s),
                    "fault": label,
                    "hot": lab.hot_members(),
                    "agents_not_running": stopped,
                }));
            }
        }
        if log.len() < LOG_MAX {
            log.push(json!({
                "at_s": round1(at_s),
                "fault": label,
                "hold_ms": hold.as_millis() as u64,
                "recovery_ms": recovered.map(|d| round1(d.as_secs_f64() * 1e3)),
            }));
        }
        if interrupted {
            break;
        }
    }
    let applied: usize = by_kind.values().sum();
    let report = json!({
        "applied": applied,
        "by_kind": by_kind,
        "recovery_ms": stats::summary(&recovery_ms),
        "unrecovered": unrecovered,
        "log": log,
    });
    (report, interrupted)
}

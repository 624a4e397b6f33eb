//! Deterministic simulator: whole groups of [`crate::election::Node`]s on virtual networks
//! with loss, partitions, crashes, restarts, frozen processes and isolated members, in virtual
//! time. Invariants are checked after every event; a failing seed replays identically.
//!
//! ```
//! use rdg_core::sim::{SimOptions, run_seeds};
//! let summary = run_seeds(0, 4, &SimOptions::default(), 1);
//! assert_eq!(summary.violations, 0);
//! ```

mod demo;
mod invariants;
mod scenario;
mod world;

pub use demo::{DEMO_CONFIG, DEMO_KILL_AT, demo_scenario};
pub use invariants::{Checker, Violation};
pub use scenario::{Action, Scenario, ScenarioOptions, net_check_period};
pub use world::{Happening, LogLine, World};

use serde::Serialize;
use std::time::Duration;

/// How to run seeds.
#[derive(Debug, Clone, Copy, Default)]
pub struct SimOptions {
    /// Scenario shape.
    pub scenario: ScenarioOptions,
    /// A rule every member breaks (simulator self-test).
    #[cfg(feature = "fault-injection")]
    pub fault: Option<crate::election::Fault>,
}

/// Result of one seed.
#[derive(Debug, Clone)]
pub struct SeedOutcome {
    /// The seed.
    pub seed: u64,
    /// Invariants broken.
    pub violations: Vec<Violation>,
    /// Takeovers seen.
    pub takeovers: u32,
    /// Failover times measured (hot member taken out → another member hot).
    pub failover_times: Vec<Duration>,
    /// See [`Checker::lease_overlaps_after_loss`].
    pub lease_overlaps_after_loss: u32,
}

/// Runs one seed to the end.
pub fn run_seed(seed: u64, opts: &SimOptions) -> SeedOutcome {
    let world = World::new(Scenario::generate(seed, opts.scenario));
    #[cfg(feature = "fault-injection")]
    let world = match opts.fault {
        Some(f) => world.with_fault(f),
        None => world,
    };
    let checker = world.run();
    SeedOutcome {
        seed,
        violations: checker.violations,
        takeovers: checker.takeovers,
        failover_times: checker.failover_times,
        lease_overlaps_after_loss: checker.lease_overlaps_after_loss,
    }
}

/// Figures over many seeds (printed by `rdg simulate --json`).
#[derive(Debug, Clone, Serialize)]
pub struct Summary {
    /// Seeds run.
    pub seeds: u64,
    /// First seed.
    pub first_seed: u64,
    /// Members per group.
    pub members: usize,
    /// Virtual seconds per seed.
    pub seconds: f64,
    /// Invariant violations (0 expected).
    pub violations: usize,
    /// Seeds with at least one violation.
    pub failing_seeds: Vec<u64>,
    /// Takeovers seen.
    pub failovers: u64,
    /// Failover times measured.
    pub failover_samples: usize,
    /// Median failover time.
    pub p50_failover_ms: f64,
    /// 99th percentile failover time.
    pub p99_failover_ms: f64,
    /// Longest failover time.
    pub max_failover_ms: f64,
    /// Seed with the longest failover time (to replay it).
    pub max_failover_seed: Option<u64>,
    /// Takeovers during a crashed member's lease, explained by its last heartbeats being lost
    /// (see [`Checker::lease_overlaps_after_loss`]).
    pub lease_overlaps_after_loss: u64,
    /// The first violations (at most 20), to replay with `--seed`.
    pub first_violations: Vec<Violation>,
}

/// Runs `count` seeds from `first` on `threads` threads and sums them up.
pub fn run_seeds(first: u64, count: u64, opts: &SimOptions, threads: usize) -> Summary {
    let threads = threads.clamp(1, 64) as u64;
    let outcomes: Vec<SeedOutcome> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..threads)
            .map(|t| {
                s.spawn(move || {
                    (first + t..first + count)
                        .step_by(threads as usize)
                        .map(|seed| run_seed(seed, opts))
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().unwrap_or_else(|p| std::panic::resume_unwind(p)))
            .collect()
    });
    summarize(first, count, opts, outcomes)
}

fn summarize(first: u64, count: u64, opts: &SimOptions, mut outcomes: Vec<SeedOutcome>) -> Summary {
    outcomes.sort_by_key(|o| o.seed);
    let max_failover_seed = outcomes
        .iter()
        .flat_map(|o| o.failover_times.iter().map(move |t| (*t, o.seed)))
        .max()
        .map(|(_, seed)| seed);
    let mut times: Vec<Duration> = outcomes
        .iter()
        .flat_map(|o| o.failover_times.iter().copied())
        .collect();
    times.sort();
    let pct = |p: f64| -> f64 {
        if times.is_empty() {
            return 0.0;
        }
        let i = ((times.len() as f64 - 1.0) * p).round() as usize;
        times[i].as_secs_f64() * 1000.0
    };
    let violations: Vec<Violation> = outcomes
        .iter()
        .flat_map(|o| o.violations.iter().cloned())
        .collect();
    let mut failing: Vec<u64> = outcomes
        .iter()
        .filter(|o| !o.violations.is_empty())
        .map(|o| o.seed)
        .collect();
    failing.truncate(100);
    Summary {
        seeds: count,
        first_seed: first,
        members: opts.scenario.members,
        seconds: opts.scenario.duration.as_secs_f64(),
        violations: violations.len(),
        failing_seeds: failing,
        failovers: outcomes.iter().map(|o| u64::from(o.takeovers)).sum(),
        failover_samples: times.len(),
        p50_failover_ms: pct(0.5),
        p99_failover_ms: pct(0.99),
        max_failover_ms: pct(1.0),
        max_failover_seed,
        lease_overlaps_after_loss: outcomes
            .iter()
            .map(|o| u64::from(o.lease_overlaps_after_loss))
            .sum(),
        first_violations: violations.into_iter().take(20).collect(),
    }
}

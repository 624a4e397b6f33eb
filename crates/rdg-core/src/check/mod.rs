//! Explicit-state model checker of the election: every state a group of 2 or 3 real
//! [`crate::election::Node`]s on two networks can reach within a bounded number of actions
//! and faults, with the simulator's safety invariants checked in each one.
//!
//! Where the simulator samples random schedules, this enumerates them all: from a cold start
//! and from a settled group, breadth first, every interleaving of time passing, datagram
//! delivery and the faults (lose, duplicate or reorder a datagram; a link down; kill -9;
//! SIGSTOP; a failing net check) and their undoing (link up, restart, SIGCONT, net check
//! passing). A broken rule comes with a shortest trace.
//!
//! ```
//! use rdg_core::check::{CheckOptions, run};
//! let report = run(&CheckOptions { members: 2, depth: 6, max_faults: 1, ..CheckOptions::default() });
//! assert!(report.violations.is_empty());
//! assert!(report.states > 10);
//! ```

mod explore;
mod invariants;
mod model;

pub use invariants::History;
pub use model::{Action, Datagram, Host, Model, NETWORKS, TraceLine, World, config};

use serde::Serialize;
use std::time::Instant;

/// What to check.
#[derive(Debug, Clone, Copy)]
pub struct CheckOptions {
    /// Members of the group (2 or 3).
    pub members: usize,
    /// Most actions on a path from a start state.
    pub depth: usize,
    /// Most faults on a path.
    pub max_faults: u32,
    /// A rule every member breaks (model checker self-test).
    #[cfg(feature = "fault-injection")]
    pub fault: Option<crate::election::Fault>,
}

/// Depth of `rdg model-check` (and CI) by default for a group of `members`: about 1.4 s of
/// virtual time with 2 members, 1 s with 3, in well under a minute each in release.
pub fn default_depth(members: usize) -> usize {
    if members <= 2 { 28 } else { 20 }
}
/// Faults per path of `rdg model-check` by default.
pub const DEFAULT_MAX_FAULTS: u32 = 2;

impl Default for CheckOptions {
    fn default() -> Self {
        CheckOptions {
            members: 3,
            depth: default_depth(3),
            max_faults: DEFAULT_MAX_FAULTS,
            #[cfg(feature = "fault-injection")]
            fault: None,
        }
    }
}

/// A broken rule and the shortest way there.
#[derive(Debug, Clone, Serialize)]
pub struct Counterexample {
    /// Short name of the rule (as in the simulator: `two-hot`, `net-check`, ...).
    pub rule: &'static str,
    /// What happened.
    pub detail: String,
    /// Virtual time of the step that broke it, in milliseconds.
    pub at_ms: u64,
    /// Actions from the start state of the search.
    pub depth: usize,
    /// From the cold start: every action and every member's events, in order; the last line
    /// names the broken rule.
    pub trace: Vec<TraceLine>,
}

/// What one check found (printed by `rdg model-check --json`).
#[derive(Debug, Clone, Serialize)]
pub struct CheckReport {
    /// Members of the group.
    pub members: usize,
    /// Depth bound.
    pub depth: usize,
    /// Faults allowed per path.
    pub max_faults: u32,
    /// The deliberately broken rule, if any.
    pub fault: Option<String>,
    /// Distinct states reached.
    pub states: u64,
    /// Steps taken.
    pub transitions: u64,
    /// Deepest level reached.
    pub max_depth_reached: usize,
    /// Every reachable state was seen before the depth bound.
    pub exhausted: bool,
    /// Wall time in seconds.
    pub seconds: f64,
    /// Broken rules (the search stops at the first).
    pub violations: Vec<Counterexample>,
}

/// Explores the model described by `opts`.
pub fn run(opts: &CheckOptions) -> CheckReport {
    let started = Instant::now();
    assert!(
        (2..=3).contains(&opts.members),
        "the model has 2 or 3 members"
    );
    #[allow(unused_mut)]
    let mut model = Model::new(opts.members, opts.max_faults);
    #[allow(unused_mut, unused_assignments)]
    let mut fault = None;
    #[cfg(feature = "fault-injection")]
    {
        model.fault = opts.fault;
        fault = opts.fault.map(|f| format!("{f:?}"));
    }
    let starts = vec![(model.cold_start(), Vec::new()), model.settled()];
    let o = explore::explore(&model, &starts, opts.depth);
    let violations = o
        .violation
        .map(|(b, depth, trace)| Counterexample {
            rule: b.rule,
            detail: b.detail,
            at_ms: trace.last().map_or(0, |l| l.at_ms),
            depth,
            trace,
        })
        .into_iter()
        .collect();
    CheckReport {
        members: opts.members,
        depth: opts.depth,
        max_faults: opts.max_faults,
        fault,
        states: o.states,
        transitions: o.transitions,
        max_depth_reached: o.max_depth,
        exhausted: o.exhausted,
        seconds: (started.elapsed().as_secs_f64() * 1000.0).round() / 1000.0,
        violations,
    }
}

/// The fault called `name` (its `Debug` name, any case).
#[cfg(feature = "fault-injection")]
pub fn fault_by_name(name: &str) -> Option<crate::election::Fault> {
    use crate::election::Fault;
    [
        Fault::SingleNetworkLiveness,
        Fault::IgnoreNetCheck,
        Fault::PromotePriorityZero,
        Fault::NoConflictResolution,
    ]
    .into_iter()
    .find(|f| format!("{f:?}").eq_ignore_ascii_case(name))
}

//! The simulator itself: clean runs stay clean, replays are identical, and each deliberately
//! broken rule is caught.

use rdg_core::election::Fault;
use rdg_core::sim::{ScenarioOptions, SimOptions, run_seed, run_seeds};
use std::time::Duration;

fn opts(fault: Option<Fault>) -> SimOptions {
    SimOptions {
        scenario: ScenarioOptions {
            members: 3,
            duration: Duration::from_secs(30),
        },
        fault,
    }
}

#[test]
fn many_seeds_without_violations() {
    let s = run_seeds(0, 400, &opts(None), 2);
    assert_eq!(s.violations, 0, "{:?}", s.first_violations);
    assert!(
        s.failovers > 100,
        "the scenarios do exercise failovers: {}",
        s.failovers
    );
    assert!(s.max_failover_ms > 0.0);
}

#[test]
fn five_members_without_violations() {
    let mut o = opts(None);
    o.scenario.members = 5;
    let s = run_seeds(1000, 100, &o, 2);
    assert_eq!(s.violations, 0, "{:?}", s.first_violations);
}

#[test]
fn a_seed_replays_identically() {
    let a = run_seed(42, &opts(None));
    let b = run_seed(42, &opts(None));
    assert_eq!(a.failover_times, b.failover_times);
    assert_eq!(a.takeovers, b.takeovers);
    assert_eq!(a.violations, b.violations);
}

fn caught(fault: Fault, rule: &str) {
    let s = run_seeds(0, 300, &opts(Some(fault)), 2);
    assert!(s.violations > 0, "{fault:?} went unnoticed");
    assert!(
        s.first_violations.iter().any(|v| v.rule == rule),
        "{fault:?} should break {rule}: {:?}",
        s.first_violations
    );
    let v = &s.first_violations[0];
    let replay = run_seed(v.seed, &opts(Some(fault)));
    assert!(
        replay.violations.contains(v),
        "the failing seed replays the same violation"
    );
}

#[test]
fn catches_takeover_on_a_single_network_cut() {
    caught(Fault::SingleNetworkLiveness, "single-network");
}

#[test]
fn catches_ignoring_the_net_check() {
    caught(Fault::IgnoreNetCheck, "net-check");
}

#[test]
fn catches_promoting_priority_zero() {
    caught(Fault::PromotePriorityZero, "priority-zero");
}

#[test]
fn catches_two_hot_members_that_never_resolve() {
    caught(Fault::NoConflictResolution, "two-hot");
}

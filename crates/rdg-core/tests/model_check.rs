//! The model checker: the real election keeps every invariant in every state it explores, and
//! each deliberately broken rule is caught with a trace that shows how.

use rdg_core::check::{CheckOptions, CheckReport, run};
use rdg_core::election::Fault;

fn check(members: usize, depth: usize, max_faults: u32, fault: Option<Fault>) -> CheckReport {
    run(&CheckOptions {
        members,
        depth,
        max_faults,
        fault,
    })
}

#[test]
fn two_members_keep_every_invariant() {
    let r = check(2, 24, 1, None);
    assert!(r.violations.is_empty(), "{:#?}", r.violations);
    assert_eq!(r.max_depth_reached, 24);
    assert!(r.states > 5_000, "explored only {} states", r.states);
}

#[test]
fn three_members_keep_every_invariant() {
    let r = check(3, 20, 1, None);
    assert!(r.violations.is_empty(), "{:#?}", r.violations);
    assert_eq!(r.max_depth_reached, 20);
    assert!(r.states > 5_000, "explored only {} states", r.states);
}

/// `fault` must break `rule`, with a trace that starts the group and ends where it broke.
fn caught(members: usize, fault: Fault, rule: &str) {
    let r = check(members, 30, 1, Some(fault));
    let v = r
        .violations
        .first()
        .unwrap_or_else(|| panic!("{fault:?} went unnoticed in {} states", r.states));
    println!("{fault:?}: {} ({} states)", v.detail, r.states);
    for l in &v.trace {
        println!("{:>6} ms {:<3} {}", l.at_ms, l.member, l.text);
    }
    assert_eq!(v.rule, rule, "{fault:?}: {v:#?}");
    assert!(
        v.trace.len() > 2,
        "{fault:?}: trace too short: {:#?}",
        v.trace
    );
    assert!(v.trace[0].text.starts_with("start"), "{:#?}", v.trace);
    assert_eq!(r.fault.as_deref(), Some(format!("{fault:?}").as_str()));
}

#[test]
fn catches_takeover_on_a_single_network_cut() {
    caught(2, Fault::SingleNetworkLiveness, "single-network");
}

#[test]
fn catches_ignoring_the_net_check() {
    caught(2, Fault::IgnoreNetCheck, "net-check");
}

#[test]
fn catches_promoting_priority_zero() {
    caught(3, Fault::PromotePriorityZero, "priority-zero");
}

#[test]
fn catches_two_hot_members_that_never_resolve() {
    caught(2, Fault::NoConflictResolution, "two-hot");
}

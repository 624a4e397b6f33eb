//! The election rules, one readable scenario each, on the simulator's virtual networks.
//! Every scenario also runs the simulator's invariant checks; none may fire.

use rdg_core::State;
use rdg_core::config::GroupConfig;
use rdg_core::sim::{Action, Scenario, World};
use std::time::Duration;

mod common;
use common::ms;

const GROUP: &str = "\
name: infocast
heartbeat: {interval: 100ms, timeout: 300ms}
networks:
  - {name: primary, multicast: 224.0.0.35}
  - {name: secondary, multicast: 224.0.0.36}
members:
  - {name: a, priority: 100, addresses: {primary: 10.0.0.11, secondary: 10.1.0.11}}
  - {name: b, priority: 50, addresses: {primary: 10.0.0.12, secondary: 10.1.0.12}}
  - {name: c, priority: 10, addresses: {primary: 10.0.0.13, secondary: 10.1.0.13}}
timeouts: {election: 1s, waitingHot: 1500ms}
netCheck: {targets: [10.0.0.1], timeout: 200ms}
";

fn world(yaml: &str, actions: Vec<(u64, Action)>) -> World {
    world_with(yaml, actions, false)
}

fn world_with(yaml: &str, actions: Vec<(u64, Action)>, targets_everywhere: bool) -> World {
    let config = GroupConfig::from_yaml(yaml).expect("test config parses");
    config.validate().expect("test config is valid");
    World::new(Scenario {
        seed: 7,
        config,
        loss: vec![0.0, 0.0],
        targets_everywhere,
        duration: Duration::from_secs(60),
        actions: actions.into_iter().map(|(t, a)| (ms(t), a)).collect(),
    })
    .with_log()
}

fn state(w: &World, name: &str) -> State {
    let m = w.member(name).expect("member exists");
    w.state_of(m).expect("member runs").0
}

fn assert_clean(w: &World) {
    let v = &w.checker().violations;
    assert!(v.is_empty(), "invariant violations: {v:?}");
}

/// Starts a, b, c 300 ms apart and lets the election settle.
fn started() -> Vec<(u64, Action)> {
    vec![
        (0, Action::Start(0)),
        (300, Action::Start(1)),
        (600, Action::Start(2)),
    ]
}

#[test]
fn first_up_wins_even_with_lower_priority() {
    // c (priority 10) starts alone; a and b join later and must stay standby.
    let mut w = world(
        GROUP,
        vec![
            (0, Action::Start(2)),
            (2000, Action::Start(0)),
            (2100, Action::Start(1)),
        ],
    );
    w.run_until(ms(1500));
    assert_eq!(w.hot_members(), ["c"]);
    w.run_until(ms(5000));
    assert_eq!(w.hot_members(), ["c"]);
    assert_eq!(state(&w, "a"), State::SBS);
    assert_eq!(state(&w, "b"), State::SBS);
    let coordinator = w
        .take_log()
        .into_iter()
        .any(|l| l.member == "a" && l.text == "Primary/coordinator: c@10.0.0.13");
    assert!(coordinator, "a logs the hot member like Infocast does");
    assert_clean(&w);
}

#[test]
fn simultaneous_start_elects_highest_priority() {
    let mut w = world(
        GROUP,
        vec![
            (0, Action::Start(2)),
            (5, Action::Start(1)),
            (10, Action::Start(0)),
        ],
    );
    w.run_until(ms(3000));
    assert_eq!(w.hot_members(), ["a"]);
    assert_clean(&w);
}

#[test]
fn host_death_best_standby_takes_over_with_next_epoch() {
    let mut actions = started();
    actions.extend([
        (3000, Action::LinkDown(0, 0)),
        (3000, Action::LinkDown(0, 1)),
        (3000, Action::Crash(0)),
    ]);
    let mut w = world(GROUP, actions);
    w.run_until(ms(2900));
    assert_eq!(w.hot_members(), ["a"]);
    let epoch_before = w.state_of(0).unwrap().2;
    w.run_until(ms(3400));
    assert_eq!(w.hot_members(), ["b"], "b has the highest priority left");
    assert_eq!(w.state_of(1).unwrap().2, epoch_before + 1);
    assert_eq!(state(&w, "c"), State::SBS);
    let t = w.checker().failover_times[0];
    assert!(
        t <= ms(300),
        "detected within the timeout after the last heartbeat: {t:?}"
    );
    assert_clean(&w);
}

#[test]
fn one_network_cut_is_an_anomaly_not_a_takeover() {
    let mut actions = started();
    actions.extend([(3000, Action::LinkDown(0, 1)), (5000, Action::LinkUp(0, 1))]);
    let mut w = world(GROUP, actions);
    w.run_until(ms(4500));
    assert_eq!(w.hot_members(), ["a"]);
    let log = w.take_log();
    assert!(
        log.iter()
            .any(|l| l.member == "b" && l.text.contains("network anomaly: a silent on network 1")),
        "b reports the anomaly"
    );
    w.run_until(ms(6000));
    assert_eq!(w.hot_members(), ["a"]);
    let log = w.take_log();
    assert!(
        log.iter()
            .any(|l| l.member == "b" && l.text.contains("network recovered: a"))
    );
    assert_clean(&w);
}

#[test]
fn both_networks_cut_means_takeover() {
    let mut actions = started();
    actions.extend([
        (3000, Action::LinkDown(0, 1)),
        (3000, Action::LinkDown(0, 0)),
    ]);
    let mut w = world(GROUP, actions);
    w.run_until(ms(3500));
    // a is cut off from everything (net-check targets too): it goes CS, b takes over.
    assert_eq!(w.hot_members(), ["b"]);
    w.run_until(ms(4500));
    assert_eq!(state(&w, "a"), State::CS);
    assert_clean(&w);
}

#[test]
fn isolated_standby_goes_cs_and_never_takes_over() {
    let mut actions = started();
    actions.extend([
        (2500, Action::Isolate(1)),
        (4000, Action::LinkDown(0, 0)),
        (4000, Action::LinkDown(0, 1)),
        (4000, Action::Crash(0)),
    ]);
    let mut w = world(GROUP, actions);
    w.run_until(ms(3500));
    assert_eq!(state(&w, "b"), State::CS, "two failed net checks");
    w.run_until(ms(5000));
    assert_eq!(
        w.hot_members(),
        ["c"],
        "the non-isolated standby takes over, not b"
    );
    assert_clean(&w);
}

#[test]
fn priority_zero_is_never_promoted_automatically_only_by_command() {
    let yaml = GROUP.replace("{name: b, priority: 50", "{name: b, priority: 0");
    let mut w = world(
        &yaml,
        vec![
            (0, Action::Start(0)),
            (300, Action::Start(1)),
            (3000, Action::Crash(0)),
            (8000, Action::Switchover { at: 1, to: 1 }),
        ],
    );
    w.run_until(ms(7900));
    assert!(
        w.hot_members().is_empty(),
        "b is the last one but has priority 0"
    );
    assert_eq!(state(&w, "b"), State::SBS);
    w.run_until(ms(8100));
    assert_eq!(w.hot_members(), ["b"], "the operator's command promotes it");
    assert_clean(&w);
}

#[test]
fn manual_switchover_releases_first_then_target_takes_over() {
    let yaml = GROUP.replace("{name: c, priority: 10", "{name: c, priority: 0");
    let mut actions = started();
    actions.push((3000, Action::Switchover { at: 1, to: 2 }));
    let mut w = world(&yaml, actions);
    w.run_until(ms(2900));
    assert_eq!(w.hot_members(), ["a"]);
    w.take_log();
    w.run_until(ms(3100));
    assert_eq!(
        w.hot_members(),
        ["c"],
        "priority 0 allowed by an operator's command"
    );
    let log = w.take_log();
    let released = log
        .iter()
        .position(|l| l.member == "a" && l.text.starts_with("released"));
    let hot = log
        .iter()
        .position(|l| l.member == "c" && l.text.starts_with("became HOT"));
    assert!(
        released.is_some() && hot.is_some() && released < hot,
        "old releases before new starts: {log:?}"
    );
    assert_clean(&w);
}

#[test]
fn graceful_stop_hands_over_without_waiting_for_the_timeout() {
    let mut actions = started();
    actions.push((3000, Action::Stop(0)));
    let mut w = world(GROUP, actions);
    w.run_until(ms(3010));
    assert_eq!(
        w.hot_members(),
        ["b"],
        "b took over within milliseconds, not after 300 ms"
    );
    assert_clean(&w);
}

#[test]
fn returning_member_stays_standby_without_preempt() {
    let mut actions = started();
    actions.extend([(3000, Action::Crash(0)), (5000, Action::Start(0))]);
    let mut w = world(GROUP, actions);
    w.run_until(ms(9000));
    assert_eq!(w.hot_members(), ["b"]);
    assert_eq!(state(&w, "a"), State::SBS);
    assert_clean(&w);
}

#[test]
fn returning_member_takes_back_with_preempt_by_planned_handover() {
    let yaml = format!("{GROUP}preempt: true\npreemptDelay: 500ms\n");
    let mut actions = started();
    actions.extend([(3000, Action::Crash(0)), (5000, Action::Start(0))]);
    let mut w = world(&yaml, actions);
    w.run_until(ms(5400));
    assert_eq!(w.hot_members(), ["b"], "not before preemptDelay");
    w.take_log();
    w.run_until(ms(9000));
    assert_eq!(w.hot_members(), ["a"]);
    let log = w.take_log();
    assert!(
        log.iter()
            .any(|l| l.member == "b" && l.text == "released the hot role (handover)")
    );
    assert_clean(&w);
}

#[test]
fn partition_heal_leaves_one_hot_member_within_an_interval() {
    // a is cut off from b and c on both networks, but every host reaches its own net-check
    // target: both sides end up with a hot member (split brain is unavoidable while the
    // networks are split). The heal must leave one within an interval.
    let mut actions = started();
    actions.extend([
        (3000, Action::Partition(0, 0b001)),
        (3000, Action::Partition(1, 0b001)),
        (6000, Action::Heal(0)),
        (6000, Action::Heal(1)),
    ]);
    let mut w = world_with(GROUP, actions, true);
    w.run_until(ms(5000));
    assert_eq!(w.hot_members(), ["a", "b"], "each side has its hot member");
    assert!(
        w.state_of(1).unwrap().2 > w.state_of(0).unwrap().2,
        "b's term is newer"
    );
    w.run_until(ms(6100));
    assert_eq!(
        w.hot_members(),
        ["b"],
        "the newer epoch stays, a steps down within an interval"
    );
    assert_eq!(state(&w, "a"), State::SBS);
    assert_clean(&w);
}

#[test]
fn frozen_hot_member_loses_its_lease_and_steps_down_on_resume() {
    let mut actions = started();
    actions.extend([(3000, Action::Freeze(0)), (3600, Action::Resume(0))]);
    let mut w = world(GROUP, actions);
    w.run_until(ms(3500));
    assert_eq!(
        w.hot_members(),
        ["b"],
        "a is frozen; b took over after the timeout"
    );
    let lease = w.checker().violations.is_empty();
    assert!(lease, "a's lease ran out before b took over");
    w.take_log();
    w.run_until(ms(3601));
    assert_eq!(w.hot_members(), ["b"], "a stepped down at once on resume");
    let log = w.take_log();
    assert!(
        log.iter()
            .any(|l| l.member == "a" && l.text == "released the hot role (lease-expired)")
    );
    assert_clean(&w);
}

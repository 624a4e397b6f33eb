//! The scripted scenario behind `rdg demo`: three members start, the hot one dies, a standby
//! takes over, a network hiccup is reported without a takeover, the old member returns as
//! standby.

use super::scenario::{Action, Scenario};
use crate::config::GroupConfig;
use std::time::Duration;

/// The demo group's configuration (also shipped as `examples/demo.yaml`).
pub const DEMO_CONFIG: &str = "\
name: infocast
heartbeat: {interval: 100ms, timeout: 300ms, port: 8035, ttl: 5}
networks:
  - {name: primary, multicast: 224.0.0.35}
  - {name: secondary, multicast: 224.0.0.36}
members:
  - {name: ics-a, priority: 100, addresses: {primary: 10.0.0.11, secondary: 10.1.0.11}}
  - {name: ics-b, priority: 50, addresses: {primary: 10.0.0.12, secondary: 10.1.0.12}}
  - {name: ics-c, priority: 10, addresses: {primary: 10.0.0.13, secondary: 10.1.0.13}}
timeouts: {election: 1s, waitingHot: 1500ms}
netCheck: {targets: [10.0.0.1], timeout: 200ms}
";

/// When the demo kills the hot member.
pub const DEMO_KILL_AT: Duration = Duration::from_millis(3000);

/// The demo scenario: timeline of starts and faults on the demo group.
pub fn demo_scenario() -> Scenario {
    let config = GroupConfig::from_yaml(DEMO_CONFIG).expect("demo config parses");
    let ms = Duration::from_millis;
    let actions = vec![
        (ms(0), Action::Start(0)),
        (ms(300), Action::Start(1)),
        (ms(600), Action::Start(2)),
        // Host death of ics-a: both links down and the process killed.
        (DEMO_KILL_AT, Action::LinkDown(0, 0)),
        (DEMO_KILL_AT, Action::LinkDown(0, 1)),
        (DEMO_KILL_AT, Action::Crash(0)),
        // ics-c's secondary link flaps: an anomaly is reported, nobody takes over.
        (ms(4500), Action::LinkDown(2, 1)),
        (ms(5500), Action::LinkUp(2, 1)),
        // ics-a comes back: it stays standby (no preemption).
        (ms(6000), Action::LinkUp(0, 0)),
        (ms(6000), Action::LinkUp(0, 1)),
        (ms(6000), Action::Start(0)),
    ];
    Scenario {
        seed: 1,
        config,
        loss: vec![0.0, 0.0],
        targets_everywhere: false,
        duration: ms(8000),
        actions,
    }
}

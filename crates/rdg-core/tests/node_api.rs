//! The sans-IO API used directly, as the agent will: paths the simulator does not drive.

use rdg_core::config::GroupConfig;
use rdg_core::election::{Destination, Event, HotReason, Input, Node, Output, Params};
use rdg_core::wire::{Flags, Message, MessageType};
use rdg_core::{State, TemporalState};
use std::net::SocketAddr;

mod common;
use common::ms;

const GROUP: &str = "\
name: g
heartbeat: {interval: 100ms, timeout: 300ms}
networks: [{name: primary, multicast: 224.0.0.35}]
members:
  - {name: a, priority: 100, addresses: {primary: 10.0.0.11}}
  - {name: b, priority: 50, addresses: {primary: 10.0.0.12}}
";

fn node(yaml: &str, member: &str) -> Node {
    let cfg = GroupConfig::from_yaml(yaml).unwrap();
    Node::new(Params::from_config(&cfg, member).unwrap(), 1, ms(0))
}

fn from() -> SocketAddr {
    "10.0.0.99:40000".parse().unwrap()
}

fn msg(kind: MessageType, member: &str, state: State, seq: u64) -> Message {
    Message {
        kind,
        group: "g".into(),
        member: member.into(),
        state,
        temporal: TemporalState::None,
        priority: 50,
        epoch: 0,
        incarnation: 9,
        sequence: seq,
        network: 0,
        flags: Flags::NET_CHECK_OK,
        hot: String::new(),
        hot_heard_ago: None,
        content: None,
    }
}

/// `m` arriving on network `m.network`.
fn received(message: Message) -> Input {
    Input::Received {
        network: message.network,
        from: from(),
        message,
    }
}

/// Drives `node` as the agent does: woken only at its `next_deadline()` and when one of
/// `inputs` (at their times in ms; equal times in the given order) arrives. After every step
/// `each(now, node, outputs)` runs; driving stops past `until` ms or when `each` says true.
fn drive(
    node: &mut Node,
    mut inputs: Vec<(u64, Input)>,
    until: u64,
    mut each: impl FnMut(u64, &Node, Vec<Output>) -> bool,
) {
    inputs.sort_by_key(|(t, _)| *t);
    let mut inputs = inputs.into_iter().peekable();
    loop {
        let deadline = node
            .next_deadline()
            .map_or(u64::MAX, |d| d.as_millis() as u64);
        let next_input = inputs.peek().map_or(u64::MAX, |(t, _)| *t);
        let now = deadline.min(next_input);
        if now > until {
            return;
        }
        let input = if next_input <= deadline {
            inputs.next().expect("peeked").1
        } else {
            Input::Tick
        };
        let out = node.handle(ms(now), input);
        if each(now, node, out) {
            return;
        }
    }
}

#[test]
fn standalone_is_hot_at_once_with_a_renewed_lease_and_sends_nothing() {
    let yaml = "name: \"\"\n";
    let mut n = node(yaml, "solo");
    let out = n.handle(ms(0), Input::Tick);
    assert!(out.iter().any(|o| matches!(
        o,
        Output::Event(Event::BecameHot {
            reason: HotReason::Standalone,
            ..
        })
    )));
    assert_eq!(n.state(), State::HS);
    let out = n.handle(ms(100), Input::Tick);
    assert!(
        !out.iter().any(|o| matches!(o, Output::Send { .. })),
        "no heartbeats"
    );
    assert!(out.iter().any(|o| matches!(
        o,
        Output::Role { state: State::HS, lease_until: Some(l), .. } if *l > ms(100)
    )));
}

#[test]
fn unknown_config_member_is_refused() {
    let cfg = GroupConfig::from_yaml(GROUP).unwrap();
    assert!(Params::from_config(&cfg, "zz").is_err());
}

#[test]
fn status_query_is_answered_to_the_sender() {
    let mut n = node(GROUP, "a");
    n.handle(ms(0), Input::Tick);
    let q = msg(MessageType::StatusQuery, "rdg-status", State::SS, 1);
    let out = n.handle(
        ms(10),
        Input::Received {
            network: 0,
            from: from(),
            message: q,
        },
    );
    let reply = out.iter().find_map(|o| match o {
        Output::Send {
            to: Destination::To(a),
            message,
            ..
        } => Some((*a, message.clone())),
        _ => None,
    });
    let (to, reply) = reply.expect("a reply");
    assert_eq!(to, from());
    assert_eq!(reply.kind, MessageType::StatusReply);
    assert_eq!(reply.member, "a");
    assert_eq!(reply.state, State::SS);
}

#[test]
fn a_datagram_claiming_our_own_name_is_reported_and_changes_nothing() {
    let mut n = node(GROUP, "a");
    n.handle(ms(0), Input::Tick);
    let fake = msg(MessageType::Heartbeat, "a", State::HS, 1);
    let out = n.handle(
        ms(10),
        Input::Received {
            network: 0,
            from: from(),
            message: fake,
        },
    );
    assert!(
        out.iter()
            .any(|o| matches!(o, Output::Event(Event::DuplicateMember { .. })))
    );
    assert_eq!(
        (n.state(), n.temporal()),
        (State::SS, TemporalState::Election)
    );
}

#[test]
fn wrong_group_and_wrong_network_change_nothing() {
    let mut n = node(GROUP, "a");
    n.handle(ms(0), Input::Tick);
    let mut other = msg(MessageType::Heartbeat, "b", State::HS, 1);
    other.group = "other".into();
    n.handle(
        ms(10),
        Input::Received {
            network: 0,
            from: from(),
            message: other,
        },
    );
    let mut wrong_net = msg(MessageType::Heartbeat, "b", State::HS, 2);
    wrong_net.network = 1;
    n.handle(
        ms(20),
        Input::Received {
            network: 0,
            from: from(),
            message: wrong_net,
        },
    );
    assert_eq!(n.hot(), None);
    assert_eq!(n.state(), State::SS);
}

#[test]
fn graceful_stop_of_the_hot_member_releases_before_it_says_leaving() {
    let mut n = node(GROUP, "a");
    n.handle(ms(0), Input::Tick);
    let mut t = 0;
    while n.state() != State::HS {
        t += 100;
        n.handle(ms(t), Input::Tick);
        assert!(t < 5000, "a wins the election alone");
    }
    let out = n.handle(ms(t + 1), Input::Shutdown);
    let role = out.iter().position(|o| {
        matches!(
            o,
            Output::Role {
                state: State::SBS,
                lease_until: None,
                ..
            }
        )
    });
    let leaving = out.iter().position(
        |o| matches!(o, Output::Send { message, .. } if message.kind == MessageType::Leaving),
    );
    assert!(
        role.is_some() && leaving.is_some() && role < leaving,
        "{out:?}"
    );
    assert_eq!(out.last(), Some(&Output::Stopped));
    assert!(n.next_deadline().is_none());
    assert!(n.handle(ms(t + 2), Input::Tick).is_empty());
}

const THREE: &str = "\
name: g
heartbeat: {interval: 100ms, timeout: 300ms}
networks: [{name: primary, multicast: 224.0.0.35}]
members:
  - {name: a, priority: 100, addresses: {primary: 10.0.0.11}}
  - {name: b, priority: 50, addresses: {primary: 10.0.0.12}}
  - {name: c, priority: 10, addresses: {primary: 10.0.0.13}}
";

#[test]
fn a_hot_member_vouched_for_by_another_standby_is_not_taken_over() {
    // b hears a (hot) until 1 s, then loses a's heartbeats (packet loss on b's side only);
    // c keeps hearing a until 2 s and says so in its heartbeats. b must wait for a until c's
    // word runs out, then take over no earlier than a timeout after a was last heard by c.
    let mut b = node(THREE, "b");
    let mut seq = 0;
    let mut became_hot = None;
    for t in (0..3000).step_by(10) {
        let now = ms(t);
        let mut inputs = vec![Input::Tick];
        if t % 100 == 0 {
            seq += 1;
            if t < 1000 {
                let mut hb = msg(MessageType::Heartbeat, "a", State::HS, seq);
                hb.epoch = 1;
                hb.hot = "a".into();
                inputs.push(Input::Received {
                    network: 0,
                    from: from(),
                    message: hb,
                });
            }
            let mut hb = msg(MessageType::Heartbeat, "c", State::SBS, seq);
            hb.epoch = 1;
            hb.hot = "a".into();
            // c heard a 5 ms ago until a dies at 2 s; afterwards its word grows old.
            hb.hot_heard_ago = Some(ms(t.saturating_sub(1995).max(5)));
            inputs.push(Input::Received {
                network: 0,
                from: from(),
                message: hb,
            });
        }
        for input in inputs {
            b.handle(now, input);
        }
        if t > 1000 && t < 2000 {
            assert_eq!(
                (b.state(), b.hot()),
                (State::SBS, Some("a")),
                "at {t} ms b still follows a"
            );
        }
        if b.state() == State::HS && became_hot.is_none() {
            became_hot = Some(t);
        }
    }
    let t = became_hot.expect("b took over once c's word ran out");
    assert!(
        (1995 + 300..=1995 + 300 + 150).contains(&t),
        "b took over at {t} ms, a timeout after c last heard a (1995 ms)"
    );
}

#[test]
fn a_standby_vouches_only_for_the_hot_member_it_hears_itself() {
    let mut c = node(THREE, "c");
    let mut hb = msg(MessageType::Heartbeat, "a", State::HS, 1);
    hb.epoch = 1;
    hb.hot = "a".into();
    c.handle(
        ms(0),
        Input::Received {
            network: 0,
            from: from(),
            message: hb,
        },
    );
    let vouch = |out: Vec<Output>| {
        out.into_iter().find_map(|o| match o {
            Output::Send { message, .. } if message.kind == MessageType::Heartbeat => {
                Some((message.hot, message.hot_heard_ago))
            }
            _ => None,
        })
    };
    let said = vouch(c.handle(ms(100), Input::Tick)).expect("c heartbeats");
    assert_eq!(said, ("a".to_string(), Some(ms(100))));
    // b's word about a is not repeated by c: only what c heard itself.
    let mut hb = msg(MessageType::Heartbeat, "b", State::SBS, 1);
    hb.hot = "a".into();
    hb.hot_heard_ago = Some(ms(1));
    c.handle(
        ms(150),
        Input::Received {
            network: 0,
            from: from(),
            message: hb,
        },
    );
    let said = vouch(c.handle(ms(200), Input::Tick)).expect("c heartbeats");
    assert_eq!(said, ("a".to_string(), Some(ms(200))));
}

#[test]
fn a_vouched_for_hot_member_is_declared_lost_when_the_word_runs_out_not_at_the_next_datagram() {
    // Driven as the agent drives it: woken only at `next_deadline()` and when a datagram
    // arrives. b last hears a (hot) itself at 1000 ms; c heard a 5 ms later (its heartbeat at
    // 1060 ms says so) and nothing after. b must declare a lost when c's word is a timeout old
    // (1305 ms), not at its own next heartbeat or c's next one (1360 ms).
    let mut b = node(THREE, "b");
    let mut datagrams: Vec<(u64, Message)> = Vec::new();
    for (seq, t) in (0..=1000).step_by(100).enumerate() {
        let mut hb = msg(MessageType::Heartbeat, "a", State::HS, seq as u64 + 1);
        hb.epoch = 1;
        hb.hot = "a".into();
        datagrams.push((t, hb));
    }
    for (seq, t) in (60..=1760).step_by(100).enumerate() {
        let mut hb = msg(MessageType::Heartbeat, "c", State::SBS, seq as u64 + 1);
        hb.epoch = 1;
        hb.hot = "a".into();
        // c heard a 5 ms after each of a's heartbeats until 1005 ms, then never again.
        hb.hot_heard_ago = Some(ms(t - (t - 60).min(1000) - 5));
        datagrams.push((t, hb));
    }
    let inputs = datagrams
        .into_iter()
        .map(|(t, m)| (t, received(m)))
        .collect();
    let mut lost_at = None;
    drive(&mut b, inputs, 2000, |now, _, out| {
        let lost = out
            .iter()
            .any(|o| matches!(o, Output::Event(Event::HotLost { .. })));
        if lost {
            lost_at = Some(now);
        }
        lost
    });
    assert_eq!(lost_at, Some(1305), "b declared a lost at {lost_at:?} ms");
}

const THREE_CHECKED: &str = "\
name: g
heartbeat: {interval: 100ms, timeout: 300ms}
networks: [{name: primary, multicast: 224.0.0.35}]
netCheck: {targets: [10.0.0.1], timeout: 50ms}
members:
  - {name: a, priority: 100, addresses: {primary: 10.0.0.11}}
  - {name: b, priority: 50, addresses: {primary: 10.0.0.12}}
  - {name: c, priority: 10, addresses: {primary: 10.0.0.13}}
";

/// What b (priority 50) does when a (hot) dies at 1000 ms while b's net check fails one round
/// (1200 ms) and passes again at 1320 ms; c (priority 10), which saw b ineligible, takes over,
/// and c's word from 1330 ms on is `c_after`. Returns `(first time b was HS, b's hot member at
/// 2000 ms)`.
fn b_regaining_eligibility_after_the_hot_member_died(
    c_after: State,
) -> (Option<u64>, Option<String>) {
    let mut b = node(THREE_CHECKED, "b");
    let mut inputs: Vec<(u64, Input)> = Vec::new();
    let heartbeat = |member: &str, state: State, seq: u64, epoch: u64, hot: &str| {
        let mut hb = msg(MessageType::Heartbeat, member, state, seq);
        hb.epoch = epoch;
        hb.hot = hot.into();
        received(hb)
    };
    for (seq, t) in (0..=1000).step_by(100).enumerate() {
        inputs.push((t, heartbeat("a", State::HS, seq as u64 + 1, 1, "a")));
    }
    for (seq, t) in (50..=1250).step_by(100).enumerate() {
        inputs.push((t, heartbeat("c", State::SBS, seq as u64 + 1, 1, "a")));
    }
    let (epoch, hot) = if c_after == State::HS {
        (2, "c")
    } else {
        (1, "")
    };
    for (seq, t) in (1330..=1930).step_by(100).enumerate() {
        inputs.push((t, heartbeat("c", c_after, 100 + seq as u64, epoch, hot)));
    }
    for t in (100..=1100).step_by(100) {
        inputs.push((t, Input::NetCheck { ok: true }));
    }
    inputs.push((1200, Input::NetCheck { ok: false }));
    inputs.push((1320, Input::NetCheck { ok: true }));
    inputs.push((1420, Input::NetCheck { ok: true }));
    let mut first_hot = None;
    drive(&mut b, inputs, 2000, |now, b, _| {
        if b.state() == State::HS && first_hot.is_none() {
            first_hot = Some(now);
        }
        false
    });
    (first_hot, b.hot().map(str::to_string))
}

#[test]
fn a_standby_regaining_eligibility_hears_everyone_before_taking_over() {
    // c took over while b was ineligible: b must learn that before it acts, not become a
    // second hot member because c's announcement was still on its way.
    let (b_hot, hot) = b_regaining_eligibility_after_the_hot_member_died(State::HS);
    assert_eq!(b_hot, None, "b became hot at {b_hot:?} ms beside c");
    assert_eq!(hot.as_deref(), Some("c"));
    // c stayed standby: b takes over as soon as it has heard c since it became eligible.
    let (b_hot, hot) = b_regaining_eligibility_after_the_hot_member_died(State::SBS);
    assert_eq!(
        b_hot,
        Some(1330),
        "b should take over once c's fresh word is in"
    );
    assert_eq!(hot.as_deref(), Some("b"));
}

const TWO_NETWORKS: &str = "\
name: g
heartbeat: {interval: 100ms, timeout: 300ms}
networks: [{name: primary, multicast: 224.0.0.35}, {name: secondary, multicast: 224.0.1.35}]
members:
  - {name: a, priority: 100, addresses: {primary: 10.0.0.11, secondary: 10.0.1.11}}
  - {name: b, priority: 50, addresses: {primary: 10.0.0.12, secondary: 10.0.1.12}}
";

/// Drives standby b while hot member a heartbeats every 100 ms on both networks, except on the
/// secondary during the `cuts` (start, end) in ms; returns b's anomaly (true) and recovery
/// (false) events on the secondary with their times. b is woken at datagrams and deadlines only.
fn secondary_anomalies(until: u64, cuts: &[(u64, u64)]) -> Vec<(u64, bool)> {
    let mut b = node(TWO_NETWORKS, "b");
    let mut inputs = Vec::new();
    for (seq, t) in (50..until).step_by(100).enumerate() {
        for network in 0..2u8 {
            if network == 1 && cuts.iter().any(|&(s, e)| (s..e).contains(&t)) {
                continue;
            }
            let mut m = msg(MessageType::Heartbeat, "a", State::HS, seq as u64 + 1);
            m.network = network;
            m.epoch = 1;
            m.hot = "a".into();
            inputs.push((t, received(m)));
        }
    }
    let mut events = Vec::new();
    drive(&mut b, inputs, until, |t, _, out| {
        for o in out {
            match o {
                Output::Event(Event::NetworkAnomaly { member, network: 1 }) if member == "a" => {
                    events.push((t, true))
                }
                Output::Event(Event::NetworkRecovered { member, network: 1 }) if member == "a" => {
                    events.push((t, false))
                }
                _ => {}
            }
        }
        false
    });
    events
}

#[test]
fn a_recurring_anomaly_on_one_network_is_held_down_a_cut_network_is_still_reported() {
    // One cut of 500 ms (last heard 1950): reported one timeout later, recovered at 2550.
    let once = secondary_anomalies(4000, &[(2000, 2500)]);
    assert_eq!(once, vec![(2250, true), (2550, false)]);

    // Then a second cut of 700 ms: silence under the hold-down (4 timeouts = 1.2 s) is not
    // reported again; a third of 1.6 s is, 1.2 s after the last heartbeat on that network.
    let cuts = [(2000, 2500), (3000, 3700), (4000, 5600)];
    let flapping = secondary_anomalies(8000, &cuts);
    assert_eq!(
        flapping,
        vec![(2250, true), (2550, false), (5150, true), (5650, false)]
    );

    // A minute after the last anomaly ended, a short silence is reported at once again.
    let later = secondary_anomalies(70_000, &[(2000, 2500), (63_000, 63_500)]);
    assert_eq!(
        later,
        vec![(2250, true), (2550, false), (63_250, true), (63_550, false)]
    );
}

const PREEMPTING: &str = "\
name: g
heartbeat: {interval: 100ms, timeout: 300ms}
networks: [{name: primary, multicast: 224.0.0.35}]
preempt: true
preemptDelay: 500ms
timeouts: {waitingReadyHot: 3s}
members:
  - {name: a, priority: 100, addresses: {primary: 10.0.0.11}}
  - {name: b, priority: 50, addresses: {primary: 10.0.0.12}}
";

/// Drives a (priority 100, preempting) while b is hot: b heartbeats every 100 ms until
/// `b_dies_after`, never answering a's hand-over request; from `b_restarts_at` (if any) a new
/// process of b heartbeats in SS. Returns when a first said HS, and when it asked b to hand
/// over (iWaitingReadyHot). a is woken at datagrams and deadlines only.
fn preempter_whose_hot_member_goes(b_dies_after: u64, b_restarts_at: Option<u64>) -> (u64, u64) {
    let mut a = node(PREEMPTING, "a");
    let mut datagrams: Vec<(u64, Message)> = Vec::new();
    for (seq, t) in (0..=b_dies_after).step_by(100).enumerate() {
        let mut hb = msg(MessageType::Heartbeat, "b", State::HS, seq as u64 + 1);
        hb.epoch = 1;
        hb.hot = "b".into();
        datagrams.push((t, hb));
    }
    if let Some(start) = b_restarts_at {
        for (seq, t) in (start..6000).step_by(100).enumerate() {
            let mut hb = msg(MessageType::Heartbeat, "b", State::SS, seq as u64 + 1);
            hb.incarnation = 10;
            hb.temporal = TemporalState::Election;
            datagrams.push((t, hb));
        }
    }
    let inputs = datagrams
        .into_iter()
        .map(|(t, m)| (t, received(m)))
        .collect();
    let (mut asked_at, mut hot_at) = (None, None);
    drive(&mut a, inputs, 6000, |now, a, _| {
        if asked_at.is_none() && a.temporal() == TemporalState::WaitingReadyHot {
            asked_at = Some(now);
        }
        if a.state() == State::HS {
            hot_at = Some(now);
        }
        hot_at.is_some()
    });
    (
        hot_at.expect("a never became hot"),
        asked_at.expect("a never asked for the role"),
    )
}

#[test]
fn a_standby_waiting_for_a_hand_over_takes_over_when_the_hot_member_dies_or_restarts() {
    // b is heard until 1600 ms; a asked for the role before that (and waits up to 3 s).
    let (hot, asked) = preempter_whose_hot_member_goes(1600, None);
    assert!(asked < 1600, "a asked at {asked} ms");
    // b is lost a timeout after its last heartbeat: a takes over then, not at asked + 3 s.
    assert_eq!(hot, 1900, "a became hot at {hot} ms");

    // b dies and a new b process is heard at 1700 ms, in its election: b is not hot and will
    // not hand over; a decides at once instead of waiting out waitingReadyHot.
    let (hot, _) = preempter_whose_hot_member_goes(1600, Some(1700));
    assert_eq!(hot, 1700, "a became hot at {hot} ms");
}

#[test]
fn the_role_that_makes_a_member_hot_carries_the_reason() {
    let mut n = node(GROUP, "a");
    let mut t = 0;
    let out = loop {
        let out = n.handle(ms(t), Input::Tick);
        if n.state() == State::HS {
            break out;
        }
        t += 100;
        assert!(t < 5000, "a wins the election alone");
    };
    let role = out.iter().position(|o| {
        matches!(
            o,
            Output::Role {
                state: State::HS,
                became_hot: Some(HotReason::Election),
                ..
            }
        )
    });
    let event = out
        .iter()
        .position(|o| matches!(o, Output::Event(Event::BecameHot { .. })));
    assert!(
        role.is_some() && event.is_some() && role < event,
        "the role comes first and says why: {out:?}"
    );
    let renewals = n.handle(ms(t + 100), Input::Tick);
    assert!(
        renewals.iter().any(|o| matches!(
            o,
            Output::Role {
                state: State::HS,
                became_hot: None,
                ..
            }
        )),
        "a renewal is not a new term: {renewals:?}"
    );

    let mut solo = node("name: \"\"\n", "solo");
    let out = solo.handle(ms(0), Input::Tick);
    assert!(
        matches!(
            out.first(),
            Some(Output::Role {
                state: State::HS,
                became_hot: Some(HotReason::Standalone),
                ..
            })
        ),
        "{out:?}"
    );
}

#[test]
fn a_standby_rewrites_its_role_when_it_learns_a_new_epoch() {
    let mut b = node(GROUP, "b");
    b.handle(ms(0), Input::Tick);
    let hot = |epoch: u64, seq: u64| {
        let mut m = msg(MessageType::Heartbeat, "a", State::HS, seq);
        m.epoch = epoch;
        m.hot = "a".into();
        received(m)
    };
    b.handle(ms(10), hot(1, 1));
    assert_eq!((b.state(), b.epoch()), (State::SBS, 1));

    // The hot member's term changed (it took over again after a restart, say): same state,
    // new epoch, and the role file must show it.
    let roles = |out: &[Output]| -> Vec<(State, u64)> {
        out.iter()
            .filter_map(|o| match o {
                Output::Role { state, epoch, .. } => Some((*state, *epoch)),
                _ => None,
            })
            .collect()
    };
    let out = b.handle(ms(110), hot(2, 2));
    assert_eq!(roles(&out), [(State::SBS, 2)], "{out:?}");
    let out = b.handle(ms(210), hot(2, 3));
    assert_eq!(roles(&out), [], "nothing new to write: {out:?}");
}

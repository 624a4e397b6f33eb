//! Carousel comparison through the sans-IO API: two members exchange every datagram; the hot
//! member advertises its carousel, the standby compares and reports differences and their end.

use rdg_core::State;
use rdg_core::config::GroupConfig;
use rdg_core::content::{Difference, Manifest, ObjectEntry};
use rdg_core::election::{Event, Input, Node, Output, Params};
use rdg_core::wire::MessageType;
use std::time::Duration;

const GROUP: &str = "\
name: g
heartbeat: {interval: 100ms, timeout: 300ms}
networks: [{name: primary, multicast: 224.0.0.35}]
members:
  - {name: a, priority: 100, addresses: {primary: 10.0.0.11}}
  - {name: b, priority: 50, addresses: {primary: 10.0.0.12}}
";

fn node(member: &str) -> Node {
    let cfg = GroupConfig::from_yaml(GROUP).unwrap();
    Node::new(
        Params::from_config(&cfg, member).unwrap(),
        1,
        Duration::ZERO,
    )
}

fn carousel(kernel: &[u8]) -> Manifest {
    let obj = |name: &str, bytes: &[u8]| ObjectEntry {
        channel: "224.2.2.2:22222".into(),
        name: name.into(),
        hash: Some([
            bytes.len() as u8,
            bytes.first().copied().unwrap_or(0),
            0,
            0,
            0,
            0,
            0,
            0,
            0,
            0,
            0,
            0,
            0,
            0,
            0,
            0,
            0,
            0,
            0,
            0,
            0,
            0,
            0,
            0,
            0,
            0,
            0,
            0,
            0,
            0,
            0,
            1,
        ]),
        size: bytes.len() as u64,
    };
    Manifest {
        channels: vec![("224.2.2.2:22222".into(), "ttl=1".into())],
        objects: vec![obj("bootcast_1900", b"boot"), obj("kernel", kernel)],
    }
}

/// What one member reported, and when (ms).
#[derive(Default)]
struct Seen {
    compared: Vec<(u64, String, Option<Difference>, bool)>,
    content_sent: usize,
    heartbeats_sent: usize,
}

/// Runs both members in 5 ms steps from `from` to `to` ms, delivering every datagram to the
/// other member in the next step; `inputs` are given to member `i` at their time.
fn run(
    nodes: &mut [Node; 2],
    seen: &mut [Seen; 2],
    from: u64,
    to: u64,
    inputs: &mut Vec<(u64, usize, Input)>,
) {
    let mut in_flight: [Vec<Input>; 2] = [Vec::new(), Vec::new()];
    let mut t = from;
    while t <= to {
        let now = Duration::from_millis(t);
        for i in 0..2 {
            let mut batch: Vec<Input> = std::mem::take(&mut in_flight[i]);
            let (due, later): (Vec<_>, Vec<_>) = inputs
                .drain(..)
                .partition(|(at, who, _)| *at <= t && *who == i);
            *inputs = later;
            batch.extend(due.into_iter().map(|(_, _, input)| input));
            batch.push(Input::Tick);
            for input in batch {
                for o in nodes[i].handle(now, input) {
                    match o {
                        Output::Send {
                            network, message, ..
                        } => {
                            match message.kind {
                                MessageType::Content => seen[i].content_sent += 1,
                                MessageType::Heartbeat => seen[i].heartbeats_sent += 1,
                                _ => {}
                            }
                            in_flight[1 - i].push(Input::Received {
                                network,
                                from: "10.0.0.1:1".parse().unwrap(),
                                message,
                            });
                        }
                        Output::Event(Event::ContentCompared {
                            hot,
                            difference,
                            was_different,
                        }) => seen[i].compared.push((t, hot, difference, was_different)),
                        _ => {}
                    }
                }
            }
        }
        t += 5;
    }
}

#[test]
fn a_standby_names_the_object_that_differs_within_a_few_heartbeats_and_sees_it_fixed() {
    let mut nodes = [node("a"), node("b")];
    let mut seen = [Seen::default(), Seen::default()];
    let mut inputs = vec![
        (0, 0, Input::Content(Some(carousel(b"kernel v1")))),
        (0, 1, Input::Content(Some(carousel(b"kernel v2, other")))),
    ];
    run(&mut nodes, &mut seen, 0, 3000, &mut inputs);
    assert_eq!(nodes[0].state(), State::HS);
    assert_eq!(nodes[1].state(), State::SBS);
    assert!(
        seen[0].compared.is_empty(),
        "the hot member compares with nobody"
    );
    let [(at, hot, Some(d), false)] = &seen[1].compared[..] else {
        panic!("expected one difference, got {:?}", seen[1].compared);
    };
    assert_eq!(hot, "a");
    assert_eq!(d.changed, vec!["224.2.2.2:22222/kernel".to_string()]);
    assert!(d.only_here.is_empty() && d.only_there == 0);
    // The hot member advertises once per five heartbeats, and at once when it becomes hot.
    let hb = seen[0].heartbeats_sent;
    assert!(
        seen[0].content_sent <= hb / 5 + 2 && seen[0].content_sent >= hb / 5 - 1,
        "{} adverts for {hb} heartbeats",
        seen[0].content_sent
    );
    assert_eq!(seen[1].content_sent, 0, "a standby advertises nothing");
    let became_hot_by = 1500; // well after the election of a 100 ms group
    assert!(*at < became_hot_by, "reported at {at} ms");

    // The standby's object is fixed: reported within a few heartbeats as consistent again.
    let mut inputs = vec![(3005, 1, Input::Content(Some(carousel(b"kernel v1"))))];
    run(&mut nodes, &mut seen, 3005, 4000, &mut inputs);
    let [_, (at, _, None, true)] = &seen[1].compared[..] else {
        panic!("expected the recovery, got {:?}", seen[1].compared);
    };
    assert!(*at <= 3005 + 6 * 100, "recovery reported at {at} ms");
}

#[test]
fn equal_carousels_report_no_difference() {
    let mut nodes = [node("a"), node("b")];
    let mut seen = [Seen::default(), Seen::default()];
    let mut inputs = vec![
        (0, 0, Input::Content(Some(carousel(b"same")))),
        (0, 1, Input::Content(Some(carousel(b"same")))),
    ];
    run(&mut nodes, &mut seen, 0, 3000, &mut inputs);
    let [(_, hot, None, false)] = &seen[1].compared[..] else {
        panic!("expected one 'equal' verdict, got {:?}", seen[1].compared);
    };
    assert_eq!(hot, "a");
}

#[test]
fn members_without_a_carousel_send_no_adverts() {
    let mut nodes = [node("a"), node("b")];
    let mut seen = [Seen::default(), Seen::default()];
    run(&mut nodes, &mut seen, 0, 2000, &mut Vec::new());
    assert_eq!(nodes[0].state(), State::HS);
    assert!(seen[0].heartbeats_sent > 10);
    assert_eq!(seen[0].content_sent + seen[1].content_sent, 0);
    assert!(seen[1].compared.is_empty());
}

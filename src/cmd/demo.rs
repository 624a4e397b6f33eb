//! `rdg demo`: three members on the simulator's virtual network, paced in real time, printing
//! a readable timeline: election, the hot member killed, takeover with the failover time, the
//! old member back as standby. No root, no network. `--real` runs real agents instead
//! (see `demo_real`).

use rdg_core::election::Event;
use rdg_core::sim::{Action, DEMO_KILL_AT, Happening, World, demo_scenario};
use rdg_core::{State, TemporalState};
use std::process::ExitCode;
use std::time::Instant;

/// Arguments of `rdg demo`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Playback speed: 1 = real time, 10 = ten times faster, 0 = as fast as possible.
    #[arg(long, default_value_t = 1.0)]
    speed: f64,
    /// Also print state changes and membership events (not only roles and faults).
    #[arg(long, short)]
    verbose: bool,
    /// Run three real `rdg agent` processes on loopback instead of the simulator (no root).
    #[arg(long)]
    real: bool,
}

/// Runs the demo and prints its timeline; exits non-zero if an invariant broke.
pub fn run(args: &Args) -> ExitCode {
    if args.real {
        return super::demo_real::run();
    }
    if !(args.speed.is_finite() && args.speed >= 0.0) {
        eprintln!("--speed must be a number >= 0");
        return ExitCode::from(2);
    }
    let sc = demo_scenario();
    println!(
        "rdg demo: group {:?}, members {}, heartbeat {} / timeout {} on {} networks (virtual network, no root needed)",
        sc.config.name,
        sc.config
            .members
            .iter()
            .map(|m| format!("{} (priority {})", m.name, m.priority))
            .collect::<Vec<_>>()
            .join(", "),
        sc.config.heartbeat.interval,
        sc.config.heartbeat.timeout,
        sc.config.networks.len()
    );
    let mut world = World::new(sc).with_log();
    let start = Instant::now();
    while let Some(at) = world.peek() {
        if args.speed > 0.0 {
            let due = at.div_f64(args.speed);
            if let Some(wait) = due.checked_sub(start.elapsed()) {
                std::thread::sleep(wait);
            }
        }
        world.step();
        for l in world.take_log() {
            if args.verbose || interesting(&l.what) {
                let who = if l.member.is_empty() {
                    "world"
                } else {
                    &l.member
                };
                println!("[{:>7.3}s] {:<6} {}", l.at.as_secs_f64(), who, l.text);
            }
        }
    }
    let checker = world.checker();
    match checker.failover_times.first() {
        Some(t) => println!(
            "failover: hot member killed at {:.3}s, standby hot {} ms later",
            DEMO_KILL_AT.as_secs_f64(),
            t.as_millis()
        ),
        None => println!("failover: none measured"),
    }
    if checker.violations.is_empty() {
        println!(
            "invariants: all held (one hot member at a time, no takeover on a single-network cut)"
        );
        ExitCode::SUCCESS
    } else {
        for v in &checker.violations {
            println!("VIOLATION at {} ms: {}: {}", v.at_ms, v.rule, v.detail);
        }
        ExitCode::FAILURE
    }
}

/// The lines shown without `--verbose`: roles and faults, who is hot, members lost and back.
fn interesting(what: &Happening) -> bool {
    match what {
        Happening::Action(a) => matches!(
            a,
            Action::Start(_) | Action::Crash(_) | Action::LinkDown(..) | Action::LinkUp(..)
        ),
        Happening::Event(e) => matches!(
            e,
            Event::BecameHot { .. }
                | Event::Released { .. }
                | Event::PrimaryCoordinator { .. }
                | Event::HotLost { .. }
                | Event::MemberLost { .. }
                | Event::NetworkAnomaly { .. }
                | Event::NetworkRecovered { .. }
                | Event::SwitchoverStarted { .. }
                | Event::StateChanged {
                    to: (State::SBS, TemporalState::None),
                    ..
                }
        ),
        Happening::Stopped => false,
    }
}

//! Part 3 (root): the gap a set-top box sees in the carousel across failovers.
//!
//! Two members (heartbeat 100 ms, timeout 300 ms, net check on) run the carousel in-process
//! (224.2.2.2:22222, 2 Mbit/s, 1024-byte payloads: a datagram every ~4 ms); one `rdg receive`
//! in the client namespace listens for the whole run. Each trial is a host death of the hot
//! member (`kill -9` and both cables cut); once the standby is hot and cycling, the dead host
//! comes back (cables up, agent restarted, standby) for the next trial, which kills the other
//! member. The receiver's `switches[].gapMs` (last datagram of the old transmitter to the first
//! of the new) are the figures: p50/p99/max, with `interleaved` (must be false) and the
//! longest silence of the whole run.

use rdg_e2e::stats::summary;
use rdg_e2e::{Carousel, GroupConfig, Lab, Net, is_root};
use serde_json::{Value, json};
use std::time::Duration;

/// Trials (failovers).
const TRIALS: usize = 20;
/// How long any step may take.
const SETTLE: Duration = Duration::from_secs(10);

/// Lines of `member`'s log saying it processed the big object.
fn cycles(lab: &Lab, member: &str) -> usize {
    std::fs::read_to_string(lab.log_file(member))
        .unwrap_or_default()
        .lines()
        .filter(|l| l.contains("Processing \"bootcast_1900\""))
        .count()
}

/// Runs the trials; needs root for the namespaces.
pub fn run(_: &crate::Settings) -> Result<Value, String> {
    if !is_root() {
        return Err("skipped: the failover gap needs root (network namespaces)".into());
    }
    rdg_e2e::bench::catch_panic(trials)
}

fn trials() -> Result<Value, String> {
    let mut config = GroupConfig::with_members(&[("ics-a", 100), ("ics-b", 50)]);
    config.timeout = Duration::from_millis(300);
    config.carousel = Some(Carousel::infocast());
    let lab = Lab::with_client(config.clone());
    eprintln!("infocast_bench: failover lab in {}", lab.dir().display());
    let stb = lab.start_receiver("stb");
    let (mut hot, mut standby) = ("ics-a", "ics-b");
    lab.start(hot);
    lab.wait_role(hot, "HS", SETTLE);
    lab.start(standby);
    lab.wait_role(standby, "SBS", SETTLE);
    lab.wait_until(SETTLE, "the hot member to cycle", || cycles(&lab, hot) > 0);
    for trial in 1..=TRIALS {
        let before = cycles(&lab, standby);
        lab.host_death(hot);
        lab.wait_role(standby, "HS", SETTLE);
        lab.wait_until(SETTLE, "the new hot member to cycle", || {
            cycles(&lab, standby) > before
        });
        for net in Net::BOTH {
            lab.link_up(hot, net);
        }
        lab.start(hot);
        lab.wait_role(hot, "SBS", SETTLE);
        eprintln!("infocast_bench: failover {trial}/{TRIALS}: {hot} -> {standby}");
        std::mem::swap(&mut hot, &mut standby);
    }
    let report = stb.finish()?;
    let switches = report["switches"].as_array().cloned().unwrap_or_default();
    if switches.len() != TRIALS {
        return Err(format!(
            "the receiver saw {} switches for {TRIALS} failovers: {report}",
            switches.len()
        ));
    }
    let gaps: Vec<f64> = switches
        .iter()
        .filter_map(|s| s["gapMs"].as_f64())
        .collect();
    Ok(json!({
        "trials": TRIALS,
        "interval_ms": config.interval.as_millis() as u64,
        "timeout_ms": config.timeout.as_millis() as u64,
        "bit_rate": "2Mbit",
        "gap_ms": summary(&gaps),
        "longest_silence_ms": report["longestSilenceMs"],
        "interleaved": report["interleaved"],
        "corrupt": report["objects"].as_array().map_or(0, |o| o
            .iter()
            .map(|o| o["corrupt"].as_u64().unwrap_or(0))
            .sum::<u64>()),
    }))
}

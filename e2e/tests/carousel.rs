//! The Infocast carousel across failovers, end to end: every member's agent runs the carousel
//! in-process (sent only while hot, gated by its role file and lease); a set-top box in the
//! client namespace (`rdg receive`) listens on 224.2.2.2:22222. Needs root (skips loudly
//! otherwise).

use rdg_e2e::{Carousel, GroupConfig, Lab, require_root};
use serde_json::Value;
use std::time::Duration;

const SETTLE: Duration = Duration::from_secs(6);

fn config() -> GroupConfig {
    let mut c = GroupConfig::with_members(&[("ics-a", 100), ("ics-b", 50)]);
    c.carousel = Some(Carousel::infocast());
    c
}

/// How many lines of `member`'s log contain `needle`.
fn log_lines(lab: &Lab, member: &str, needle: &str) -> usize {
    std::fs::read_to_string(lab.log_file(member))
        .unwrap_or_default()
        .lines()
        .filter(|l| l.contains(needle))
        .count()
}

/// Starts ics-a (hot) then ics-b (standby) and waits until ics-a has sent a whole cycle.
fn start_group(lab: &Lab) {
    lab.start("ics-a");
    lab.wait_role("ics-a", "HS", SETTLE);
    lab.start("ics-b");
    lab.wait_role("ics-b", "SBS", SETTLE);
    wait_cycling(lab, "ics-a");
}

/// Waits until `member` has logged `Processing` for every object: it is transmitting.
fn wait_cycling(lab: &Lab, member: &str) {
    lab.wait_until(SETTLE, &format!("{member} to send every object"), || {
        ["\"bootcast_1900\"", "\"stb_config\""]
            .iter()
            .all(|o| log_lines(lab, member, &format!("Processing {o}")) > 0)
    });
}

fn ms(v: &Value) -> f64 {
    v.as_f64().unwrap_or(f64::NAN)
}

/// Every object arrived whole at least once and nothing was corrupt.
fn assert_objects_complete(lab: &Lab, report: &Value) {
    let objects = report["objects"].as_array().cloned().unwrap_or_default();
    let names: Vec<&str> = objects.iter().filter_map(|o| o["name"].as_str()).collect();
    if names.len() != 2 {
        lab.fail(&format!("the receiver knows objects {names:?}: {report}"));
    }
    for o in &objects {
        if o["completed"].as_u64().unwrap_or(0) == 0 || o["corrupt"].as_u64() != Some(0) {
            lab.fail(&format!("object {o} incomplete or corrupt: {report}"));
        }
    }
}

#[test]
fn host_death_of_the_hot_member_the_carousel_resumes_within_the_bound() {
    if !require_root("host_death_of_the_hot_member_the_carousel_resumes_within_the_bound") {
        return;
    }
    let lab = Lab::with_client(config());
    let stb = lab.start_receiver("stb");
    start_group(&lab);
    lab.host_death("ics-a");
    lab.wait_role("ics-b", "HS", SETTLE);
    // `Processing` is logged as an object's cycle starts: the second one of the first object
    // means ics-b has sent every object whole.
    lab.wait_until(SETTLE, "ics-b to send a whole carousel cycle", || {
        log_lines(&lab, "ics-b", "Processing \"bootcast_1900\"") >= 2
    });
    let report = stb.finish().unwrap_or_else(|e| lab.fail(&e));
    println!("receiver: {report}");

    let c = lab.config();
    let bound = (c.timeout + 2 * c.interval).as_secs_f64() * 1000.0 + 20.0;
    let switches = report["switches"].as_array().cloned().unwrap_or_default();
    if switches.len() != 1 || switches[0]["from"] != "10.0.0.11" || switches[0]["to"] != "10.0.0.12"
    {
        lab.fail(&format!("expected one switch ics-a -> ics-b: {report}"));
    }
    let gap = ms(&switches[0]["gapMs"]);
    let silence = ms(&report["longestSilenceMs"]);
    println!("gap at the failover {gap:.1} ms, longest silence {silence:.1} ms, bound {bound} ms");
    let within = |v: f64| v.is_finite() && v <= bound;
    if !within(silence) || !within(gap) {
        lab.fail(&format!(
            "silence {silence} ms / gap {gap} ms over the bound {bound} ms"
        ));
    }
    if report["interleaved"] != false {
        lab.fail(&format!("two transmitters interleaved: {report}"));
    }
    assert_objects_complete(&lab, &report);
}

#[test]
fn frozen_hot_member_sends_nothing_after_the_new_one_started() {
    if !require_root("frozen_hot_member_sends_nothing_after_the_new_one_started") {
        return;
    }
    let lab = Lab::with_client(config());
    let stb = lab.start_receiver("stb");
    start_group(&lab);
    lab.sigstop("ics-a");
    lab.wait_role("ics-b", "HS", SETTLE);
    wait_cycling(&lab, "ics-b");
    lab.sigcont("ics-a");
    lab.wait_role("ics-a", "SBS", SETTLE);
    // ics-b keeps sending while ics-a runs again: any chunk of ics-a's would now interleave.
    let cycles = log_lines(&lab, "ics-b", "Processing \"bootcast_1900\"");
    lab.wait_until(SETTLE, "ics-b to send two more cycles", || {
        log_lines(&lab, "ics-b", "Processing \"bootcast_1900\"") >= cycles + 2
    });
    let report = stb.finish().unwrap_or_else(|e| lab.fail(&e));
    println!("receiver: {report}");
    let switches = report["switches"].as_array().cloned().unwrap_or_default();
    if report["interleaved"] != false || switches.len() != 1 || switches[0]["to"] != "10.0.0.12" {
        lab.fail(&format!(
            "the old hot member sent after the new one started: {report}"
        ));
    }
    assert_objects_complete(&lab, &report);
}

//! Waiting for an rdg group in a lab to be settled: exactly one hot member, every other member
//! standing by, all agreeing on who is hot, every standby eligible (passing net check) and
//! hearing everyone. Unlike the harness's waits these never panic: they return why the group
//! is not settled, and give up early when the benchmark is interrupted.

use rdg_e2e::start::start_in_order;
use rdg_e2e::{Lab, monotonic_ms, status_member};
use std::time::{Duration, Instant};

/// `Ok(hot member)` when the group is settled, otherwise what is missing.
pub fn settled(lab: &Lab) -> Result<String, String> {
    let names = lab.member_names();
    let now = monotonic_ms();
    let mut hot = Vec::new();
    for m in &names {
        let role = lab.role(m).ok_or_else(|| format!("{m} has no role file"))?;
        if role.hot_with_lease(now) {
            hot.push(m.clone());
        } else if role.role != "SBS" {
            return Err(format!("{m}'s role file says {}", role.role));
        }
    }
    let [hot] = hot.as_slice() else {
        return Err(format!("hot members: {hot:?}"));
    };
    let net_check = !lab.config().net_check_targets.is_empty();
    for m in &names {
        let s = lab.status(m)?;
        let expected = if m == hot { "HS" } else { "SBS" };
        if s["state"].as_str() != Some(expected) || s["temporal"].as_str() != Some("iNone") {
            return Err(format!(
                "{m}: /status says {}/{}",
                s["state"], s["temporal"]
            ));
        }
        if s["hot"].as_str() != Some(hot.as_str()) {
            return Err(format!("{m}: /status names {} as hot", s["hot"]));
        }
        if net_check && m != hot && s["netCheck"]["ok"].as_bool() != Some(true) {
            return Err(format!("{m}: net check {}", s["netCheck"]["ok"]));
        }
        for other in names.iter().filter(|o| *o != m) {
            let seen = status_member(&s, other).ok_or_else(|| format!("{m}: no entry {other}"))?;
            let healthy = seen["networks"]
                .as_array()
                .is_some_and(|nets| nets.iter().all(|n| n["healthy"].as_bool() == Some(true)));
            if !healthy {
                return Err(format!("{m} does not hear {other} on every network"));
            }
        }
    }
    Ok(hot.clone())
}

/// Polls [`settled`] every 10 ms for up to `timeout`.
pub fn wait_settled(lab: &Lab, timeout: Duration) -> Result<String, String> {
    let start = Instant::now();
    loop {
        crate::check_interrupted()?;
        match settled(lab) {
            Ok(hot) => return Ok(hot),
            Err(why) if start.elapsed() >= timeout => {
                return Err(format!("group not settled after {timeout:?}: {why}"));
            }
            Err(_) => std::thread::sleep(Duration::from_millis(10)),
        }
    }
}

/// Starts the members in order (see [`start_in_order`]; the first becomes hot, as after a
/// normal start-up) and waits until the group is settled; the hot member.
pub fn start_settled(lab: &Lab, timeout: Duration) -> Result<String, String> {
    let names = lab.member_names();
    let order: Vec<&str> = names.iter().map(String::as_str).collect();
    start_in_order(lab, &order, timeout)?;
    wait_settled(lab, timeout)
}

//! Part 5 (`--lossy`): the fastest failover that makes no false takeovers on a lossy network,
//! rdg beside keepalived.
//!
//! For each tool and each loss rate (`--lossy-losses`, default 20 % and 5 %), the heartbeat
//! intervals of `--lossy-intervals-ms` are tried shortest first, the timeout three intervals
//! for both tools (rdg: `timeout` = 3 intervals; VRRP: Master_Down_Interval = 3 advertisement
//! intervals plus a skew of (256 − priority)/256 of one). Each setting is [`loss`]'s run: a
//! settled group in a lab of its own, then random loss on every member's input (nftables
//! `numgen random`, net-check replies included) for `--lossy-seconds` (default 300), the owner
//! set sampled every 10 ms: rdg's hot set (role files with a running lease), keepalived's VIP
//! holders. Nothing else happens, so every change is false: `false_takeovers` counts a single
//! owner followed by another (`owner_changes`), `flips` every change of the set (a moment with
//! two owners or none counts too). A setting is **stable** when `flips` is 0; the sweep stops at
//! the first stable one, the shortest stable interval.
//!
//! At that interval the client-observed outage is measured as in [`outage`]: a client pings the
//! VIP every 5 ms and the owner's host dies (`--lossy-outage-trials` times, default 20) — with
//! the same loss on the members' input, since that is the network the operator runs on (the
//! client's own input is not lossy; its pings to the owner are, which blurs the outage by a
//! ping period or two).
//!
//! keepalived takes only intervals VRRPv3 can carry (whole centiseconds, 10 ms to 40.95 s);
//! others are listed as skipped for it.
//!
//! `--lossy-quick` (e.g. in CI, with `--only lossy`) tries one interval, 100 ms, for 60 s at
//! 20 % loss with 5 outage trials: one setting per tool in a few minutes.

use crate::keepalived;
use crate::{loss, outage};
use serde_json::{Value, json};
use std::time::Duration;

/// What the sweep tries.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Loss rates, in percent.
    pub losses: Vec<u8>,
    /// Heartbeat intervals, in milliseconds.
    pub intervals_ms: Vec<u64>,
    /// How long each setting runs under loss.
    pub seconds: Duration,
    /// Host deaths measured at the shortest stable interval.
    pub outage_trials: usize,
    /// The tools swept, in this order.
    pub tools: Vec<Tool>,
}

/// The tools compared.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Tool {
    Rdg,
    Keepalived,
}

impl Tool {
    fn name(self) -> &'static str {
        match self {
            Tool::Rdg => "rdg",
            Tool::Keepalived => "keepalived",
        }
    }

    /// Why the tool cannot run at `interval_ms`, if it cannot.
    fn unsupported(self, interval_ms: u64) -> Option<&'static str> {
        match self {
            Tool::Keepalived if interval_ms % 10 != 0 || !(10..=40_950).contains(&interval_ms) => {
                Some("VRRPv3's advertisement interval is whole centiseconds, 10 ms to 40.95 s")
            }
            _ => None,
        }
    }
}

/// The sweep for both tools at every loss rate of `s`.
pub fn run(s: &Settings) -> (Value, Vec<String>) {
    let mut errors = Vec::new();
    let mut intervals = s.intervals_ms.clone();
    intervals.sort_unstable();
    intervals.dedup();
    let keepalived_version = keepalived::version();
    if let Err(e) = &keepalived_version {
        errors.push(e.clone());
    }
    let mut doc = json!({
        "losses_percent": s.losses,
        "intervals_ms": intervals,
        "timeout_intervals": 3,
        "seconds": s.seconds.as_secs_f64(),
        "outage_trials": s.outage_trials,
        "outage_with_loss": true,
        "keepalived_version": keepalived_version.as_ref().ok(),
    });
    for &tool in &s.tools {
        let mut per_loss = Vec::new();
        if tool == Tool::Rdg || keepalived_version.is_ok() {
            for &percent in &s.losses {
                if let Err(e) = crate::check_interrupted() {
                    errors.push(e);
                    break;
                }
                per_loss.push(sweep(tool, percent, &intervals, s, &mut errors));
            }
        }
        doc[tool.name()] = Value::from(per_loss);
    }
    (doc, errors)
}

/// One tool at `percent` % loss: every setting tried, the shortest stable interval and the
/// outage at it.
fn sweep(
    tool: Tool,
    percent: u8,
    intervals: &[u64],
    s: &Settings,
    errors: &mut Vec<String>,
) -> Value {
    let name = tool.name();
    let mut tried = Vec::new();
    let mut stable = None;
    for &ms in intervals {
        if let Err(e) = crate::check_interrupted() {
            errors.push(e);
            break;
        }
        if let Some(why) = tool.unsupported(ms) {
            tried.push(json!({"interval_ms": ms, "skipped": why}));
            continue;
        }
        let interval = Duration::from_millis(ms);
        let what = format!("lossy {name} {ms} ms at {percent} % loss");
        let result = crate::guarded(&what, || match tool {
            Tool::Rdg => loss::rdg(s.seconds, interval, percent),
            Tool::Keepalived => loss::keepalived(s.seconds, interval, percent),
        });
        match result {
            Ok(detail) => {
                let flips = detail["flips"].as_u64();
                let ok = flips == Some(0);
                eprintln!(
                    "{what}: {} false takeovers, {} flips: {}",
                    detail["owner_changes"],
                    detail["flips"],
                    if ok { "stable" } else { "not stable" }
                );
                tried.push(json!({
                    "interval_ms": ms,
                    "timeout_ms": 3 * ms,
                    "false_takeovers": detail["owner_changes"],
                    "flips": flips,
                    "stable": ok,
                    "detail": detail,
                }));
                if ok {
                    stable = Some(interval);
                    break;
                }
            }
            Err(e) => {
                errors.push(e.clone());
                tried.push(json!({"interval_ms": ms, "error": e}));
            }
        }
    }
    let mut entry = json!({
        "loss_percent": percent,
        "settings": tried,
        "shortest_stable_interval_ms": stable.map(|i| i.as_millis() as u64),
        "outage": null,
    });
    if let Some(interval) = stable
        && crate::check_interrupted().is_ok()
    {
        let config = loss::group_config(interval);
        let label = format!("{} ms at {percent} % loss", interval.as_millis());
        let run = match tool {
            Tool::Rdg => outage::rdg,
            Tool::Keepalived => outage::keepalived,
        };
        let (trials, failed, errs) = run(
            &config,
            &label,
            s.outage_trials,
            interval,
            interval * 3,
            Some(percent),
        );
        errors.extend(errs);
        let mut report = outage::tool_report(&trials, failed);
        report["interval_ms"] = json!(interval.as_millis() as u64);
        report["timeout_ms"] = json!((interval * 3).as_millis() as u64);
        report["loss_percent"] = json!(percent);
        report["probe_interval_ms"] = json!(5);
        entry["outage"] = report;
    }
    entry
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keepalived_intervals() {
        assert_eq!(Tool::Keepalived.unsupported(20), None);
        assert_eq!(Tool::Keepalived.unsupported(40_950), None);
        assert!(Tool::Keepalived.unsupported(5).is_some());
        assert!(Tool::Keepalived.unsupported(25).is_some());
        assert!(Tool::Keepalived.unsupported(41_000).is_some());
        assert_eq!(Tool::Rdg.unsupported(25), None);
    }
}

//! What each agent process holds over time, and whether it grows.
//!
//! Every `--resource-every-ms` (default 2 s) each running agent is read from `/proc`: resident
//! memory (`VmRSS`, kB), open file descriptors (entries of `/proc/PID/fd`) and threads
//! (`Threads:` of `/proc/PID/status`). `ip netns exec` execs the agent in place, so the pid
//! the lab started is the agent's. A series is one process incarnation: a restarted agent (a
//! new pid) starts a new series.
//!
//! **Growth rule.** A series is judged when it has at least [`MIN_SAMPLES`] samples. Its first
//! quarter is the warm-up and is left out; the rest is the baseline (second and third quarters)
//! and the end (last quarter), each summed up by its median (so a transient socket or thread
//! at one sample does not count). The series is **flat** when
//!
//! * RSS: the end's median exceeds the second quarter's by at most 1 MB (1024 kB) or 10 %,
//!   whichever is larger;
//! * open file descriptors and threads did not grow at all, compared role by role: an agent
//!   holds a thread and a descriptor more while it is hot than while it stands by, so for each
//!   role (the role file's, read with every sample) seen at least [`MIN_ROLE_SAMPLES`] times
//!   in both the baseline and the end, the end's median must not exceed the baseline's.
//!
//! Also reported per series: first, last and maximum of each figure, and the least-squares
//! slope of RSS after the warm-up in kB per hour (noisy on short series). The soak is flat when
//! every judged series is flat and at least one series was judged.

use rdg_e2e::stats::{percentile, round1};
use rdg_e2e::{Lab, procfs};
use serde_json::{Value, json};
use std::collections::BTreeSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

/// Samples a series needs to be judged.
pub const MIN_SAMPLES: usize = 16;
/// Samples of a role needed in both the baseline and the end to compare descriptors and threads.
pub const MIN_ROLE_SAMPLES: usize = 3;
/// RSS growth always allowed, in kB.
const RSS_SLACK_KB: f64 = 1024.0;
/// RSS growth allowed relative to the baseline.
const RSS_SLACK_RATIO: f64 = 0.10;

/// One sample of one process.
#[derive(Debug, Clone)]
struct Sample {
    at_s: f64,
    /// The role in the member's role file ("-" when there is none).
    role: String,
    rss_kb: f64,
    fds: f64,
    threads: f64,
}

/// One process incarnation of a member's agent.
#[derive(Debug)]
struct Series {
    member: String,
    pid: i32,
    incarnation: usize,
    samples: Vec<Sample>,
}

/// Samples every running agent every `period` until `stop` is set; the report.
pub fn run(lab: &Lab, period: Duration, start: Instant, stop: &AtomicBool) -> Value {
    let names = lab.member_names();
    let mut series: Vec<Series> = Vec::new();
    let mut next = Instant::now();
    while !stop.load(Ordering::SeqCst) {
        if Instant::now() >= next {
            let at_s = start.elapsed().as_secs_f64();
            for m in &names {
                if let Some(pid) = lab.pid(m).map(|p| p.as_raw()) {
                    let role = lab.role_name(m).unwrap_or_else(|| "-".into());
                    sample(&mut series, m, pid, role, at_s);
                }
            }
            next += period;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    report(&series)
}

/// Reads `pid` and appends to its series (a new one for a new pid).
fn sample(series: &mut Vec<Series>, member: &str, pid: i32, role: String, at_s: f64) {
    let Some(fds) = procfs::open_fds(pid) else {
        return;
    };
    let s = Sample {
        at_s,
        role,
        rss_kb: procfs::rss_kb(pid) as f64,
        fds: fds as f64,
        threads: procfs::threads(pid) as f64,
    };
    if s.rss_kb == 0.0 || s.threads == 0.0 {
        return; // gone meanwhile
    }
    match series
        .iter_mut()
        .find(|x| x.member == member && x.pid == pid)
    {
        Some(x) => x.samples.push(s),
        None => {
            let incarnation = series.iter().filter(|x| x.member == member).count() + 1;
            series.push(Series {
                member: member.to_string(),
                pid,
                incarnation,
                samples: vec![s],
            });
        }
    }
}

/// Median of `values` (nearest rank).
fn median(values: impl Iterator<Item = f64>) -> f64 {
    let mut v: Vec<f64> = values.collect();
    v.sort_by(f64::total_cmp);
    percentile(&v, 50.0)
}

/// Least-squares slope of `(x, y)` points, per unit of x (0 for fewer than two x values).
fn slope(points: &[(f64, f64)]) -> f64 {
    let n = points.len() as f64;
    let mx = points.iter().map(|p| p.0).sum::<f64>() / n;
    let my = points.iter().map(|p| p.1).sum::<f64>() / n;
    let sxx: f64 = points.iter().map(|p| (p.0 - mx).powi(2)).sum();
    let sxy: f64 = points.iter().map(|p| (p.0 - mx) * (p.1 - my)).sum();
    if sxx > 0.0 { sxy / sxx } else { 0.0 }
}

/// The judgement of one series: `{"judged", "flat", growth figures}`.
fn judge(samples: &[Sample]) -> Value {
    let n = samples.len();
    if n < MIN_SAMPLES {
        return json!({"judged": false, "flat": Value::Null});
    }
    let q = n / 4;
    let second = &samples[q..2 * q];
    let baseline = &samples[q..n - q];
    let end = &samples[n - q..];
    let rss = (
        median(second.iter().map(|s| s.rss_kb)),
        median(end.iter().map(|s| s.rss_kb)),
    );
    let rss_growth = rss.1 - rss.0;
    let rss_flat = rss_growth <= RSS_SLACK_KB.max(rss.0 * RSS_SLACK_RATIO);
    let mut counts_flat = true;
    let mut by_role = serde_json::Map::new();
    let roles: BTreeSet<&str> = end.iter().map(|s| s.role.as_str()).collect();
    for role in roles {
        let of = |part: &[Sample]| -> Vec<Sample> {
            part.iter().filter(|s| s.role == role).cloned().collect()
        };
        let (before, after) = (of(baseline), of(end));
        if before.len() < MIN_ROLE_SAMPLES || after.len() < MIN_ROLE_SAMPLES {
            continue;
        }
        let med = |part: &[Sample], f: fn(&Sample) -> f64| median(part.iter().map(f));
        let fds = (med(&before, |s| s.fds), med(&after, |s| s.fds));
        let threads = (med(&before, |s| s.threads), med(&after, |s| s.threads));
        let flat = fds.1 <= fds.0 && threads.1 <= threads.0;
        counts_flat &= flat;
        by_role.insert(
            role.to_string(),
            json!({
                "fds_baseline": fds.0,
                "fds_end": fds.1,
                "threads_baseline": threads.0,
                "threads_end": threads.1,
                "flat": flat,
            }),
        );
    }
    let points: Vec<(f64, f64)> = samples[q..].iter().map(|s| (s.at_s, s.rss_kb)).collect();
    json!({
        "judged": true,
        "flat": rss_flat && counts_flat,
        "rss_kb_baseline": rss.0,
        "rss_kb_end": rss.1,
        "rss_growth_kb": round1(rss_growth),
        "rss_growth_percent": round1(if rss.0 > 0.0 { rss_growth / rss.0 * 100.0 } else { 0.0 }),
        "rss_slope_kb_per_h": round1(slope(&points) * 3600.0),
        "rss_flat": rss_flat,
        "fds_threads_flat": counts_flat,
        "fds_threads_by_role": by_role,
    })
}

/// First, last and maximum of one figure.
fn span(samples: &[Sample], f: fn(&Sample) -> f64) -> Value {
    let max = samples.iter().map(f).fold(f64::MIN, f64::max);
    json!({
        "first": f(&samples[0]),
        "last": f(&samples[samples.len() - 1]),
        "max": max,
    })
}

fn report(series: &[Series]) -> Value {
    let mut judged = 0;
    let mut all_flat = true;
    let list: Vec<Value> = series
        .iter()
        .map(|x| {
            let verdict = judge(&x.samples);
            if verdict["judged"] == true {
                judged += 1;
                all_flat &= verdict["flat"] == true;
            }
            let first = x.samples[0].at_s;
            let last = x.samples[x.samples.len() - 1].at_s;
            json!({
                "member": x.member,
                "pid": x.pid,
                "incarnation": x.incarnation,
                "from_s": round1(first),
                "to_s": round1(last),
                "samples": x.samples.len(),
                "rss_kb": span(&x.samples, |s| s.rss_kb),
                "fds": span(&x.samples, |s| s.fds),
                "threads": span(&x.samples, |s| s.threads),
                "growth": verdict,
            })
        })
        .collect();
    json!({
        "min_samples": MIN_SAMPLES,
        "judged_series": judged,
        "flat": judged > 0 && all_flat,
        "series": list,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn series(rss: impl Fn(usize) -> f64, fds: impl Fn(usize) -> f64) -> Vec<Sample> {
        (0..40)
            .map(|i| Sample {
                at_s: i as f64 * 2.0,
                role: "SBS".into(),
                rss_kb: rss(i),
                fds: fds(i),
                threads: 2.0,
            })
            .collect()
    }

    #[test]
    fn growth_rule() {
        // Start-up growth in the warm-up quarter, then flat: flat.
        let v = judge(&series(|i| if i < 8 { 5000.0 } else { 11_000.0 }, |_| 9.0));
        assert_eq!(v["flat"], true, "{v}");
        // A leak of 100 kB per sample (2 MB between the quarters' medians): not flat.
        let v = judge(&series(|i| 11_000.0 + 100.0 * i as f64, |_| 9.0));
        assert_eq!(
            (v["rss_flat"].clone(), v["flat"].clone()),
            (false.into(), false.into())
        );
        assert!(v["rss_slope_kb_per_h"].as_f64().unwrap() > 100_000.0, "{v}");
        // One descriptor more at a single sample: flat; one more for good: not.
        let v = judge(&series(|_| 11_000.0, |i| if i == 35 { 10.0 } else { 9.0 }));
        assert_eq!(v["flat"], true, "{v}");
        let v = judge(&series(|_| 11_000.0, |i| if i >= 25 { 10.0 } else { 9.0 }));
        assert_eq!(v["fds_threads_flat"], false, "{v}");
        // Hot (a thread and a descriptor more) before and at the end: flat, role by role.
        let mut s = series(|_| 11_000.0, |_| 9.0);
        for i in (12..16).chain(34..40) {
            s[i].role = "HS".into();
            s[i].fds = 10.0;
            s[i].threads = 3.0;
        }
        let v = judge(&s);
        assert_eq!(v["flat"], true, "{v}");
        assert_eq!(v["fds_threads_by_role"]["HS"]["threads_end"], 3.0, "{v}");
        // Too short to judge.
        assert_eq!(judge(&series(|_| 1.0, |_| 1.0)[..10])["judged"], false);
    }
}

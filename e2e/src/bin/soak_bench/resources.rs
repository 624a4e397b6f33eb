//! What each agent process holds over time, and whether it grows.
//!
//! Every `--resource-every-ms` (default 2 s) each running agent is read from `/proc`: resident
//! memory (`VmRSS`, kB), open file descriptors (entries of `/proc/PID/fd`) and threads
//! (`Threads:` of `/proc/PID/status`). `ip netns exec` execs the agent in place, so the pid
//! the lab started is the agent's. A series is one process incarnation: a restarted agent (a
//! new pid) starts a new series.
//!
//! **Growth rule.** A series is judged when it has at least [`MIN_SAMPLES`] samples (a minute
//! at the default pace). Its first quarter is the warm-up and is left out; the second and
//! third quarters are the baseline, the last quarter the end. The series is **flat** when
//!
//! * RSS: the end's median exceeds the second quarter's median by at most 1 MB (1024 kB) or
//!   10 %, whichever is larger (medians, so one sample does not decide);
//! * open file descriptors and threads: the end's floor (its minimum) does not exceed the
//!   baseline's floor. Floors, because the agents hold some briefly: after each takeover an
//!   ARP probe runs on tokio's blocking pool, whose thread then idles for 10 s before it ends,
//!   and the probe's socket is open meanwhile. A leak raises the floor; a transient does not,
//!   as long as it ends within the end quarter (15 s at least).
//!
//! Also reported per series: first, last and maximum of each figure, and the least-squares
//! slope of RSS after the warm-up in kB per hour (noisy on short series). The soak is flat when
//! every judged series is flat and at least one series was judged.

use rdg_e2e::stats::{percentile, round1};
use rdg_e2e::{Lab, procfs};
use serde_json::{Value, json};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

/// Samples a series needs to be judged.
pub const MIN_SAMPLES: usize = 30;
/// RSS growth always allowed, in kB.
const RSS_SLACK_KB: f64 = 1024.0;
/// RSS growth allowed relative to the baseline.
const RSS_SLACK_RATIO: f64 = 0.10;

/// One sample of one process.
#[derive(Debug, Clone, Copy)]
struct Sample {
    at_s: f64,
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
                    sample(&mut series, m, pid, at_s);
                }
            }
            next += period;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    report(&series)
}

/// Reads `pid` and appends to its series (a new one for a new pid).
fn sample(series: &mut Vec<Series>, member: &str, pid: i32, at_s: f64) {
    let Some(fds) = procfs::open_fds(pid) else {
        return;
    };
    let s = Sample {
        at_s,
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
    let floor =
        |part: &[Sample], f: fn(&Sample) -> f64| part.iter().map(f).fold(f64::MAX, f64::min);
    let fds = (floor(baseline, |s| s.fds), floor(end, |s| s.fds));
    let threads = (floor(baseline, |s| s.threads), floor(end, |s| s.threads));
    let fds_flat = fds.1 <= fds.0;
    let threads_flat = threads.1 <= threads.0;
    let points: Vec<(f64, f64)> = samples[q..].iter().map(|s| (s.at_s, s.rss_kb)).collect();
    json!({
        "judged": true,
        "flat": rss_flat && fds_flat && threads_flat,
        "rss_kb_baseline": rss.0,
        "rss_kb_end": rss.1,
        "rss_growth_kb": round1(rss_growth),
        "rss_growth_percent": round1(if rss.0 > 0.0 { rss_growth / rss.0 * 100.0 } else { 0.0 }),
        "rss_slope_kb_per_h": round1(slope(&points) * 3600.0),
        "rss_flat": rss_flat,
        "fds_floor_baseline": fds.0,
        "fds_floor_end": fds.1,
        "fds_flat": fds_flat,
        "threads_floor_baseline": threads.0,
        "threads_floor_end": threads.1,
        "threads_flat": threads_flat,
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
                rss_kb: rss(i),
                fds: fds(i),
                threads: 2.0,
            })
            .collect()
    }

    #[test]
    fn growth_rule() {
        // Start-up growth in the warm-up quarter, then flat: flat.
        let v = judge(&series(|i| if i < 8 { 5000.0 } else { 11_000.0 }, |_| 18.0));
        assert_eq!(v["flat"], true, "{v}");
        // A leak of 100 kB per sample (2 MB between the quarters' medians): not flat.
        let v = judge(&series(|i| 11_000.0 + 100.0 * i as f64, |_| 18.0));
        assert_eq!(
            (v["rss_flat"].clone(), v["flat"].clone()),
            (false.into(), false.into())
        );
        assert!(v["rss_slope_kb_per_h"].as_f64().unwrap() > 100_000.0, "{v}");
        // A probe's descriptor and pool thread for a few samples near the end: flat.
        let mut s = series(|_| 11_000.0, |_| 18.0);
        for x in &mut s[31..36] {
            x.fds = 19.0;
            x.threads = 3.0;
        }
        assert_eq!(judge(&s)["flat"], true);
        // One descriptor more for good: not flat.
        let v = judge(&series(|_| 11_000.0, |i| if i >= 25 { 19.0 } else { 18.0 }));
        assert_eq!(
            (v["fds_flat"].clone(), v["threads_flat"].clone()),
            (false.into(), true.into())
        );
        // Too short to judge.
        assert_eq!(judge(&series(|_| 1.0, |_| 1.0)[..20])["judged"], false);
    }
}

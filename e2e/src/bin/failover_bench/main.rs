//! The failover benchmark: real `rdg agent` processes in network namespaces (the `rdg-e2e`
//! lab), measured, and compared with keepalived.
//!
//! ```text
//! sudo cargo run --release -p rdg-e2e --bin failover_bench -- [--trials N] [--json]
//!     [--window SECS] [--warmup SECS] [--skip-failover] [--skip-footprint]
//!     [--outage-trials N] [--outage-rates HZ,HZ] [--skip-keepalived] [--skip-containers]
//!     [--skip-outage]
//!     [--loss-seconds S] [--skip-loss]
//! ```
//!
//! Prints one JSON document on stdout (progress goes to stderr):
//!
//! * top level: failover timing after host death of the hot member (SIGKILL + both cables cut),
//!   `--trials` times (default 30) at heartbeat interval 100 ms / timeout 300 ms on two networks,
//!   three members, net check on: `trials`, `interval_ms`, `timeout_ms`, `detection_ms` and
//!   `takeover_ms` (`p50`, `p99`, `max`, ...), extra summaries and every trial (see
//!   [`failover`] for how each figure is measured);
//! * `footprint`: resident memory and CPU of rdg and of keepalived at 10 Hz and 50 Hz (see
//!   [`footprint`]);
//! * `outage`: the outage a client pinging the VIP sees after host death of its owner, rdg (as
//!   processes, and as the controller's pods in podman containers) and keepalived at 10 Hz and
//!   50 Hz (`--outage-rates`), `--outage-trials` times each (default 20; see [`outage`]);
//! * `loss`: false takeovers of rdg and keepalived at 50 Hz with 20 % random loss on every
//!   member's input for `--loss-seconds` (default 60; see [`loss`]);
//! * `errors`: whatever went wrong (failed trials, a tool missing); the exit status is 1 when
//!   there are any, 2 without root, 130 when interrupted.
//!
//! The `rdg` binary is `$RDG_BIN`, or `rdg` next to this program (`target/release/rdg` after
//! `cargo build --release`). Needs root (namespaces, bridges); keepalived from its Debian
//! package for the comparison. Every namespace, link and process created is removed on every
//! way out: normal end, error, panic, SIGINT/SIGTERM (the lab's `Drop`, and [`keepalived`]'s).

mod failover;
mod footprint;
mod group;
mod keepalived;
mod logtime;
mod loss;
mod outage;
mod procfs;
use rdg_e2e::stats;

use nix::sys::signal::{SaFlags, SigAction, SigHandler, SigSet, Signal, sigaction};
use serde_json::{Value, json};
use std::panic::AssertUnwindSafe;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

/// Set by SIGINT/SIGTERM: every wait gives up and the labs are dropped (cleaned up).
static INTERRUPTED: AtomicBool = AtomicBool::new(false);

extern "C" fn on_signal(_: nix::libc::c_int) {
    INTERRUPTED.store(true, Ordering::SeqCst);
}

/// `Err` once the benchmark has been interrupted.
pub fn check_interrupted() -> Result<(), String> {
    if INTERRUPTED.load(Ordering::SeqCst) {
        Err("interrupted".into())
    } else {
        Ok(())
    }
}

/// Sleeps for `d` in short steps, giving up when interrupted.
pub fn sleep(d: Duration) -> Result<(), String> {
    let end = Instant::now() + d;
    loop {
        check_interrupted()?;
        let left = end.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Ok(());
        }
        std::thread::sleep(left.min(Duration::from_millis(50)));
    }
}

/// Runs `f`, turning a panic (the harness panics on set-up failures) into an error naming
/// `what`. Whatever `f` created is dropped, and so cleaned up, either way.
pub fn guarded(what: &str, f: impl FnOnce() -> Result<(), String>) -> Result<(), String> {
    match std::panic::catch_unwind(AssertUnwindSafe(f)) {
        Ok(result) => result.map_err(|e| format!("{what}: {e}")),
        Err(panic) => {
            let message = panic
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| panic.downcast_ref::<&str>().map(|s| (*s).to_string()))
                .unwrap_or_else(|| "panic".into());
            // The first line; the harness's log dump has been printed to stderr already.
            let first = message.lines().next().unwrap_or_default();
            Err(format!("{what}: {first}"))
        }
    }
}

/// Command-line options.
struct Options {
    trials: usize,
    window: Duration,
    warmup: Duration,
    failover: bool,
    footprint: bool,
    outage: bool,
    outage_trials: usize,
    /// Heartbeat rates of the outage part, in Hz.
    outage_rates: Vec<u32>,
    /// Measure rdg alone in the outage part (for chasing rdg's outliers quickly).
    keepalived: bool,
    /// Measure rdg's members as podman containers too in the outage part.
    containers: bool,
    loss: bool,
    loss_seconds: Duration,
}

const USAGE: &str = "usage: failover_bench [--trials N] [--json] [--window SECS] [--warmup SECS] \
                     [--skip-failover] [--skip-footprint] [--outage-trials N] [--outage-rates HZ,HZ] \
                     [--skip-keepalived] [--skip-containers] [--skip-outage] [--loss-seconds SECS] [--skip-loss]";

fn parse_args() -> Result<Options, String> {
    let mut o = Options {
        trials: 30,
        window: Duration::from_secs(20),
        warmup: Duration::from_secs(6),
        failover: true,
        footprint: true,
        outage: true,
        outage_trials: 20,
        outage_rates: vec![10, 50],
        keepalived: true,
        containers: true,
        loss: true,
        loss_seconds: Duration::from_secs(60),
    };
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let mut value = |name: &str| {
            args.next()
                .ok_or_else(|| format!("{name} needs a value\n{USAGE}"))
        };
        let seconds = |v: String| -> Result<Duration, String> {
            v.parse::<f64>()
                .ok()
                .filter(|s| s.is_finite() && *s > 0.0)
                .map(Duration::from_secs_f64)
                .ok_or_else(|| format!("not a number of seconds: {v}"))
        };
        match arg.as_str() {
            "--trials" => {
                let v = value("--trials")?;
                o.trials = v
                    .parse()
                    .ok()
                    .filter(|&n| n > 0)
                    .ok_or_else(|| format!("--trials: not a positive number: {v}"))?;
            }
            "--outage-trials" => {
                let v = value("--outage-trials")?;
                o.outage_trials = v
                    .parse()
                    .ok()
                    .filter(|&n| n > 0)
                    .ok_or_else(|| format!("--outage-trials: not a positive number: {v}"))?;
            }
            "--outage-rates" => {
                let v = value("--outage-rates")?;
                o.outage_rates = v
                    .split(',')
                    .map(|r| {
                        r.trim()
                            .parse::<u32>()
                            .ok()
                            .filter(|&hz| (1..=100).contains(&hz))
                    })
                    .collect::<Option<Vec<_>>>()
                    .ok_or_else(|| {
                        format!("--outage-rates: not a comma-separated list of 1..=100 Hz: {v}")
                    })?;
            }
            "--skip-keepalived" => o.keepalived = false,
            "--skip-containers" => o.containers = false,
            "--loss-seconds" => o.loss_seconds = seconds(value("--loss-seconds")?)?,
            "--skip-outage" => o.outage = false,
            "--skip-loss" => o.loss = false,
            "--window" => o.window = seconds(value("--window")?)?,
            "--warmup" => o.warmup = seconds(value("--warmup")?)?,
            // The output is always JSON; accepted for scripts that ask for it.
            "--json" => {}
            "--skip-failover" => o.failover = false,
            "--skip-footprint" => o.footprint = false,
            "-h" | "--help" => {
                println!("{USAGE}");
                std::process::exit(0);
            }
            other => return Err(format!("unknown argument {other:?}\n{USAGE}")),
        }
    }
    Ok(o)
}

fn main() {
    let options = match parse_args() {
        Ok(o) => o,
        Err(e) => {
            eprintln!("failover_bench: {e}");
            std::process::exit(2);
        }
    };
    if !rdg_e2e::is_root() {
        eprintln!(
            "failover_bench: needs root (it creates network namespaces and bridges); \
             run it as root, e.g. `sudo -E cargo run --release -p rdg-e2e --bin failover_bench`"
        );
        std::process::exit(2);
    }
    let handler = SigAction::new(
        SigHandler::Handler(on_signal),
        SaFlags::empty(),
        SigSet::empty(),
    );
    for signal in [Signal::SIGINT, Signal::SIGTERM, Signal::SIGHUP] {
        // SAFETY: the handler only stores to an atomic, which is async-signal-safe.
        if let Err(e) = unsafe { sigaction(signal, &handler) } {
            eprintln!("failover_bench: cannot handle {signal}: {e}");
        }
    }
    let started = Instant::now();
    let mut errors: Vec<String> = Vec::new();
    let rdg = match std::panic::catch_unwind(rdg_e2e::rdg_binary) {
        Ok(path) => path,
        Err(_) => {
            eprintln!("failover_bench: no rdg binary: `cargo build --release` or set RDG_BIN");
            std::process::exit(2);
        }
    };
    eprintln!("failover_bench: rdg binary {}", rdg.display());

    let interval = Duration::from_millis(100);
    let timeout = Duration::from_millis(300);
    let mut doc = if options.failover {
        let (report, errs) = failover::run(options.trials, interval, timeout);
        errors.extend(errs);
        report
    } else {
        json!({})
    };
    if options.footprint && check_interrupted().is_ok() {
        let (report, errs) = footprint::run(&[10, 50], options.window, options.warmup);
        errors.extend(errs);
        doc["footprint"] = report;
    }
    if options.outage && check_interrupted().is_ok() {
        let (report, errs) = outage::run(
            options.outage_trials,
            &options.outage_rates,
            options.keepalived,
            options.containers,
        );
        errors.extend(errs);
        doc["outage"] = report;
    }
    if options.loss && check_interrupted().is_ok() {
        let (report, errs) = loss::run(options.loss_seconds, Duration::from_millis(20), 20);
        errors.extend(errs);
        doc["loss"] = report;
    }
    doc["rdg_binary"] = json!(rdg.display().to_string());
    doc["cpus"] = json!(std::thread::available_parallelism().map_or(0, |n| n.get()));
    doc["elapsed_s"] = json!(stats::round1(started.elapsed().as_secs_f64()));
    doc["errors"] = Value::from(errors.clone());
    println!(
        "{}",
        serde_json::to_string_pretty(&doc).expect("JSON serialises")
    );
    if INTERRUPTED.load(Ordering::SeqCst) {
        std::process::exit(130);
    }
    if !errors.is_empty() {
        std::process::exit(1);
    }
}

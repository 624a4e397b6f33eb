//! The failover benchmark: real `rdg agent` processes in network namespaces (the `rdg-e2e`
//! lab), measured, and compared with keepalived.
//!
//! ```text
//! sudo cargo run --release -p rdg-e2e --bin failover_bench -- [--trials N] [--json]
//!     [--window SECS] [--warmup SECS] [--skip-failover] [--skip-footprint]
//!     [--outage-trials N] [--outage-rates HZ,HZ] [--skip-keepalived] [--skip-containers]
//!     [--skip-outage]
//!     [--loss-seconds S] [--skip-loss]
//!     [--lossy] [--lossy-quick] [--lossy-losses P,P] [--lossy-intervals-ms MS,MS,...]
//!     [--lossy-seconds S] [--lossy-outage-trials N] [--lossy-tools TOOL,TOOL] [--only PART,PART]
//! ```
//!
//! The lossy sweep in short, e.g. in CI (one setting per tool at 20 % loss, a few minutes):
//! `failover_bench --only lossy --lossy-quick`.
//!
//! Prints one JSON document on stdout (progress goes to stderr):
//!
//! * top level: failover timing after host death of the hot member (SIGKILL + both cables cut),
//!   `--trials` times (default 30) at heartbeat interval 100 ms / timeout 300 ms on two networks,
//!   three members, net check on: `trials`, `interval_ms`, `timeout_ms`, `detection_ms` and
//!   `takeover_ms` (`p50`, `p99`, `max`, ...), extra summaries and every trial (see
//!   [`failover`] for how each figure is measured);
//! * `footprint`: resident memory, CPU and system calls per second of rdg and of keepalived at
//!   10 Hz and 50 Hz (see [`footprint`]);
//! * `outage`: the outage a client pinging the VIP sees after host death of its owner, rdg (as
//!   processes, and as the controller's pods in podman containers) and keepalived at 10 Hz and
//!   50 Hz (`--outage-rates`), `--outage-trials` times each (default 20; see [`outage`]);
//! * `loss`: false takeovers of rdg and keepalived at 50 Hz with 20 % random loss on every
//!   member's input for `--loss-seconds` (default 60; see [`loss`]);
//! * `lossy` (only with `--lossy`, `--lossy-quick`, any other `--lossy-*` option or `--only
//!   lossy`): per tool and loss rate, the shortest heartbeat interval without false takeovers
//!   and the outage a client sees at it (see [`lossy`]);
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
mod lossy;
mod outage;

pub use rdg_e2e::bench::{check_interrupted, guarded, sleep};
use rdg_e2e::bench::{parse_positive, parse_seconds};
use rdg_e2e::stats;

use clap::{Parser, ValueEnum};
use serde_json::{Value, json};
use std::time::{Duration, Instant};

/// A part of the benchmark, for `--only`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Part {
    Failover,
    Footprint,
    Outage,
    Loss,
    Lossy,
}

/// Real rdg agents in network namespaces, measured and compared with keepalived; prints one
/// JSON document on stdout.
#[derive(Parser, Debug)]
#[command(name = "failover_bench")]
struct Options {
    /// Host deaths measured by the failover part.
    #[arg(long, value_name = "N", default_value_t = 30, value_parser = parse_positive)]
    trials: usize,
    /// Accepted for scripts that ask for it: the output is always JSON.
    #[arg(long)]
    json: bool,
    /// Measured window of the footprint part, in seconds.
    #[arg(long, value_name = "SECS", default_value = "20", value_parser = parse_seconds)]
    window: Duration,
    /// Warm-up before the footprint window, in seconds.
    #[arg(long, value_name = "SECS", default_value = "6", value_parser = parse_seconds)]
    warmup: Duration,
    /// Leave out the failover timing part.
    #[arg(long)]
    skip_failover: bool,
    /// Leave out the footprint part.
    #[arg(long)]
    skip_footprint: bool,
    /// Leave out the outage part.
    #[arg(long)]
    skip_outage: bool,
    /// Host deaths per tool and rate in the outage part.
    #[arg(long, value_name = "N", default_value_t = 20, value_parser = parse_positive)]
    outage_trials: usize,
    /// Heartbeat rates of the outage part, in Hz (1 to 100).
    #[arg(long, value_name = "HZ,HZ", value_delimiter = ',', default_value = "10,50",
          value_parser = clap::value_parser!(u32).range(1..=100))]
    outage_rates: Vec<u32>,
    /// Measure rdg alone in the outage part (for chasing rdg's outliers quickly).
    #[arg(long)]
    skip_keepalived: bool,
    /// Leave out rdg's members as podman containers in the outage part.
    #[arg(long)]
    skip_containers: bool,
    /// How long the loss part runs each tool, in seconds.
    #[arg(long, value_name = "SECS", default_value = "60", value_parser = parse_seconds)]
    loss_seconds: Duration,
    /// Leave out the loss part.
    #[arg(long)]
    skip_loss: bool,
    /// Run the lossy-network sweep: the shortest stable heartbeat interval per tool and loss.
    #[arg(long)]
    lossy: bool,
    /// The lossy sweep in short (as in CI): one interval of 100 ms, 60 s, 5 outage trials, 20 %
    /// loss; any other --lossy-* option given still applies.
    #[arg(long)]
    lossy_quick: bool,
    /// Random loss rates of the lossy sweep, in percent [default: 20,5].
    #[arg(long, value_name = "P,P", value_delimiter = ',',
          value_parser = clap::value_parser!(u8).range(1..=99))]
    lossy_losses: Option<Vec<u8>>,
    /// Heartbeat intervals tried by the lossy sweep, in milliseconds, shortest first
    /// [default: 20,50,100,200,500,1000,2000].
    #[arg(long, value_name = "MS,MS", value_delimiter = ',',
          value_parser = clap::value_parser!(u64).range(1..=40_950))]
    lossy_intervals_ms: Option<Vec<u64>>,
    /// How long each setting of the lossy sweep runs, in seconds [default: 300].
    #[arg(long, value_name = "SECS", value_parser = parse_seconds)]
    lossy_seconds: Option<Duration>,
    /// Host deaths measured at the shortest stable setting [default: 20].
    #[arg(long, value_name = "N", value_parser = parse_positive)]
    lossy_outage_trials: Option<usize>,
    /// Tools of the lossy sweep (to sweep them in two processes side by side, say)
    /// [default: rdg,keepalived].
    #[arg(long, value_name = "TOOL,TOOL", value_delimiter = ',')]
    lossy_tools: Option<Vec<lossy::Tool>>,
    /// Run only these parts.
    #[arg(long, value_name = "PART,PART", value_delimiter = ',')]
    only: Vec<Part>,
}

impl Options {
    /// Whether `part` runs: those named by `--only`, else those not skipped (the lossy sweep
    /// only when asked for).
    fn runs(&self, part: Part) -> bool {
        if !self.only.is_empty() {
            return self.only.contains(&part);
        }
        match part {
            Part::Failover => !self.skip_failover,
            Part::Footprint => !self.skip_footprint,
            Part::Outage => !self.skip_outage,
            Part::Loss => !self.skip_loss,
            Part::Lossy => {
                self.lossy
                    || self.lossy_quick
                    || self.lossy_losses.is_some()
                    || self.lossy_intervals_ms.is_some()
                    || self.lossy_seconds.is_some()
                    || self.lossy_outage_trials.is_some()
                    || self.lossy_tools.is_some()
            }
        }
    }

    /// The lossy sweep's settings: the options given, else the defaults (of `--lossy-quick`
    /// when it is given).
    fn lossy_settings(&self) -> lossy::Settings {
        let quick = self.lossy_quick;
        lossy::Settings {
            losses: self
                .lossy_losses
                .clone()
                .unwrap_or_else(|| if quick { vec![20] } else { vec![20, 5] }),
            intervals_ms: self.lossy_intervals_ms.clone().unwrap_or_else(|| {
                if quick {
                    vec![100]
                } else {
                    vec![20, 50, 100, 200, 500, 1000, 2000]
                }
            }),
            seconds: self.lossy_seconds.unwrap_or(Duration::from_secs(if quick {
                60
            } else {
                300
            })),
            outage_trials: self
                .lossy_outage_trials
                .unwrap_or(if quick { 5 } else { 20 }),
            tools: self
                .lossy_tools
                .clone()
                .unwrap_or_else(|| vec![lossy::Tool::Rdg, lossy::Tool::Keepalived]),
        }
    }
}

fn main() {
    let options = Options::parse();
    rdg_e2e::bench::require_root(
        "failover_bench",
        "it creates network namespaces and bridges; run it as root, e.g. \
         `sudo -E cargo run --release -p rdg-e2e --bin failover_bench`",
    );
    rdg_e2e::bench::handle_signals("failover_bench");
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
    let mut doc = if options.runs(Part::Failover) {
        let (report, errs) = failover::run(options.trials, interval, timeout);
        errors.extend(errs);
        report
    } else {
        json!({})
    };
    if options.runs(Part::Footprint) && check_interrupted().is_ok() {
        let (report, errs) = footprint::run(&[10, 50], options.window, options.warmup);
        errors.extend(errs);
        doc["footprint"] = report;
    }
    if options.runs(Part::Outage) && check_interrupted().is_ok() {
        let (report, errs) = outage::run(
            options.outage_trials,
            &options.outage_rates,
            !options.skip_keepalived,
            !options.skip_containers,
        );
        errors.extend(errs);
        doc["outage"] = report;
    }
    if options.runs(Part::Loss) && check_interrupted().is_ok() {
        let (report, errs) = loss::run(options.loss_seconds, Duration::from_millis(20), 20);
        errors.extend(errs);
        doc["loss"] = report;
    }
    if options.runs(Part::Lossy) && check_interrupted().is_ok() {
        let (report, errs) = lossy::run(&options.lossy_settings());
        errors.extend(errs);
        doc["lossy"] = report;
    }
    doc["rdg_binary"] = json!(rdg.display().to_string());
    doc["cpus"] = json!(std::thread::available_parallelism().map_or(0, |n| n.get()));
    doc["elapsed_s"] = json!(stats::round1(started.elapsed().as_secs_f64()));
    doc["errors"] = Value::from(errors);
    rdg_e2e::bench::finish(&doc);
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn options() {
        Options::command().debug_assert();
        let o = Options::parse_from(["failover_bench"]);
        assert_eq!(o.trials, 30);
        assert_eq!(o.window, Duration::from_secs(20));
        assert_eq!(o.outage_rates, [10, 50]);
        assert!(o.runs(Part::Loss) && !o.runs(Part::Lossy));
        let o = Options::parse_from(["failover_bench", "--only", "lossy", "--lossy-quick"]);
        assert!(o.runs(Part::Lossy) && !o.runs(Part::Failover));
        let s = o.lossy_settings();
        assert_eq!((s.losses, s.intervals_ms), (vec![20], vec![100]));
        let o = Options::parse_from(["failover_bench", "--lossy-seconds", "30"]);
        assert!(o.runs(Part::Lossy));
        assert_eq!(o.lossy_settings().losses, [20, 5]);
        assert_eq!(
            o.lossy_settings().tools,
            [lossy::Tool::Rdg, lossy::Tool::Keepalived]
        );
        let o = Options::parse_from(["failover_bench", "--lossy-tools", "keepalived"]);
        assert!(o.runs(Part::Lossy));
        assert_eq!(o.lossy_settings().tools, [lossy::Tool::Keepalived]);
        assert!(Options::try_parse_from(["failover_bench", "--outage-rates", "0"]).is_err());
        assert!(Options::try_parse_from(["failover_bench", "--trials", "0"]).is_err());
    }
}

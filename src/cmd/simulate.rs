//! `rdg simulate`: many seeded scenarios in virtual time; exits non-zero on any violation.

use rdg_core::sim::{ScenarioOptions, SimOptions, World, run_seeds};
use std::process::ExitCode;
use std::time::{Duration, Instant};

/// Arguments of `rdg simulate`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Number of seeds (scenarios) to run.
    #[arg(long, default_value_t = 1000)]
    seeds: u64,
    /// First seed.
    #[arg(long, default_value_t = 0)]
    first_seed: u64,
    /// Members per group.
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u64).range(2..=16))]
    members: u64,
    /// Virtual seconds per scenario.
    #[arg(long, default_value_t = 30.0)]
    seconds: f64,
    /// Worker threads (default: all cores).
    #[arg(long)]
    threads: Option<usize>,
    /// Print the summary as JSON.
    #[arg(long)]
    json: bool,
    /// Replay one seed and print its timeline (use with a seed from `failing_seeds`).
    #[arg(long, value_name = "SEED")]
    trace: Option<u64>,
}

/// Runs the simulation and prints the summary (or one seed's timeline).
pub fn run(args: &Args) -> ExitCode {
    if !(args.seconds.is_finite() && args.seconds >= 10.0 && args.seconds <= 3600.0) {
        eprintln!("--seconds must be between 10 and 3600");
        return ExitCode::from(2);
    }
    // `SimOptions` has a further field with rdg-core's `fault-injection` feature (tests only).
    #[allow(clippy::needless_update)]
    let opts = SimOptions {
        scenario: ScenarioOptions {
            members: args.members as usize,
            duration: Duration::from_secs_f64(args.seconds),
        },
        ..SimOptions::default()
    };
    if let Some(seed) = args.trace {
        return trace(seed, &opts);
    }
    let threads = args
        .threads
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()));
    let started = Instant::now();
    let summary = run_seeds(args.first_seed, args.seeds, &opts, threads);
    let elapsed = started.elapsed().as_secs_f64();
    if args.json {
        let mut v = serde_json::to_value(&summary).expect("summary serializes");
        v["elapsed_s"] = serde_json::json!((elapsed * 1000.0).round() / 1000.0);
        println!("{v}");
    } else {
        println!(
            "{} seeds x {} s virtual, {} members: {} violations, {} failovers; failover p50 {:.0} ms, p99 {:.0} ms, max {:.0} ms ({:.1} s)",
            summary.seeds,
            summary.seconds,
            summary.members,
            summary.violations,
            summary.failovers,
            summary.p50_failover_ms,
            summary.p99_failover_ms,
            summary.max_failover_ms,
            elapsed
        );
        for v in &summary.first_violations {
            println!(
                "violation: seed {} at {} ms: {}: {}  (replay: rdg simulate --trace {})",
                v.seed, v.at_ms, v.rule, v.detail, v.seed
            );
        }
    }
    if summary.violations == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

fn trace(seed: u64, opts: &SimOptions) -> ExitCode {
    let sc = rdg_core::sim::Scenario::generate(seed, opts.scenario);
    println!(
        "seed {seed}: {} members, {} network(s), interval {}, timeout {}, loss {:?}, preempt {}",
        sc.config.members.len(),
        sc.config.networks.len(),
        sc.config.heartbeat.interval,
        sc.config.heartbeat.timeout,
        sc.loss,
        sc.config.preempt
    );
    for m in &sc.config.members {
        println!("  {} priority {}", m.name, m.priority);
    }
    let mut world = World::new(sc).with_log();
    while world.step() {
        for l in world.take_log() {
            println!("{:>9.3}s {:<6} {}", l.at.as_secs_f64(), l.member, l.text);
        }
    }
    let violations = &world.checker().violations;
    for v in violations {
        println!("VIOLATION at {} ms: {}: {}", v.at_ms, v.rule, v.detail);
    }
    if violations.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

//! `rdg model-check`: every reachable state of small groups within bounds; exits non-zero on
//! any violation.

use rdg_core::check::{self, CheckOptions, CheckReport, default_depth};
use std::process::ExitCode;

/// Arguments of `rdg model-check`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Members per group (default: check 2, then 3).
    #[arg(long, value_parser = clap::value_parser!(u64).range(2..=3))]
    members: Option<u64>,
    /// Most actions on a path (default: 28 with 2 members, 20 with 3).
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..=1000))]
    depth: Option<u64>,
    /// Most faults on a path.
    #[arg(long, default_value_t = check::DEFAULT_MAX_FAULTS)]
    faults: u32,
    /// Make every member break one rule, to see it caught (SingleNetworkLiveness,
    /// IgnoreNetCheck, PromotePriorityZero, NoConflictResolution).
    #[cfg(feature = "fault-injection")]
    #[arg(long, value_name = "NAME")]
    fault: Option<String>,
    /// Print the reports as JSON.
    #[arg(long)]
    json: bool,
}

/// Runs the checks and prints one report per group size.
pub fn run(args: &Args) -> ExitCode {
    let sizes: Vec<usize> = match args.members {
        Some(m) => vec![m as usize],
        None => vec![2, 3],
    };
    let mut reports: Vec<CheckReport> = Vec::new();
    for members in sizes {
        // `CheckOptions` has a further field with rdg-core's `fault-injection` feature.
        #[allow(clippy::needless_update, unused_mut)]
        let mut opts = CheckOptions {
            members,
            depth: args.depth.map_or(default_depth(members), |d| d as usize),
            max_faults: args.faults,
            ..CheckOptions::default()
        };
        #[cfg(feature = "fault-injection")]
        if let Some(name) = &args.fault {
            match check::fault_by_name(name) {
                Some(f) => opts.fault = Some(f),
                None => {
                    eprintln!("unknown fault {name:?}");
                    return ExitCode::from(2);
                }
            }
        }
        let r = check::run(&opts);
        if !args.json {
            print_report(&r);
        }
        reports.push(r);
    }
    let violations: usize = reports.iter().map(|r| r.violations.len()).sum();
    if args.json {
        let v = serde_json::json!({
            "violations": violations,
            "states": reports.iter().map(|r| r.states).sum::<u64>(),
            "seconds": reports.iter().map(|r| r.seconds).sum::<f64>(),
            "configurations": reports,
        });
        println!("{v}");
    }
    if violations == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

fn print_report(r: &CheckReport) {
    let fault = r
        .fault
        .as_deref()
        .map_or(String::new(), |f| format!(", fault {f}"));
    println!(
        "{} members, depth {}, {} fault(s) per path{fault}: {} states, {} transitions, depth reached {}{}, {:.1} s, {} violation(s)",
        r.members,
        r.depth,
        r.max_faults,
        r.states,
        r.transitions,
        r.max_depth_reached,
        if r.exhausted {
            " (all states seen)"
        } else {
            ""
        },
        r.seconds,
        r.violations.len()
    );
    for v in &r.violations {
        println!(
            "VIOLATION {}: {} (at {} ms, {} actions from the start state); shortest trace:",
            v.rule, v.detail, v.at_ms, v.depth
        );
        for l in &v.trace {
            println!(
                "{:>9.3}s {:<4} {}",
                l.at_ms as f64 / 1000.0,
                l.member,
                l.text
            );
        }
    }
}

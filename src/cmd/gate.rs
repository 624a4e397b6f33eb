//! `rdg gate --role-file FILE -- CMD ARGS...`: run CMD only while this member is hot with a
//! valid lease (see `rdg_agent::gate`). SIGTERM/SIGINT stop CMD and then the gate (exit 0);
//! a CMD that cannot be started at all exits 127.

use rdg_agent::gate::{GateOptions, run as run_gate};
use rdg_core::Dur;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;

/// Arguments of `rdg gate`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The role file the agent writes (`roleFile` in the group configuration).
    #[arg(long)]
    role_file: PathBuf,
    /// Time between SIGTERM and SIGKILL when the command must stop.
    #[arg(long, default_value = "2s")]
    grace: Dur,
    /// How often the role file is read (the lease end is honoured exactly regardless).
    #[arg(long, default_value = "20ms")]
    poll: Dur,
    /// The command and its arguments (after `--`).
    #[arg(last = true, required = true, value_name = "CMD")]
    command: Vec<String>,
}

/// Runs the gate until SIGTERM/SIGINT.
pub fn run(args: &Args) -> ExitCode {
    if args.poll.get().is_zero() {
        eprintln!("--poll must be greater than 0");
        return ExitCode::from(2);
    }
    let stop = Arc::new(AtomicBool::new(false));
    for sig in [signal_hook::consts::SIGTERM, signal_hook::consts::SIGINT] {
        if let Err(e) = signal_hook::flag::register(sig, Arc::clone(&stop)) {
            eprintln!("rdg gate: cannot handle signal {sig}: {e}");
            return ExitCode::FAILURE;
        }
    }
    let opts = GateOptions {
        role_file: args.role_file.clone(),
        command: args.command.clone(),
        grace: args.grace.get(),
        poll: args.poll.get(),
    };
    match run_gate(&opts, &stop) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("rdg gate: {e}");
            ExitCode::from(127)
        }
    }
}

//! `rdg`: one binary, one subcommand per job. Argument parsing lives here; the work is done
//! by the crates under `crates/` (see `cmd/` for the thin glue of each subcommand).

mod cmd;
mod logging;

use clap::{Parser, Subcommand};
use std::path::PathBuf;
use std::process::ExitCode;

/// Redundant groups for Infocast servers: exactly one hot member, sub-second failover.
#[derive(Debug, Parser)]
#[command(name = "rdg", version, about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Validate a group configuration file: exit 0 when valid, 2 with one line per problem.
    CheckConfig {
        /// The group configuration (YAML).
        file: PathBuf,
    },
    /// Run many seeded scenarios of the election in virtual time and check its invariants.
    Simulate(cmd::simulate::Args),
    /// Explore every reachable state of 2- and 3-member groups within bounds and check the
    /// election's invariants in each; prints the shortest trace to a violation.
    ModelCheck(cmd::model_check::Args),
    /// Run a command only while this member is hot and its lease in the role file is valid.
    Gate(cmd::gate::Args),
    /// Run one member of a group until SIGTERM (then hand over gracefully).
    Agent(cmd::agent::Args),
    /// Ask the group over the network which member is hot.
    Status(cmd::status::Args),
    /// Send the configuration's carousel channels (only while hot, with a role file).
    Transmit(cmd::transmit::Args),
    /// Listen to a carousel channel like a set-top box and report what arrived.
    Receive(cmd::receive::Args),
    /// Show a group of three members electing, failing over and recovering (no root needed).
    Demo(cmd::demo::Args),
    /// Run the Kubernetes operator: one host-network pod per member of each RedundantGroup.
    Controller(cmd::controller::Args),
    /// Print the RedundantGroup CustomResourceDefinition (YAML) for `kubectl apply -f -`.
    Crd,
    /// Copy this binary into a directory (member pods hand it to a gated transmitter).
    Install(cmd::install::Args),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::CheckConfig { file } => cmd::check_config::run(&file),
        Command::Simulate(args) => cmd::simulate::run(&args),
        Command::ModelCheck(args) => cmd::model_check::run(&args),
        Command::Demo(args) => cmd::demo::run(&args),
        Command::Gate(args) => cmd::gate::run(&args),
        Command::Agent(args) => cmd::agent::run(&args),
        Command::Status(args) => cmd::status::run(&args),
        Command::Transmit(args) => cmd::transmit::run(&args),
        Command::Receive(args) => cmd::receive::run(&args),
        Command::Controller(args) => cmd::controller::run(&args),
        Command::Install(args) => cmd::install::run(&args),
        Command::Crd => cmd::crd::run(),
    }
}

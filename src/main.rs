//! `rdg`: one binary, one subcommand per job. Argument parsing lives here; the work is done
//! by the crates under `crates/` (see `cmd/` for the thin glue of each subcommand).

mod cmd;
mod logging;

use clap::{Args as _, CommandFactory, FromArgMatches, Subcommand};
use std::path::PathBuf;
use std::process::ExitCode;

/// Redundant groups for Infocast servers: exactly one hot member, sub-second failover.
#[derive(Debug, clap::Parser)]
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
    /// Ask the local hot member for a planned hand-over to another member (needs its token).
    Switchover(cmd::switchover::Args),
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

/// The hidden subcommand for packagers: not part of [`Cli`], so the manual pages and
/// completions it writes (from `Cli::command()`) show only what users run.
const GENERATE_ASSETS: &str = "generate-assets";

/// `Cli`'s command line plus the hidden `generate-assets`.
fn command_line() -> clap::Command {
    Cli::command().subcommand(
        cmd::generate_assets::Args::augment_args(clap::Command::new(GENERATE_ASSETS))
            .about("Write the manual pages and shell completions (for packagers)")
            .hide(true),
    )
}

fn main() -> ExitCode {
    // Under the names kubectl looks up, this binary is the kubectl plugin.
    match cmd::plugin::invoked_as().as_deref() {
        Some(cmd::plugin::PLUGIN_NAME) => return cmd::plugin::main(),
        Some(cmd::plugin::COMPLETE_NAME) => return cmd::plugin::complete::main(),
        _ => {}
    }
    let matches = command_line().get_matches();
    if let Some((GENERATE_ASSETS, m)) = matches.subcommand() {
        let args = cmd::generate_assets::Args::from_arg_matches(m).unwrap_or_else(|e| e.exit());
        return cmd::generate_assets::run(&args, Cli::command());
    }
    let cli =
        Cli::from_arg_matches(&matches).unwrap_or_else(|e| e.format(&mut command_line()).exit());
    match cli.command {
        Command::CheckConfig { file } => cmd::check_config::run(&file),
        Command::Simulate(args) => cmd::simulate::run(&args),
        Command::ModelCheck(args) => cmd::model_check::run(&args),
        Command::Demo(args) => cmd::demo::run(&args),
        Command::Gate(args) => cmd::gate::run(&args),
        Command::Agent(args) => cmd::agent::run(&args),
        Command::Status(args) => cmd::status::run(&args),
        Command::Switchover(args) => cmd::switchover::run(&args),
        Command::Transmit(args) => cmd::transmit::run(&args),
        Command::Receive(args) => cmd::receive::run(&args),
        Command::Controller(args) => cmd::controller::run(&args),
        Command::Install(args) => cmd::install::run(&args),
        Command::Crd => cmd::crd::run(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The packaged manual pages and completions come out of the real command line: a page per
    /// subcommand, every subcommand and flag in every shell's completion, the packagers'
    /// subcommand in none of them.
    #[test]
    fn manual_pages_and_completions_cover_every_subcommand() {
        let out = std::env::temp_dir().join(format!("rdg-assets-{}", std::process::id()));
        let files = cmd::generate_assets::write_assets(Cli::command(), &out).unwrap();
        let read = |rel: &str| std::fs::read_to_string(out.join(rel)).unwrap();
        let cli = Cli::command();
        let names: Vec<&str> = cli.get_subcommands().map(|s| s.get_name()).collect();
        assert!(names.len() >= 11, "subcommands: {names:?}");
        let top = read("man/rdg.1");
        assert!(
            top.contains(env!("CARGO_PKG_VERSION")),
            "rdg.1 names the version"
        );
        let completions: Vec<(&str, String)> = cmd::generate_assets::COMPLETIONS
            .iter()
            .map(|(_, name)| (*name, read(&format!("completions/{name}"))))
            .collect();
        for sub in cli.get_subcommands() {
            let name = sub.get_name();
            let page = read(&format!("man/rdg-{name}.1"));
            assert!(
                top.contains(&format!("rdg\\-{}(1)", name.replace('-', "\\-"))),
                "rdg.1 lists {name}"
            );
            for arg in sub.get_arguments().filter(|a| !a.is_hide_set()) {
                if let Some(long) = arg.get_long() {
                    let roff = format!("\\-\\-{}", long.replace('-', "\\-"));
                    assert!(page.contains(&roff), "rdg-{name}.1 documents --{long}");
                    for (file, text) in &completions {
                        assert!(text.contains(long), "{file} completes {name} --{long}");
                    }
                }
            }
            for (file, text) in &completions {
                assert!(text.contains(name), "{file} completes {name}");
            }
        }
        let plugin = read("man/kubectl-rdg.1");
        for sub in ["status", "switchover", "fence", "unfence", "report"] {
            assert!(plugin.contains(sub), "kubectl-rdg.1 lists {sub}");
        }
        assert_eq!(
            files.len(),
            names.len() + 2 + completions.len(),
            "{files:?}"
        );
        for f in &files {
            let text = std::fs::read_to_string(f).unwrap();
            assert!(
                !text.contains(GENERATE_ASSETS),
                "{} is for users",
                f.display()
            );
        }
        std::fs::remove_dir_all(&out).ok();
    }

    /// `generate-assets` runs but stays out of `rdg --help`.
    #[test]
    fn generate_assets_is_hidden() {
        let mut help = Vec::new();
        command_line().write_long_help(&mut help).unwrap();
        let help = String::from_utf8(help).unwrap();
        assert!(help.contains("check-config") && !help.contains(GENERATE_ASSETS));
        let m = command_line()
            .try_get_matches_from(["rdg", GENERATE_ASSETS, "--out", "x"])
            .unwrap();
        assert_eq!(m.subcommand_name(), Some(GENERATE_ASSETS));
    }
}

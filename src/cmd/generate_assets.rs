//! `rdg generate-assets --out DIR` (hidden, for packagers): writes the manual pages and shell
//! completions of this very binary's command line, so a package always documents the binary
//! it ships. `packaging/deb/build.sh` runs it on the binary it packages.
//!
//! Layout under DIR: `man/rdg.1`, `man/rdg-SUBCOMMAND.1` and `man/kubectl-rdg.1` (uncompressed
//! roff; the packager compresses them), `completions/rdg` (bash), `completions/_rdg` (zsh),
//! `completions/rdg.fish` (fish).

use clap::Command;
use clap_complete::Shell;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

/// Arguments of `rdg generate-assets`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Directory to write `man/` and `completions/` into (created if missing).
    #[arg(long)]
    pub out: PathBuf,
}

/// The completion files: shell and file name (as the shells look them up).
pub const COMPLETIONS: [(Shell, &str); 3] = [
    (Shell::Bash, "rdg"),
    (Shell::Zsh, "_rdg"),
    (Shell::Fish, "rdg.fish"),
];

/// Writes the assets of `cli` (the user-facing command line) under `args.out`; exit 1 with
/// the reason when a file cannot be written.
pub fn run(args: &Args, cli: Command) -> ExitCode {
    match write_assets(cli, &args.out) {
        Ok(files) => {
            for f in files {
                println!("{}", f.display());
            }
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("cannot write the assets into {}: {e}", args.out.display());
            ExitCode::FAILURE
        }
    }
}

/// Writes the manual pages and completions; returns the files written, sorted.
pub fn write_assets(cli: Command, out: &Path) -> std::io::Result<Vec<PathBuf>> {
    let man = out.join("man");
    let completions = out.join("completions");
    // Stale pages of a renamed subcommand must not end up in a package.
    for dir in [&man, &completions] {
        if dir.exists() {
            std::fs::remove_dir_all(dir)?;
        }
        std::fs::create_dir_all(dir)?;
    }
    clap_mangen::generate_to(cli.clone(), &man)?;
    // The kubectl plugin (rdg linked as kubectl-rdg): one page for all its subcommands.
    let mut page = Vec::new();
    clap_mangen::Man::new(super::plugin::command()).render(&mut page)?;
    std::fs::write(man.join(format!("{}.1", super::plugin::PLUGIN_NAME)), page)?;
    for (shell, name) in COMPLETIONS {
        let mut text = Vec::new();
        clap_complete::generate(shell, &mut cli.clone(), "rdg", &mut text);
        std::fs::write(completions.join(name), text)?;
    }
    let mut files = Vec::new();
    for dir in [&man, &completions] {
        for entry in std::fs::read_dir(dir)? {
            files.push(entry?.path());
        }
    }
    files.sort();
    Ok(files)
}

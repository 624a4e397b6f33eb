//! Log output of the long-running subcommands: `tracing` lines on stderr, level from `RUST_LOG`
//! (default `info`), without colours when stderr is not a terminal.

use std::io::IsTerminal;
use tracing_subscriber::EnvFilter;

/// Installs the stderr subscriber once.
pub fn init() {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .with_target(false)
        .try_init();
}

//! One module per subcommand: turn parsed arguments into calls and exit codes.

pub mod agent;
pub mod check_config;
pub mod controller;
pub mod crd;
pub mod demo;
pub mod demo_real;
pub mod gate;
pub mod generate_assets;
pub mod install;
pub mod model_check;
pub mod plugin;
pub mod receive;
pub mod simulate;
pub mod status;
pub mod switchover;
pub mod transmit;

use rdg_core::config::{GroupConfig, LoadError};
use std::path::Path;

/// Loads and validates a group configuration for a subcommand that runs with it; on failure
/// prints every problem (one line each, with its field path) and returns None (exit 2).
pub fn load_config(path: &Path) -> Option<GroupConfig> {
    match GroupConfig::load(path) {
        Ok(c) => Some(c),
        Err(LoadError::Invalid(problems)) => {
            for p in &problems {
                eprintln!("{}: {p}", path.display());
            }
            None
        }
        Err(e) => {
            eprintln!("{e}");
            None
        }
    }
}

/// Completes on the first SIGTERM or SIGINT.
pub async fn stop_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    match (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
    ) {
        (Ok(mut term), Ok(mut int)) => {
            tokio::select! {
                _ = term.recv() => {}
                _ = int.recv() => {}
            }
        }
        _ => {
            tracing::error!("cannot handle SIGTERM/SIGINT; stop with SIGKILL");
            std::future::pending::<()>().await;
        }
    }
}

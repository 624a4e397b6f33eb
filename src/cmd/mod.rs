//! One module per subcommand: turn parsed arguments into calls and exit codes.

pub mod agent;
pub mod check_config;
pub mod demo;
pub mod demo_real;
pub mod gate;
pub mod simulate;
pub mod status;

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

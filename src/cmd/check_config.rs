//! `rdg check-config FILE`: exit 0 when valid; exit 2 and one line per problem, each naming
//! the field path (`netCheck.timeout: ...`).

use rdg_core::config::{GroupConfig, LoadError};
use std::path::Path;
use std::process::ExitCode;

/// Validates `file` and reports every problem on stderr.
pub fn run(file: &Path) -> ExitCode {
    match GroupConfig::load(file) {
        Ok(cfg) => {
            let kind = if cfg.is_standalone() {
                "standalone (no group name: always hot, no heartbeats)".to_string()
            } else {
                format!(
                    "group {:?}: {} members on {} network(s)",
                    cfg.name,
                    cfg.members.len(),
                    cfg.networks.len()
                )
            };
            println!("{}: valid, {kind}", file.display());
            ExitCode::SUCCESS
        }
        Err(LoadError::Invalid(problems)) => {
            for p in &problems {
                eprintln!("{p}");
            }
            ExitCode::from(2)
        }
        Err(e) => {
            eprintln!("{e}");
            ExitCode::from(2)
        }
    }
}

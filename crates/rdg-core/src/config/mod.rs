//! The group configuration file (a **contract**: its keys are relied on by tools outside rdg; keep them, or extend them compatibly).
//!
//! One YAML file per group, identical on every member; a member picks its own entry by name.
//! [`GroupConfig::from_yaml`] parses with field paths in errors, [`GroupConfig::validate`]
//! returns *every* problem, each naming the field path (`netCheck.timeout: ...`).
//! [`reference::markdown`] is the table of every key, type and default in `docs/configuration.md`,
//! generated from the schema of these types.

mod load;
pub mod reference;
mod types;
mod units;
mod validate;

pub use load::{ConfigError, LoadError};
pub use types::*;
pub use units::*;
pub use validate::Problem;

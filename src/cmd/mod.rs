//! One module per subcommand: turn parsed arguments into calls and exit codes.

pub mod agent;
pub mod check_config;
pub mod demo;
pub mod demo_real;
pub mod gate;
pub mod simulate;
pub mod status;

//! Log output of the long-running subcommands: `tracing` lines on stderr, level from `RUST_LOG`
//! (default `info`), without colours when stderr is not a terminal.

use std::io::IsTerminal;
use tracing_subscriber::EnvFilter;

/// kube's client logs every failed request at ERROR, without saying which; rdg's callers log
/// the failure themselves, with what failed and when they retry (rate-limited). Kept unless
/// `RUST_LOG` names `kube_client` itself.
const QUIET_KUBE_CLIENT: &str = "kube_client::client::builder=off";

/// Installs the stderr subscriber once.
pub fn init() {
    let mut filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let env = std::env::var(EnvFilter::DEFAULT_ENV).unwrap_or_default();
    if !env.contains("kube_client")
        && let Ok(directive) = QUIET_KUBE_CLIENT.parse()
    {
        filter = filter.add_directive(directive);
    }
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .with_target(false)
        .try_init();
}

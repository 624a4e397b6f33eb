//! `rdg agent --config FILE --member NAME`: run one member until SIGTERM/SIGINT, then hand over
//! gracefully (see `rdg_agent::agent`). Exit 0 after a graceful stop, 2 for a configuration
//! problem, 1 when the host cannot run the member (address not local, no capability, port
//! taken).

use rdg_agent::agent::{AgentError, AgentOptions, run as run_agent};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

/// Arguments of `rdg agent`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The group configuration (YAML), identical on every member.
    #[arg(long)]
    config: PathBuf,
    /// This member's name (an entry of `members`; D2000 KernelName). Defaults to the host name.
    #[arg(long)]
    member: Option<String>,
    /// Write the role file here instead of the configuration's `roleFile`.
    #[arg(long)]
    role_file: Option<PathBuf>,
    /// Serve /status, /healthz and /metrics here instead of the configuration's `status.listen`.
    #[arg(long)]
    status_listen: Option<SocketAddr>,
}

/// Runs the agent on a single-threaded runtime.
pub fn run(args: &Args) -> ExitCode {
    crate::logging::init();
    let Some(cfg) = super::load_config(&args.config) else {
        return ExitCode::from(2);
    };
    let member = match &args.member {
        Some(m) => m.clone(),
        None => match nix::unistd::gethostname() {
            Ok(h) => h.to_string_lossy().into_owned(),
            Err(e) => {
                eprintln!("--member not given and the host name cannot be read: {e}");
                return ExitCode::from(2);
            }
        },
    };
    let opts = AgentOptions {
        role_file: args
            .role_file
            .clone()
            .unwrap_or_else(|| cfg.role_file_path().into()),
        status_listen: args.status_listen.unwrap_or(cfg.status.listen),
        member,
        config: cfg,
    };
    let rt = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("rdg agent: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match rt.block_on(run_agent(opts, stop_signal())) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e @ AgentError::Params(_)) => {
            eprintln!("rdg agent: {e}");
            ExitCode::from(2)
        }
        Err(e) => {
            eprintln!("rdg agent: {e}");
            ExitCode::FAILURE
        }
    }
}

/// Completes on the first SIGTERM or SIGINT.
async fn stop_signal() {
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
            tracing::error!("cannot handle SIGTERM/SIGINT; stop the agent with SIGKILL");
            std::future::pending::<()>().await;
        }
    }
}

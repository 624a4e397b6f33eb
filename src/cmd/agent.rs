//! `rdg agent --config FILE --member NAME`: run one member until SIGTERM/SIGINT, then hand over
//! gracefully (see `rdg_agent::agent`). Exit 0 after a graceful stop, 2 for a configuration
//! problem, 1 when the host cannot run the member (address not local, no capability, port
//! taken). With a `transmitter` section the agent also runs the carousel (unless
//! `--no-transmit`), on its own thread, gated by the role file it writes.

use rdg_agent::agent::{AgentError, AgentOptions, run as run_agent};
use rdg_infocast::{GateMode, TransmitOptions, TransmitterThread};
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
    /// Do not run the configuration's `transmitter` channels in the agent (e.g. when a
    /// separate `rdg transmit` or `rdg gate` runs the carousel).
    #[arg(long)]
    no_transmit: bool,
    /// Local address the carousel is sent from (for IPv4 multicast also the outgoing
    /// interface); default: the routing table's choice.
    #[arg(long)]
    transmit_interface: Option<std::net::IpAddr>,
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
    // The carousel runs on its own thread and runtime, gated by the role file this agent
    // writes, so its traffic never delays heartbeats.
    let carousel = match (&opts.config.transmitter, args.no_transmit) {
        (Some(tx), false) => {
            let tx_opts = TransmitOptions {
                gate: GateMode::RoleFile {
                    path: opts.role_file.clone(),
                    member: Some(opts.member.clone()),
                },
                interface: args.transmit_interface,
            };
            match TransmitterThread::spawn(tx.clone(), tx_opts) {
                Ok(t) => Some(t),
                Err(e) => return super::transmit::exit_for(&e),
            }
        }
        _ => None,
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
    let result = rt.block_on(run_agent(opts, super::stop_signal()));
    if let Some(t) = carousel {
        t.stop();
    }
    match result {
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

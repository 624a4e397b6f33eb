//! `rdg agent --config FILE --member NAME`: run one member until SIGTERM/SIGINT, then hand over
//! gracefully (see `rdg_agent::agent`). Exit 0 after a graceful stop, 2 for a configuration
//! problem, 1 when the host cannot run the member (address not local, no capability, port
//! taken). With a `transmitter` section the agent also runs the carousel (unless
//! `--no-transmit`), on its own thread, gated by the role file it writes.
//!
//! Kubernetes mode: with `RDG_K8S_GROUP` (and `RDG_K8S_NAMESPACE`, `RDG_K8S_POD`,
//! `RDG_K8S_NODE`) set, the agent also runs the reporter of `rdg_operator::reporter` on its own
//! thread: it mirrors this member into the RedundantGroup's status, labels the pod with its
//! role, publishes Events and carries out switchovers the controller asks for. It is
//! best-effort and off the data path; without the variables nothing changes.

use rdg_agent::agent::{AgentError, AgentOptions, run as run_agent};
use rdg_agent::content::ContentWatch;
use rdg_agent::switchover_token;
use rdg_infocast::manifest::CarouselManifest;
use rdg_infocast::{CarouselMetrics, GateMode, TransmitOptions, TransmitterThread};
use rdg_operator::reporter::{K8sEnv, ReporterConfig, ReporterThread};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

/// How long shutdown waits for the reporter (after the graceful hand-over is done).
const REPORTER_STOP_WAIT: Duration = Duration::from_millis(300);

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
    let role_file: PathBuf = args
        .role_file
        .clone()
        .unwrap_or_else(|| cfg.role_file_path().into());
    // The switchover credential, read or created before anything can ask for a switchover.
    let token_path = switchover_token::path_for(cfg.status.token_file.as_deref(), &role_file);
    let switchover_token = match switchover_token::load_or_create(&token_path) {
        Ok(t) => t,
        Err(e) => {
            eprintln!("rdg agent: {e}");
            return ExitCode::FAILURE;
        }
    };
    // The carousel's counters, shared by its thread and the agent's /metrics.
    let runs_carousel = cfg.transmitter.is_some() && !args.no_transmit;
    let carousel_metrics = runs_carousel.then(CarouselMetrics::default);
    let opts = AgentOptions {
        role_file,
        status_listen: args.status_listen.unwrap_or(cfg.status.listen),
        member,
        switchover_token: switchover_token.clone(),
        config_path: Some(args.config.clone()),
        // Compared with the hot member's even when another process sends the carousel.
        content: cfg
            .transmitter
            .as_ref()
            .map(|tx| ContentWatch::new(CarouselManifest::new(tx))),
        carousel_metrics: carousel_metrics.clone(),
        config: cfg,
    };
    // Kubernetes mode: the reporter reads this agent's /status over loopback, on its own
    // thread and runtime, so a slow API server never touches the agent loop.
    let reporter = match K8sEnv::from_env() {
        Ok(None) => None,
        Ok(Some(env)) => {
            tracing::info!(
                group = %env.group,
                namespace = %env.namespace,
                pod = %env.pod,
                node = %env.node,
                "Kubernetes mode: reporting this member into its RedundantGroup"
            );
            let cfg = ReporterConfig::new(
                env,
                opts.member.clone(),
                opts.status_listen,
                switchover_token,
            );
            match ReporterThread::spawn(cfg) {
                Ok(r) => Some(r),
                Err(e) => {
                    eprintln!("rdg agent: {e}");
                    return ExitCode::from(2);
                }
            }
        }
        Err(e) => {
            eprintln!("rdg agent: Kubernetes mode: {e}");
            return ExitCode::from(2);
        }
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
                metrics: carousel_metrics,
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
    // The hand-over is done: stopping the reporter now cannot delay it.
    if let Some(r) = reporter {
        r.stop(REPORTER_STOP_WAIT);
    }
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

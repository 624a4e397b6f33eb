//! `rdg transmit --config FILE [--role-file FILE] [--member NAME] [--interface ADDR]
//! [--metrics-listen ADDR]`: send the configuration's `transmitter` channels (see
//! `rdg_infocast::transmitter`), and with `--metrics-listen` serve their counters at
//! `GET /metrics` (`rdg_carousel_*`, the same series an agent running the carousel exports).
//!
//! Which role file gates it:
//!
//! * neither `--role-file` nor `--member`: no gate, always sending (a standalone carousel);
//! * `--role-file FILE`: only while FILE says HS with a running lease (and, with `--member`,
//!   only when FILE is that member's);
//! * `--member NAME` alone: the configuration's `roleFile` (default `/run/rdg/<group>.role`),
//!   which is where `rdg agent --member NAME` writes — so a separate transmitter next to an
//!   agent needs only the two names it already has.
//!
//! SIGTERM/SIGINT stop it (exit 0); configuration problems exit 2, each with its field path;
//! a socket or the metrics address that cannot be opened exits 1.

use rdg_infocast::{CarouselMetrics, GateMode, TransmitError, TransmitOptions, Transmitter};
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

/// Arguments of `rdg transmit`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The group configuration (YAML); its `transmitter` channels are sent.
    #[arg(long)]
    config: PathBuf,
    /// Send only while this role file says HS with a running lease.
    #[arg(long)]
    role_file: Option<PathBuf>,
    /// This member's name: the role file must be its own. Without --role-file, the
    /// configuration's roleFile is used.
    #[arg(long)]
    member: Option<String>,
    /// Local address to send from (for IPv4 multicast also the outgoing interface); default:
    /// the routing table's choice.
    #[arg(long)]
    interface: Option<IpAddr>,
    /// Serve the carousel's Prometheus metrics at GET /metrics on this address (e.g.
    /// 0.0.0.0:9036); default: no metrics endpoint.
    #[arg(long)]
    metrics_listen: Option<SocketAddr>,
}

/// Runs the transmitter until SIGTERM/SIGINT.
pub fn run(args: &Args) -> ExitCode {
    crate::logging::init();
    let Some(cfg) = super::load_config(&args.config) else {
        return ExitCode::from(2);
    };
    let Some(tx) = cfg.transmitter.clone() else {
        eprintln!(
            "{}: transmitter: missing; there are no channels to send",
            args.config.display()
        );
        return ExitCode::from(2);
    };
    if let Some(m) = &args.member {
        if !cfg.is_standalone() && cfg.member(m).is_none() {
            eprintln!(
                "{}: members: no member named {m:?} (--member)",
                args.config.display()
            );
            return ExitCode::from(2);
        }
    }
    let gate = match (&args.role_file, &args.member) {
        (None, None) => GateMode::Always,
        (Some(path), member) => GateMode::RoleFile {
            path: path.clone(),
            member: member.clone(),
        },
        (None, Some(member)) => GateMode::RoleFile {
            path: cfg.role_file_path().into(),
            member: Some(member.clone()),
        },
    };
    let metrics = args.metrics_listen.map(|_| CarouselMetrics::default());
    let opts = TransmitOptions {
        gate,
        interface: args.interface,
        metrics: metrics.clone(),
    };
    let rt = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("rdg transmit: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    rt.block_on(async {
        if let (Some(addr), Some(m)) = (args.metrics_listen, &metrics) {
            let listener = match tokio::net::TcpListener::bind(addr).await {
                Ok(l) => l,
                Err(e) => {
                    eprintln!("rdg transmit: --metrics-listen: cannot listen on {addr}: {e}");
                    return ExitCode::FAILURE;
                }
            };
            tracing::info!("serving the carousel metrics at http://{addr}/metrics");
            tokio::spawn(rdg_agent::status::serve_metrics(
                listener,
                Arc::new(m.registry()),
            ));
        }
        let transmitter = match Transmitter::start(&tx, &opts) {
            Ok(t) => t,
            Err(e) => return exit_for(&e),
        };
        super::stop_signal().await;
        tracing::info!("stopping the transmitter");
        drop(transmitter);
        ExitCode::SUCCESS
    })
}

/// Reports `e` and picks the exit status: 2 for configuration problems, 1 otherwise.
pub fn exit_for(e: &TransmitError) -> ExitCode {
    eprintln!("rdg transmit: {e}");
    match e {
        TransmitError::Config { .. } => ExitCode::from(2),
        _ => ExitCode::FAILURE,
    }
}

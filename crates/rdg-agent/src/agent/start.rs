//! Start-up wiring: every check that can fail comes first, before anything is announced; then
//! the tasks around the loop (datagram receivers, net check, status endpoint, notifier), the
//! node, the first role file and the first step.

use super::{Agent, AgentError, AgentOptions, Inputs};
use crate::auth::load_keys;
use crate::clock::monotonic;
use crate::metrics::Metrics;
use crate::net_check::{NetChecker, Pace};
use crate::notify::Notifier;
use crate::role_file::{RoleFileError, RoleRecord};
use crate::role_writer::RoleWriter;
use crate::status::{HotHistory, Request};
use crate::transport::Transport;
use crate::vip::VipManager;
use rdg_core::State;
use rdg_core::election::{Input, Node, Params};
use rdg_core::wire::ReplayGuard;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{mpsc, watch};

/// Opens everything one member needs, writes its first role file (SS) and takes the node's
/// first step; the agent is then ready for its loop.
pub(super) async fn start(opts: &AgentOptions) -> Result<(Agent, Inputs), AgentError> {
    let cfg = &opts.config;
    let params = Params::from_config(cfg, &opts.member)?;
    let keys = load_keys(cfg)?;
    let metrics = Arc::new(Metrics::with_carousel(opts.carousel_metrics.as_ref()));
    metrics.auth_keys.set(keys.len() as i64);
    let standalone = cfg.is_standalone();

    // Start-up checks that can fail come first, before anything is announced.
    let transport = if standalone {
        tracing::warn!(
            member = %opts.member,
            "group name is empty: running standalone, always hot, no heartbeats"
        );
        None
    } else {
        Some(Transport::open(cfg, &opts.member)?)
    };
    // The net check first: without CAP_NET_RAW its error is the one that says what the member
    // could not do (never take over safely), and names the capability.
    let (net_tx, net) = mpsc::channel::<bool>(4);
    let (net_urgent, urgent_rx) = watch::channel(false);
    if !standalone && !cfg.net_check.targets.is_empty() {
        let checker = NetChecker::open(cfg.net_check.targets.clone(), cfg.net_check.timeout.get())?;
        let pace = Pace::of(cfg);
        tokio::spawn(checker.run(pace, urgent_rx, net_tx, Arc::clone(&metrics)));
    }
    let vips = if standalone {
        None
    } else {
        VipManager::open(cfg, &opts.member, Arc::clone(&metrics))?
    };
    let listener = tokio::net::TcpListener::bind(opts.status_listen)
        .await
        .map_err(|source| AgentError::Status {
            addr: opts.status_listen,
            source,
        })?;
    let (req_tx, requests) = mpsc::channel::<Request>(16);
    tokio::spawn(crate::status::serve(
        listener,
        req_tx,
        Arc::clone(&metrics),
        opts.switchover_token.clone(),
    ));
    let notifier = match &cfg.notify {
        Some(n) => Notifier::from_config(n, &cfg.name, &opts.member, Arc::clone(&metrics))?,
        None => Notifier::disabled(),
    };

    let now = monotonic();
    let node = Node::new(params.clone(), incarnation(), now);
    let mut agent = Agent {
        node,
        written: None,
        replay: ReplayGuard::new(params.timeout),
        keys,
        transport,
        metrics,
        notifier,
        role: RoleWriter::new(&opts.role_file).map_err(|source| {
            AgentError::RoleFile(RoleFileError::Write {
                path: opts.role_file.clone(),
                source,
            })
        })?,
        cfg: opts.config.clone(),
        config_path: opts.config_path.clone(),
        stopped: false,
        vips,
        vip_attempt: Duration::ZERO,
        vip_refresh: Duration::ZERO,
        hot_history: HotHistory::default(),
        standby_after_hot: None,
        net_urgent,
    };
    if let Some(v) = agent.vips.as_mut() {
        v.remove_leftovers().await;
    }
    tracing::info!(
        group = %cfg.name,
        member = %opts.member,
        priority = params.priorities[params.me],
        role_file = %opts.role_file.display(),
        status = %opts.status_listen,
        "agent started"
    );
    warn_unless_tmpfs(&opts.role_file);
    // A member that cannot write its role file can never run the work: say so now.
    agent.role.write_now(&RoleRecord {
        member: opts.member.clone(),
        role: State::SS,
        epoch: 0,
        lease_until_monotonic_ms: 0,
    })?;
    agent.step(now, Input::Tick).await;
    let content = opts.content.clone().map(|watch| {
        let (tx, rx) = mpsc::channel(4);
        watch.spawn(tx);
        rx
    });
    let inputs = Inputs {
        content,
        net,
        requests,
        hangups: opts
            .config_path
            .is_some()
            .then(super::reload::hangups)
            .flatten(),
    };
    Ok((agent, inputs))
}

/// A hot member renews its role file every heartbeat: say so when a disk file system holds it.
fn warn_unless_tmpfs(role_file: &Path) {
    match crate::role_file::on_tmpfs(role_file) {
        Ok(true) => {}
        Ok(false) => tracing::warn!(
            role_file = %role_file.display(),
            "the role file is not on tmpfs: a hot member renews it every heartbeat, and on a \
             disk file system a write can stall for tens of milliseconds on a busy host and let \
             the lease lapse for a moment; put it under /run (tmpfs on systemd hosts) or \
             /dev/shm"
        ),
        Err(e) => tracing::warn!(
            role_file = %role_file.display(),
            error = %e,
            "cannot tell which file system holds the role file"
        ),
    }
}

/// A process-unique incarnation that grows across restarts (wall-clock nanoseconds), so peers'
/// replay guards accept a restarted member at once.
fn incarnation() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or_else(|_| rand::random())
}

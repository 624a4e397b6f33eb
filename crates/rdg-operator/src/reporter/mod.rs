//! Kubernetes mode of the agent: a reporter that mirrors this member's live state into its
//! `RedundantGroup` — it server-side-applies its own entry of `status.members` (field manager
//! `rdg-member-<member>`), labels its pod `rdg.infocast.io/role=hot|standby`, publishes Events
//! on transitions, passes a pending switchover to its agent, and keeps a copy of its agent's
//! `/status` and `/metrics` in a ConfigMap for support bundles.
//!
//! It only talks to the agent through the agent's local HTTP endpoint and runs on its own
//! thread and runtime ([`ReporterThread`]), so nothing it does — a slow or unreachable API
//! server included — can delay heartbeats or failover. Everything is best-effort: rate-limited,
//! coalesced, retried with back-off, logged, never fatal.
//!
//! One concept per file: [`env`](mod@env) (the environment contract), [`agent_client`] (the local
//! endpoint), [`entry`] (report → member entry, when to write), [`notices`] (Events for a
//! transition), [`switchover`] (when to hand over), [`snapshot`] (the agent report
//! ConfigMap), [`run`] (the I/O loops).

pub mod agent_client;
pub mod entry;
pub mod env;
#[cfg(test)]
mod fixtures;
pub mod notices;
pub mod run;
pub mod snapshot;
pub mod switchover;

pub use env::{EnvError, K8sEnv};
pub use run::{ReporterConfig, Tuning, field_manager, role_of};

use std::time::Duration;
use thiserror::Error;

/// The reporter could not start.
#[derive(Debug, Error)]
pub enum ReporterError {
    /// Its runtime or thread could not be created.
    #[error("cannot start the Kubernetes reporter: {0}")]
    Start(#[from] std::io::Error),
    /// No Kubernetes client configuration (in-cluster service account or kubeconfig).
    #[error("Kubernetes mode: no usable client configuration: {0}")]
    Client(#[from] kube::Error),
}

/// The reporter running on its own thread with its own current-thread runtime.
#[derive(Debug)]
pub struct ReporterThread {
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    done: std::sync::mpsc::Receiver<()>,
}

impl ReporterThread {
    /// Builds the Kubernetes client (in-cluster config, else kubeconfig) and starts the
    /// reporter. Errors only when the client configuration or the thread cannot be made; the
    /// API server is not contacted here.
    pub fn spawn(cfg: ReporterConfig) -> Result<ReporterThread, ReporterError> {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        // The client's background worker lives on this runtime, so build it there.
        let client = rt.block_on(kube::Client::try_default())?;
        let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
        let (done_tx, done) = std::sync::mpsc::channel();
        std::thread::Builder::new()
            .name("rdg-k8s-reporter".into())
            .spawn(move || {
                rt.block_on(run::run(client, cfg, async {
                    let _ = stop_rx.await;
                }));
                let _ = done_tx.send(());
            })?;
        Ok(ReporterThread {
            stop: Some(stop_tx),
            done,
        })
    }

    /// Stops the reporter, waiting at most `wait` for its loops to end. The thread is then
    /// left to tear its runtime down on its own (an API call in flight is abandoned): the
    /// process is ending, and joining it could only delay the exit.
    pub fn stop(mut self, wait: Duration) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
        if self.done.recv_timeout(wait).is_err() {
            tracing::warn!("the Kubernetes reporter did not stop in time; leaving it");
        }
    }
}

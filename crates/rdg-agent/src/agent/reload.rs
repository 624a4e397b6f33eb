//! SIGHUP: the agent re-reads its configuration file and takes up a new `auth` key list, so the
//! group's HMAC key can be rotated member by member without a restart or a lost heartbeat.
//! Everything else in the file is read only at start; a change to it is reported, not applied.

use super::Agent;
use crate::auth::load_keys;
use crate::metrics::ResultLabels;
use rdg_core::config::GroupConfig;
use tokio::signal::unix::{Signal, SignalKind, signal};

/// The SIGHUP stream, or None (logged) when it cannot be installed.
pub(super) fn hangups() -> Option<Signal> {
    match signal(SignalKind::hangup()) {
        Ok(s) => Some(s),
        Err(e) => {
            tracing::warn!(error = %e, "cannot handle SIGHUP: keys are read only at start");
            None
        }
    }
}

/// The next SIGHUP; never completes without a stream.
pub(super) async fn next_hangup(hup: &mut Option<Signal>) -> Option<()> {
    match hup {
        Some(s) => s.recv().await,
        None => std::future::pending().await,
    }
}

impl Agent {
    /// Re-reads the configuration file and swaps in its keys. A file that does not load, keys
    /// that cannot be read, or turning authentication on or off (which needs every member at
    /// once) leave the current keys in place, with the reason logged.
    pub(super) fn reload(&mut self) {
        let outcome = self.try_reload();
        let result = if outcome.is_ok() { "ok" } else { "failed" };
        self.metrics
            .reloads
            .get_or_create(&ResultLabels {
                result: result.to_string(),
            })
            .inc();
        match outcome {
            Ok(keys) => tracing::info!(keys, "SIGHUP: configuration re-read, auth keys in use"),
            Err(why) => tracing::error!("SIGHUP: the current keys stay: {why}"),
        }
    }

    fn try_reload(&mut self) -> Result<usize, String> {
        let Some(path) = self.config_path.clone() else {
            return Err("this agent was not started from a configuration file".to_string());
        };
        let new = GroupConfig::load(&path).map_err(|e| format!("{}: {e}", path.display()))?;
        let keys = load_keys(&new).map_err(|e| e.to_string())?;
        if keys.is_empty() != self.keys.is_empty() {
            return Err(
                "turning heartbeat authentication on or off needs every member restarted; \
                 rotate keys with auth.keyFiles instead"
                    .to_string(),
            );
        }
        let unchanged = GroupConfig {
            auth: self.cfg.auth.clone(),
            ..new.clone()
        };
        if unchanged != self.cfg {
            tracing::warn!(
                "SIGHUP: {} changed beyond auth; only the keys are taken up, the rest needs a restart",
                path.display()
            );
        }
        self.cfg.auth = new.auth;
        self.keys = keys;
        self.metrics.auth_keys.set(self.keys.len() as i64);
        Ok(self.keys.len())
    }
}

//! Looking at the lab: role files, the agents' HTTP endpoints, waiting for conditions and
//! watching that something does not happen, with every member's log on failure.

use crate::http;
use crate::lab::Lab;
use crate::netns::in_netns;
use crate::role::{RoleRecord, monotonic_ms};
use serde_json::Value;
use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

/// How often conditions are polled.
pub const POLL: Duration = Duration::from_millis(10);
/// Where every agent's status endpoint listens, inside its own namespace.
pub(crate) const STATUS_ADDR: &str = "127.0.0.1:9035";
/// Lines of each log shown when a test fails.
const LOG_TAIL: usize = 40;

impl Lab {
    /// What `member`'s role file says (`None`: missing or not yet written).
    pub fn role(&self, member: &str) -> Option<RoleRecord> {
        RoleRecord::read(self.role_file(member))
    }

    /// The role in `member`'s role file (`"HS"`, `"SBS"`, ...), `None` when there is none.
    pub fn role_name(&self, member: &str) -> Option<String> {
        self.role(member).map(|r| r.role)
    }

    /// True when `member`'s role file says HS with a lease still running.
    pub fn is_hot(&self, member: &str) -> bool {
        self.role(member)
            .is_some_and(|r| r.hot_with_lease(monotonic_ms()))
    }

    /// Members whose role files say HS with a running lease, in configuration order.
    pub fn hot_members(&self) -> Vec<String> {
        self.members
            .iter()
            .filter(|m| self.is_hot(&m.name))
            .map(|m| m.name.clone())
            .collect()
    }

    /// `GET path` on `member`'s status endpoint: (status code, body).
    pub fn http_get(&self, member: &str, path: &str) -> Result<http::Response, String> {
        let addr: SocketAddr = STATUS_ADDR.parse().expect("a socket address");
        let path = path.to_string();
        in_netns(self.netns(member), move || {
            http::get(addr, &path, Duration::from_secs(2))
        })?
    }

    /// `member`'s `/status`, parsed.
    pub fn status(&self, member: &str) -> Result<Value, String> {
        let r = self.http_get(member, "/status")?;
        if r.status != 200 {
            return Err(format!("{member} /status: HTTP {}: {}", r.status, r.body));
        }
        serde_json::from_str(&r.body).map_err(|e| format!("{member} /status: {e}: {}", r.body))
    }

    /// `member`'s `/metrics` text.
    pub fn metrics(&self, member: &str) -> Result<String, String> {
        let r = self.http_get(member, "/metrics")?;
        if r.status != 200 {
            return Err(format!("{member} /metrics: HTTP {}: {}", r.status, r.body));
        }
        Ok(r.body)
    }

    /// `rdg status --config FILE --json` run inside `member`'s namespace: the group as the
    /// members answer over the network.
    pub fn rdg_status(&self, member: &str) -> Result<Value, String> {
        let rdg = self.rdg.to_string_lossy().into_owned();
        let config = self.config_file(member).to_string_lossy().into_owned();
        let out = crate::shell::run(
            "ip",
            &[
                "netns",
                "exec",
                self.netns(member),
                &rdg,
                "status",
                "--config",
                &config,
                "--json",
            ],
            None,
        )?;
        serde_json::from_str(&out).map_err(|e| format!("rdg status --json: {e}: {out}"))
    }

    /// The status code of `member`'s `/healthz`.
    pub fn healthz(&self, member: &str) -> Result<u16, String> {
        self.http_get(member, "/healthz").map(|r| r.status)
    }

    /// Polls `condition` every 10 ms until it holds and returns how long that took; after
    /// `timeout` panics with `what` and the tail of every log.
    pub fn wait_until(
        &self,
        timeout: Duration,
        what: &str,
        condition: impl FnMut() -> bool,
    ) -> Duration {
        self.poll_until(timeout, condition).unwrap_or_else(|| {
            self.fail(&format!("timed out after {timeout:?} waiting for {what}"))
        })
    }

    /// Polls `condition` every 10 ms until it holds (`Some(how long it took)`) or `timeout`
    /// passes (`None`): [`Lab::wait_until`] without the panic, for programs that measure.
    pub fn poll_until(
        &self,
        timeout: Duration,
        mut condition: impl FnMut() -> bool,
    ) -> Option<Duration> {
        let start = Instant::now();
        loop {
            if condition() {
                return Some(start.elapsed());
            }
            if start.elapsed() >= timeout {
                return None;
            }
            std::thread::sleep(POLL);
        }
    }

    /// Checks `invariant` every 10 ms for the whole `period`; on the first violation panics
    /// with `what`, the violation and the tail of every log. Returns the number of checks.
    pub fn observe(
        &self,
        period: Duration,
        what: &str,
        mut invariant: impl FnMut() -> Result<(), String>,
    ) -> u64 {
        let start = Instant::now();
        let mut checks = 0;
        loop {
            checks += 1;
            if let Err(violation) = invariant() {
                self.fail(&format!(
                    "{what}: violated after {:?}: {violation}",
                    start.elapsed()
                ));
            }
            if start.elapsed() >= period {
                return checks;
            }
            std::thread::sleep(POLL);
        }
    }

    /// Waits until `member`'s role file says `role` and its `/status` reports the same state.
    pub fn wait_role(&self, member: &str, role: &str, timeout: Duration) -> Duration {
        self.wait_until(
            timeout,
            &format!("{member}'s role file and /status to say {role}"),
            || {
                self.role_name(member).as_deref() == Some(role)
                    && self
                        .status(member)
                        .is_ok_and(|s| s["state"].as_str() == Some(role))
            },
        )
    }

    /// Panics with `message` and the tail of every log (printed once per lab).
    pub fn fail(&self, message: &str) -> ! {
        let dump = if self.dumped.swap(true, Ordering::SeqCst) {
            String::new()
        } else {
            self.dump()
        };
        panic!("{message}\n{dump}")
    }

    /// The tail of every log and every role file, for failure reports.
    pub fn dump(&self) -> String {
        let mut out = format!(
            "==== rdg-e2e lab {} ({}), monotonic now {} ms ====\n",
            self.id,
            self.dir.display(),
            monotonic_ms()
        );
        for m in &self.members {
            let role =
                std::fs::read_to_string(&m.role_file).unwrap_or_else(|_| "(no role file)".into());
            out.push_str(&format!("---- {} role file: {}\n", m.name, role.trim()));
        }
        for (label, path) in self.process_logs() {
            let text = std::fs::read_to_string(&path).unwrap_or_default();
            let lines: Vec<&str> = text.lines().collect();
            let tail = &lines[lines.len().saturating_sub(LOG_TAIL)..];
            out.push_str(&format!(
                "---- {label}: last {} of {} lines of {}\n",
                tail.len(),
                lines.len(),
                path.display()
            ));
            for line in tail {
                out.push_str(line);
                out.push('\n');
            }
        }
        out
    }
}

/// The entry for `name` in the `members` array of a `/status` document.
pub fn status_member<'a>(status: &'a Value, name: &str) -> Option<&'a Value> {
    status["members"]
        .as_array()?
        .iter()
        .find(|m| m["name"].as_str() == Some(name))
}

/// The entry for network `network` of `name` in a `/status` document.
pub fn status_member_network<'a>(
    status: &'a Value,
    name: &str,
    network: &str,
) -> Option<&'a Value> {
    status_member(status, name)?["networks"]
        .as_array()?
        .iter()
        .find(|n| n["name"].as_str() == Some(network))
}

//! A group of real `rdg agent` processes on this host's loopback, for `rdg demo --real` and the
//! root crate's integration tests: unicast heartbeats on two networks of 127.x addresses, so no
//! root is needed. Member `i` (0-based) of group index `net` has 127.net.1.(i+1) and
//! 127.net.2.(i+1), and serves its status endpoint on 127.net.3.(i+1):9035, so groups with
//! different indexes never share an address.
//!
//! The end-to-end suite's `Lab` (in `e2e/`) is the other harness: agents in network namespaces
//! with multicast, real links and net checks, as root.

use crate::clock::monotonic_ms;
use crate::role_file::{self, RoleRecord};
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use rdg_core::State;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

/// The heartbeat port every loopback group uses (the addresses tell groups apart).
const HEARTBEAT_PORT: u16 = 18035;
/// The status port of every member (on its own 127.net.3.x address).
const STATUS_PORT: u16 = 9035;
/// How many lines of each agent's log [`LocalGroup::logs`] shows.
const LOG_TAIL: usize = 15;

/// Where groups keep their files by default: tmpfs (`/dev/shm`) when there is one, as a real
/// host's `/run` is, so a busy disk cannot stall a hot member's role-file renewals; else the
/// temp dir.
pub fn scratch_dir() -> PathBuf {
    let shm = Path::new("/dev/shm");
    if shm.is_dir() {
        shm.to_path_buf()
    } else {
        std::env::temp_dir()
    }
}

/// How to set up a [`LocalGroup`]; made by [`LocalGroup::builder`].
#[derive(Debug, Clone)]
pub struct LocalGroupBuilder {
    rdg: PathBuf,
    name: String,
    net: u8,
    members: Vec<(String, u16)>,
    networks: [String; 2],
    interval: Duration,
    timeout: Duration,
    election: Duration,
    extra: String,
    dir: Option<PathBuf>,
    poll: Duration,
}

impl LocalGroupBuilder {
    /// Adds a member with its priority (members get addresses in the order they are added).
    pub fn member(mut self, name: &str, priority: u16) -> Self {
        self.members.push((name.to_string(), priority));
        self
    }

    /// Names of the two networks (default `n1`, `n2`).
    pub fn networks(mut self, first: &str, second: &str) -> Self {
        self.networks = [first.to_string(), second.to_string()];
        self
    }

    /// Heartbeat interval and timeout (default 50 ms and 250 ms).
    pub fn heartbeat(mut self, interval: Duration, timeout: Duration) -> Self {
        self.interval = interval;
        self.timeout = timeout;
        self
    }

    /// The election timeout (default 500 ms).
    pub fn election(mut self, election: Duration) -> Self {
        self.election = election;
        self
    }

    /// YAML appended to the configuration as is (top-level keys such as `auth:` or `notify:`).
    pub fn extra_yaml(mut self, yaml: &str) -> Self {
        self.extra.push_str(yaml);
        self
    }

    /// The directory for the configuration, role files and logs (default: one named after the
    /// group and this process in [`scratch_dir`]). Emptied first, removed on drop.
    pub fn dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.dir = Some(dir.into());
        self
    }

    /// How often [`LocalGroup::poll_until`] checks its condition (default 10 ms).
    pub fn poll_every(mut self, every: Duration) -> Self {
        self.poll = every;
        self
    }

    /// Creates the directory and writes the group's configuration; starts no agent.
    pub fn build(self) -> std::io::Result<LocalGroup> {
        let dir = self.dir.unwrap_or_else(|| {
            scratch_dir().join(format!("rdg-group-{}-{}", self.name, std::process::id()))
        });
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir)?;
        let [n1, n2] = &self.networks;
        let ms = |d: Duration| d.as_millis();
        let mut yaml = format!(
            "name: {}\nheartbeat: {{interval: {}ms, timeout: {}ms, port: {HEARTBEAT_PORT}}}\n\
             networks: [{{name: {n1}}}, {{name: {n2}}}]\ntimeouts: {{election: {}ms}}\nmembers:\n",
            self.name,
            ms(self.interval),
            ms(self.timeout),
            ms(self.election),
        );
        let net = self.net;
        for (i, (name, prio)) in self.members.iter().enumerate() {
            yaml.push_str(&format!(
                "  - {{name: {name}, priority: {prio}, addresses: {{{n1}: 127.{net}.1.{n}, {n2}: 127.{net}.2.{n}}}}}\n",
                n = i + 1
            ));
        }
        yaml.push_str(&self.extra);
        let config = dir.join("group.yaml");
        let group = LocalGroup {
            rdg: self.rdg,
            net,
            children: self.members.iter().map(|_| None).collect(),
            names: self.members.into_iter().map(|(n, _)| n).collect(),
            dir,
            config,
            poll: self.poll,
        };
        std::fs::write(&group.config, yaml)?;
        Ok(group)
    }
}

/// A loopback group: its configuration, and the agents it started.
///
/// Dropping it kills every agent still running (after SIGCONT, in case one is stopped) and
/// removes its directory, which is kept when dropped during a panic, for the logs.
#[derive(Debug)]
pub struct LocalGroup {
    rdg: PathBuf,
    net: u8,
    dir: PathBuf,
    config: PathBuf,
    names: Vec<String>,
    children: Vec<Option<Child>>,
    poll: Duration,
}

impl LocalGroup {
    /// A group `name` with index `net` (the second octet of its addresses), run by the `rdg`
    /// binary at `rdg`; add members, then [`LocalGroupBuilder::build`].
    pub fn builder(rdg: impl Into<PathBuf>, name: &str, net: u8) -> LocalGroupBuilder {
        LocalGroupBuilder {
            rdg: rdg.into(),
            name: name.to_string(),
            net,
            members: Vec::new(),
            networks: ["n1".into(), "n2".into()],
            interval: Duration::from_millis(50),
            timeout: Duration::from_millis(250),
            election: Duration::from_millis(500),
            extra: String::new(),
            dir: None,
            poll: Duration::from_millis(10),
        }
    }

    /// The directory holding the configuration, role files and logs.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The group's configuration file.
    pub fn config_path(&self) -> &Path {
        &self.config
    }

    /// The members' names, in configuration order.
    pub fn names(&self) -> &[String] {
        &self.names
    }

    fn idx(&self, name: &str) -> usize {
        self.names
            .iter()
            .position(|n| n == name)
            .unwrap_or_else(|| panic!("{name} is not a member of this group"))
    }

    /// `name`'s role file.
    pub fn role_path(&self, name: &str) -> PathBuf {
        self.dir.join(format!("{name}.role"))
    }

    /// `name`'s agent log (its stderr, from its last start).
    pub fn log_path(&self, name: &str) -> PathBuf {
        self.dir.join(format!("{name}.log"))
    }

    /// Where `name` serves `/status`, `/metrics` and the operator's commands.
    pub fn status_addr(&self, name: &str) -> SocketAddr {
        let ip = std::net::Ipv4Addr::new(127, self.net, 3, self.idx(name) as u8 + 1);
        SocketAddr::from((ip, STATUS_PORT))
    }

    /// Starts `name`'s agent, its stderr in its log.
    pub fn start(&mut self, name: &str) -> std::io::Result<()> {
        let log = std::fs::File::create(self.log_path(name))?;
        let child = Command::new(&self.rdg)
            .args(["agent", "--member", name, "--config"])
            .arg(&self.config)
            .arg("--role-file")
            .arg(self.role_path(name))
            .args(["--status-listen", &self.status_addr(name).to_string()])
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()?;
        let i = self.idx(name);
        self.children[i] = Some(child);
        Ok(())
    }

    /// The pid of `name`'s agent, while this group holds it (started and not yet reaped).
    pub fn pid(&self, name: &str) -> Option<u32> {
        self.children[self.idx(name)].as_ref().map(Child::id)
    }

    /// Sends `signal` to `name`'s agent.
    pub fn signal(&self, name: &str, signal: Signal) -> std::io::Result<()> {
        let pid = self
            .pid(name)
            .ok_or_else(|| std::io::Error::other(format!("{name} is not running")))?;
        kill(Pid::from_raw(pid as i32), signal)?;
        Ok(())
    }

    /// `kill -9` of `name`'s agent; reaps it.
    pub fn kill9(&mut self, name: &str) -> std::io::Result<()> {
        let mut child = self.take(name)?;
        child.kill()?;
        child.wait()?;
        Ok(())
    }

    /// Waits for `name`'s agent to exit and reaps it.
    pub fn wait_exit(&mut self, name: &str) -> std::io::Result<ExitStatus> {
        self.take(name)?.wait()
    }

    /// Graceful stop: SIGTERM to `name`'s agent, then waits for it to exit.
    pub fn stop(&mut self, name: &str) -> std::io::Result<ExitStatus> {
        self.signal(name, Signal::SIGTERM)?;
        self.wait_exit(name)
    }

    fn take(&mut self, name: &str) -> std::io::Result<Child> {
        let i = self.idx(name);
        self.children[i]
            .take()
            .ok_or_else(|| std::io::Error::other(format!("{name} is not running")))
    }

    /// `name`'s role file (None while missing or unreadable).
    pub fn role(&self, name: &str) -> Option<RoleRecord> {
        role_file::read(&self.role_path(name)).ok().flatten()
    }

    /// True when `name`'s role file says `state`.
    pub fn role_is(&self, name: &str, state: State) -> bool {
        self.role(name).is_some_and(|r| r.role == state)
    }

    /// Members whose role file says HS with a lease that has not run out.
    pub fn hot_now(&self) -> Vec<String> {
        let now = monotonic_ms();
        self.names
            .iter()
            .filter(|n| self.role(n).is_some_and(|r| r.may_run(now)))
            .cloned()
            .collect()
    }

    /// The last lines of every member's log, each under a `--- name ---` header.
    pub fn logs(&self) -> String {
        let mut out = String::new();
        for n in &self.names {
            let text = std::fs::read_to_string(self.log_path(n)).unwrap_or_default();
            let tail: Vec<&str> = text.lines().rev().take(LOG_TAIL).collect();
            out.push_str(&format!("--- {n} ---\n"));
            for l in tail.iter().rev() {
                out.push_str(l);
                out.push('\n');
            }
        }
        out
    }

    /// Checks `cond` at the builder's poll interval until it holds (`Some(how long it took)`)
    /// or `timeout` passes (`None`).
    pub fn poll_until(
        &self,
        timeout: Duration,
        mut cond: impl FnMut() -> bool,
    ) -> Option<Duration> {
        let start = Instant::now();
        loop {
            if cond() {
                return Some(start.elapsed());
            }
            if start.elapsed() >= timeout {
                return None;
            }
            std::thread::sleep(self.poll);
        }
    }

    /// [`LocalGroup::poll_until`] for tests: panics with the agents' logs if `what` does not
    /// come to hold within `timeout`.
    pub fn wait_until(
        &self,
        timeout: Duration,
        what: &str,
        cond: impl FnMut() -> bool,
    ) -> Duration {
        self.poll_until(timeout, cond).unwrap_or_else(|| {
            panic!(
                "timed out after {timeout:?} waiting for {what}\n{}",
                self.logs()
            )
        })
    }
}

impl Drop for LocalGroup {
    fn drop(&mut self) {
        for c in self.children.iter_mut().flatten() {
            let _ = kill(Pid::from_raw(c.id() as i32), Signal::SIGCONT);
            let _ = c.kill();
            let _ = c.wait();
        }
        if !std::thread::panicking() {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rdg_core::config::GroupConfig;

    #[test]
    fn writes_a_valid_configuration_with_per_member_addresses() {
        let dir = std::env::temp_dir().join(format!("rdg-local-group-{}", std::process::id()));
        let g = LocalGroup::builder("/nonexistent/rdg", "lg", 77)
            .member("x", 100)
            .member("y", 0)
            .networks("primary", "secondary")
            .election(Duration::from_millis(700))
            .extra_yaml("preempt: true\n")
            .dir(&dir)
            .build()
            .unwrap();
        let cfg = GroupConfig::load(g.config_path()).unwrap();
        assert_eq!(cfg.name, "lg");
        assert!(cfg.preempt);
        assert_eq!(cfg.heartbeat.port, HEARTBEAT_PORT);
        let y = &cfg.members[1];
        assert_eq!((y.name.as_str(), y.priority), ("y", 0));
        assert_eq!(y.addresses["primary"].to_string(), "127.77.1.2");
        assert_eq!(y.addresses["secondary"].to_string(), "127.77.2.2");
        assert_eq!(g.status_addr("y").to_string(), "127.77.3.2:9035");
        assert_eq!(g.role_path("x"), dir.join("x.role"));
        assert!(g.role("x").is_none() && g.hot_now().is_empty());
        drop(g);
        assert!(!dir.exists(), "dropping the group removes its directory");
    }
}

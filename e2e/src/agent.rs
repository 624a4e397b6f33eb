//! Processes in the lab: the members' agents and helpers (such as `rdg gate`), and signals.

use crate::config::Net;
use crate::lab::{Lab, Process};
use nix::sys::signal::{Signal, kill, killpg};
use nix::unistd::Pid;
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

impl Lab {
    /// Starts `member`'s agent: `ip netns exec NS rdg agent --config FILE --member NAME`, its
    /// stdout and stderr appended to its log. Panics if it is already running.
    pub fn start(&self, member: &str) {
        self.start_with_env(member, &[]);
    }

    /// [`Lab::start`] with extra environment variables for the agent (Kubernetes mode's
    /// `RDG_K8S_*` and `KUBECONFIG`, say).
    pub fn start_with_env(&self, member: &str, env: &[(String, String)]) {
        let slot = self.slot(member);
        let mut agents = self.agents.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(old) = agents.get_mut(member) {
            assert!(
                !matches!(old.child.try_wait(), Ok(None)),
                "{member}'s agent is already running"
            );
        }
        let mut log = append(&slot.log);
        let _ = writeln!(log, "=== rdg-e2e: starting the agent of {member} ===");
        let mut command = Command::new("ip");
        command
            .args(["netns", "exec", &slot.netns])
            .arg(&self.rdg)
            .args(["agent", "--config"])
            .arg(&slot.config)
            .args(["--member", member])
            .envs(env.iter().map(|(k, v)| (k, v)));
        if self.config.carousel.is_some() {
            // The carousel leaves by the primary network, where the client listens.
            let address = self.address(member, Net::Primary).to_string();
            command.args(["--transmit-interface", &address]);
        }
        let child = command
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("duplicate the log file"))
            .stderr(log)
            .process_group(0)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start the agent of {member}: {e}"));
        agents.insert(
            member.to_string(),
            Process {
                label: member.to_string(),
                child,
                log: slot.log.clone(),
            },
        );
    }

    /// Starts `argv` inside the namespace `netns` as a helper labelled `label`: stderr goes to
    /// `<label>.log` in the lab directory, stdout to `stdout` (appended) or the same log.
    /// The lab kills it when dropped. Returns its pid.
    pub fn spawn_in(&self, netns: &str, label: &str, argv: &[&str], stdout: Option<&Path>) -> Pid {
        let log_path = self.dir.join(format!("{label}.log"));
        let log = append(&log_path);
        let out = match stdout {
            Some(path) => append(path),
            None => log.try_clone().expect("duplicate the log file"),
        };
        let (program, args) = argv.split_first().expect("a command to run");
        let child = Command::new("ip")
            .args(["netns", "exec", netns, program])
            .args(args)
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(log)
            .process_group(0)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {argv:?} in {netns}: {e}"));
        let pid = Pid::from_raw(child.id() as i32);
        self.helpers
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(Process {
                label: label.to_string(),
                child,
                log: log_path,
            });
        pid
    }

    /// The pid of `member`'s running agent, if any.
    pub fn pid(&self, member: &str) -> Option<Pid> {
        let mut agents = self.agents.lock().unwrap_or_else(|p| p.into_inner());
        let agent = agents.get_mut(member)?;
        matches!(agent.child.try_wait(), Ok(None)).then(|| Pid::from_raw(agent.child.id() as i32))
    }

    /// True when `member`'s agent is running (also when stopped).
    pub fn is_running(&self, member: &str) -> bool {
        self.pid(member).is_some()
    }

    /// How `member`'s last agent exited, if it has.
    pub fn exit_status(&self, member: &str) -> Option<ExitStatus> {
        let mut agents = self.agents.lock().unwrap_or_else(|p| p.into_inner());
        agents.get_mut(member)?.child.try_wait().ok().flatten()
    }

    /// `kill -9` of `member`'s agent (after SIGCONT, in case it is stopped); reaps it.
    pub fn kill9(&self, member: &str) {
        let mut agents = self.agents.lock().unwrap_or_else(|p| p.into_inner());
        let agent = agents
            .get_mut(member)
            .unwrap_or_else(|| panic!("{member}'s agent was never started"));
        let pid = Pid::from_raw(agent.child.id() as i32);
        let _ = kill(pid, Signal::SIGKILL);
        let _ = kill(pid, Signal::SIGCONT);
        let _ = agent.child.wait();
    }

    /// Freezes `member`'s agent (SIGSTOP).
    pub fn sigstop(&self, member: &str) {
        self.signal(member, Signal::SIGSTOP);
    }

    /// Resumes `member`'s agent (SIGCONT).
    pub fn sigcont(&self, member: &str) {
        self.signal(member, Signal::SIGCONT);
    }

    /// Asks `member`'s agent to stop gracefully (SIGTERM).
    pub fn sigterm(&self, member: &str) {
        self.signal(member, Signal::SIGTERM);
    }

    /// Waits up to `timeout` for `member`'s agent to exit; its exit status, or `None`.
    pub fn wait_exit(&self, member: &str, timeout: Duration) -> Option<ExitStatus> {
        let end = Instant::now() + timeout;
        loop {
            if let Some(status) = self.exit_status(member) {
                return Some(status);
            }
            if Instant::now() >= end {
                return None;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    fn signal(&self, member: &str, signal: Signal) {
        let pid = self
            .pid(member)
            .unwrap_or_else(|| panic!("{member}'s agent is not running (cannot send {signal})"));
        kill(pid, signal).unwrap_or_else(|e| panic!("{signal} to {member} ({pid}): {e}"));
    }

    /// SIGKILLs every process the lab started (their whole process groups) and reaps them.
    pub(crate) fn kill_all_processes(&self) {
        let mut agents = self.agents.lock().unwrap_or_else(|p| p.into_inner());
        let mut helpers = self.helpers.lock().unwrap_or_else(|p| p.into_inner());
        for process in agents.values_mut().chain(helpers.iter_mut()) {
            // A reaped child's pid may belong to someone else by now: signal only live ones
            // (what is left of their groups dies with the lab's namespaces).
            if !matches!(process.child.try_wait(), Ok(None)) {
                continue;
            }
            let pid = Pid::from_raw(process.child.id() as i32);
            for signal in [Signal::SIGKILL, Signal::SIGCONT] {
                let _ = killpg(pid, signal);
                let _ = kill(pid, signal);
            }
        }
        for process in agents.values_mut().chain(helpers.iter_mut()) {
            let _ = process.child.wait();
        }
    }

    /// The log files of every process started, labelled (agents first).
    pub(crate) fn process_logs(&self) -> Vec<(String, std::path::PathBuf)> {
        let mut logs: Vec<(String, std::path::PathBuf)> = self
            .members
            .iter()
            .map(|m| (m.name.clone(), m.log.clone()))
            .collect();
        let helpers = self.helpers.lock().unwrap_or_else(|p| p.into_inner());
        for h in helpers.iter() {
            if !logs.iter().any(|(_, path)| *path == h.log) {
                logs.push((h.label.clone(), h.log.clone()));
            }
        }
        logs
    }
}

fn append(path: &Path) -> File {
    OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .unwrap_or_else(|e| panic!("open {}: {e}", path.display()))
}

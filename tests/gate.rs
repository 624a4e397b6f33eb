//! `rdg gate` with real processes and signals: it runs the command only while the role file
//! says HS with a running CLOCK_MONOTONIC lease, and stops it on every other path.

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use rdg_agent::clock::monotonic_ms;
use rdg_agent::role_file::{self, RoleRecord};
use rdg_core::State;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

struct Gate {
    dir: PathBuf,
    child: Option<Child>,
}

impl Gate {
    /// A scratch directory with a role file path; the gate is not started yet.
    fn new(name: &str) -> Gate {
        let dir = std::env::temp_dir().join(format!("rdg-gate-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        Gate { dir, child: None }
    }

    fn role(&self) -> PathBuf {
        self.dir.join("g.role")
    }

    fn log(&self) -> PathBuf {
        self.dir.join("gate.log")
    }

    /// Waits until the gate's stderr contains `text`.
    fn wait_log(&self, text: &str, within: Duration) {
        wait_for(within, text, || {
            let log = std::fs::read_to_string(self.log()).ok()?;
            log.contains(text).then_some(())
        });
    }

    fn pid_file(&self) -> PathBuf {
        self.dir.join("pid")
    }

    fn write_role(&self, role: State, lease_ms_from_now: u64) {
        let rec = RoleRecord {
            member: "ics-a".into(),
            role,
            epoch: 1,
            lease_until_monotonic_ms: if role == State::HS {
                monotonic_ms() + lease_ms_from_now
            } else {
                0
            },
        };
        role_file::write(&self.role(), &rec).unwrap();
    }

    fn start(&mut self, grace: &str, script: &str) {
        let child = Command::new(env!("CARGO_BIN_EXE_rdg"))
            .args(["gate", "--role-file"])
            .arg(self.role())
            .args(["--grace", grace, "--poll", "10ms", "--", "sh", "-c", script])
            .current_dir(&self.dir)
            .stderr(Stdio::from(std::fs::File::create(self.log()).unwrap()))
            .spawn()
            .expect("rdg gate starts");
        self.child = Some(child);
    }

    /// The PID the command wrote, once it has started.
    fn command_pid(&self, within: Duration) -> i32 {
        wait_for(within, "the command to start", || {
            std::fs::read_to_string(self.pid_file())
                .ok()
                .and_then(|s| s.trim().parse().ok())
        })
    }

    /// Stops the gate with SIGTERM and returns its exit code and stderr.
    fn finish(&mut self) -> (Option<i32>, String) {
        let mut child = self.child.take().expect("gate running");
        kill(Pid::from_raw(child.id() as i32), Signal::SIGTERM).unwrap();
        let status = child.wait().unwrap();
        let log = std::fs::read_to_string(self.log()).unwrap_or_default();
        (status.code(), log)
    }
}

impl Drop for Gate {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
        // KEEP=1 keeps the scratch directory (role file, gate.log) for a look after a failure.
        if std::env::var_os("KEEP").is_none() {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}

fn wait_for<T>(within: Duration, what: &str, mut f: impl FnMut() -> Option<T>) -> T {
    let end = Instant::now() + within;
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(Instant::now() < end, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(5));
    }
}

fn alive(pid: i32) -> bool {
    Path::new(&format!("/proc/{pid}")).exists()
}

fn wait_gone(pid: i32, within: Duration) -> Duration {
    let t0 = Instant::now();
    wait_for(within, "the command to stop", || {
        (!alive(pid)).then_some(())
    });
    t0.elapsed()
}

const RUN: &str = "echo $$ > pid; exec sleep 1000";
const SECOND: Duration = Duration::from_secs(1);

#[test]
fn runs_while_hot_and_stops_on_demotion() {
    let mut g = Gate::new("demotion");
    g.write_role(State::HS, 60_000);
    g.start("2s", RUN);
    let pid = g.command_pid(5 * SECOND);
    assert!(alive(pid));
    g.write_role(State::SBS, 0);
    let took = wait_gone(pid, 2 * SECOND);
    assert!(
        took < Duration::from_millis(500),
        "stopped {took:?} after demotion"
    );
    let (code, err) = g.finish();
    assert_eq!(code, Some(0));
    assert!(err.contains("stopping sh: this member is SBS"), "{err}");
}

#[test]
fn lease_expiry_stops_the_command_without_any_role_change() {
    let mut g = Gate::new("lease");
    g.write_role(State::HS, 600);
    let lease_end = monotonic_ms() + 600;
    g.start("2s", RUN);
    let pid = g.command_pid(5 * SECOND);
    wait_gone(pid, 3 * SECOND);
    let stopped_at = monotonic_ms();
    assert!(
        stopped_at < lease_end + 200,
        "the command ran {} ms past the lease",
        stopped_at.saturating_sub(lease_end)
    );
    let (_, err) = g.finish();
    assert!(err.contains("the lease ran out"), "{err}");
}

#[test]
fn waits_for_a_role_file_and_stops_when_it_disappears() {
    let mut g = Gate::new("missing");
    g.start("2s", RUN);
    g.wait_log("not running sh: no role file", 5 * SECOND);
    assert!(!g.pid_file().exists(), "nothing runs without a role file");
    g.write_role(State::HS, 60_000);
    let pid = g.command_pid(5 * SECOND);
    std::fs::remove_file(g.role()).unwrap();
    wait_gone(pid, 2 * SECOND);
    let (_, err) = g.finish();
    assert!(err.contains("stopping sh: no role file"), "{err}");
}

#[test]
fn a_command_that_exits_while_hot_is_restarted_and_reported() {
    let mut g = Gate::new("crash");
    g.write_role(State::HS, 60_000);
    g.start("2s", "echo $$ >> pids; exit 3");
    let pids = wait_for(10 * SECOND, "three starts", || {
        let s = std::fs::read_to_string(g.dir.join("pids")).ok()?;
        let lines: Vec<String> = s.lines().map(str::to_string).collect();
        (lines.len() >= 3).then_some(lines)
    });
    assert_ne!(pids[0], pids[1], "each restart is a new process");
    let (_, err) = g.finish();
    assert!(err.contains("exited with status 3 while hot"), "{err}");
    assert!(
        err.contains("restarting in 200 ms"),
        "back-off doubles: {err}"
    );
}

#[test]
fn a_command_ignoring_sigterm_is_killed_after_the_grace() {
    let mut g = Gate::new("stubborn");
    g.write_role(State::HS, 60_000);
    g.start(
        "300ms",
        "trap '' TERM; echo $$ > pid; while :; do sleep 0.05; done",
    );
    let pid = g.command_pid(5 * SECOND);
    g.write_role(State::CS, 0);
    let took = wait_gone(pid, 3 * SECOND);
    assert!(
        took >= Duration::from_millis(250),
        "SIGTERM alone did not stop it: {took:?}"
    );
    let (_, err) = g.finish();
    assert!(err.contains("did not stop within 300 ms; SIGKILL"), "{err}");
}

#[test]
fn sigterm_to_the_gate_stops_the_command_and_exits_zero() {
    let mut g = Gate::new("sigterm");
    g.write_role(State::HS, 60_000);
    g.start("2s", RUN);
    let pid = g.command_pid(5 * SECOND);
    let (code, err) = g.finish();
    assert_eq!(code, Some(0), "{err}");
    assert!(!alive(pid), "the command is gone when the gate has exited");
    assert!(err.contains("the gate is stopping"), "{err}");
}

#[test]
fn a_command_that_cannot_start_exits_127() {
    let g = Gate::new("enoent");
    g.write_role(State::HS, 60_000);
    let out = Command::new(env!("CARGO_BIN_EXE_rdg"))
        .args(["gate", "--role-file"])
        .arg(g.role())
        .args(["--", "/nonexistent/transmitter"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(127));
    assert!(String::from_utf8_lossy(&out.stderr).contains("cannot start"));
}

//! `rdg demo --real`: three real `rdg agent` processes on this host's loopback (unicast
//! heartbeats on two networks of 127.x addresses, so no root is needed), watched through their
//! role files: election, `kill -9` of the hot member, takeover with the measured time, the old
//! member back as standby, `rdg status` over the network, and a graceful stop that hands over.

use rdg_agent::clock::monotonic_ms;
use rdg_agent::query::query;
use rdg_agent::role_file::{self, RoleRecord};
use rdg_core::State;
use rdg_core::config::GroupConfig;
use std::path::PathBuf;
use std::process::{Child, Command, ExitCode, Stdio};
use std::time::{Duration, Instant};

const MEMBERS: [(&str, u16); 3] = [("ics-a", 100), ("ics-b", 50), ("ics-c", 10)];
/// Longest wait for any step of the demo before it gives up.
const STEP_LIMIT: Duration = Duration::from_secs(10);

struct Demo {
    dir: PathBuf,
    config: PathBuf,
    net: u8,
    children: Vec<Option<Child>>,
    last: Vec<Option<(State, u64)>>,
    start: Instant,
}

impl Drop for Demo {
    fn drop(&mut self) {
        for c in self.children.iter_mut().flatten() {
            let _ = c.kill();
            let _ = c.wait();
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

impl Demo {
    fn role_path(&self, i: usize) -> PathBuf {
        self.dir.join(format!("{}.role", MEMBERS[i].0))
    }

    fn say(&self, who: &str, text: &str) {
        println!(
            "[{:>7.3}s] {:<6} {text}",
            self.start.elapsed().as_secs_f64(),
            who
        );
    }

    fn spawn(&mut self, i: usize) -> std::io::Result<()> {
        let (name, prio) = MEMBERS[i];
        let log = std::fs::File::create(self.dir.join(format!("{name}.log")))?;
        let child = Command::new(std::env::current_exe()?)
            .args(["agent", "--member", name, "--config"])
            .arg(&self.config)
            .arg("--role-file")
            .arg(self.role_path(i))
            .args([
                "--status-listen",
                &format!("127.{}.3.{}:9035", self.net, i + 1),
            ])
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()?;
        self.say(
            name,
            &format!("started (priority {prio}, pid {})", child.id()),
        );
        self.children[i] = Some(child);
        Ok(())
    }

    fn read(&self, i: usize) -> Option<RoleRecord> {
        role_file::read(&self.role_path(i)).ok().flatten()
    }

    /// Prints role changes; returns the members hot with a running lease.
    fn watch(&mut self) -> Vec<usize> {
        let now = monotonic_ms();
        let mut hot = Vec::new();
        for (i, (name, _)) in MEMBERS.iter().enumerate() {
            let Some(r) = self.read(i) else { continue };
            if r.may_run(now) {
                hot.push(i);
            }
            let seen = Some((r.role, r.epoch));
            if self.last[i] != seen {
                self.last[i] = seen;
                let text = match r.role {
                    State::HS => format!("role file: HOT (epoch {})", r.epoch),
                    s => format!("role file: {s} (hot epoch {})", r.epoch),
                };
                self.say(name, &text);
            }
        }
        hot
    }

    /// Watches until `cond` holds; fails on two hot members or after [`STEP_LIMIT`].
    fn until(&mut self, what: &str, cond: impl Fn(&Demo) -> bool) -> Result<Duration, String> {
        let t = Instant::now();
        loop {
            let hot = self.watch();
            if hot.len() > 1 {
                return Err(format!("two hot members at once: {hot:?}"));
            }
            if cond(self) {
                return Ok(t.elapsed());
            }
            if t.elapsed() > STEP_LIMIT {
                return Err(format!("gave up waiting for {what}"));
            }
            std::thread::sleep(Duration::from_millis(1));
        }
    }

    fn is(&self, i: usize, state: State) -> bool {
        self.read(i).is_some_and(|r| r.role == state)
    }
}

/// Runs the real demo.
pub fn run() -> ExitCode {
    match demo() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("rdg demo --real: {e}");
            ExitCode::FAILURE
        }
    }
}

fn demo() -> Result<(), String> {
    let net = 20 + (std::process::id() % 200) as u8;
    let dir = std::env::temp_dir().join(format!("rdg-demo-{}", std::process::id()));
    std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let config = dir.join("group.yaml");
    let mut yaml = String::from(
        "name: demo\nheartbeat: {interval: 100ms, timeout: 300ms, port: 18035}\n\
         networks: [{name: primary}, {name: secondary}]\ntimeouts: {election: 600ms}\nmembers:\n",
    );
    for (i, (name, prio)) in MEMBERS.iter().enumerate() {
        yaml.push_str(&format!(
            "  - {{name: {name}, priority: {prio}, addresses: {{primary: 127.{net}.1.{n}, secondary: 127.{net}.2.{n}}}}}\n",
            n = i + 1
        ));
    }
    std::fs::write(&config, &yaml).map_err(|e| e.to_string())?;
    let mut d = Demo {
        dir,
        config,
        net,
        children: MEMBERS.iter().map(|_| None).collect(),
        last: vec![None; MEMBERS.len()],
        start: Instant::now(),
    };
    println!(
        "rdg demo --real: three `rdg agent` processes on loopback, unicast heartbeats on two networks \
         (127.{net}.1.x, 127.{net}.2.x), interval 100 ms, timeout 300 ms; files in {}",
        d.dir.display()
    );
    let err = |e: std::io::Error| e.to_string();
    d.spawn(0).map_err(err)?;
    d.until("ics-a to win the election", |d| d.is(0, State::HS))?;
    d.spawn(1).map_err(err)?;
    d.spawn(2).map_err(err)?;
    d.until("ics-b and ics-c to stand by", |d| {
        d.is(1, State::SBS) && d.is(2, State::SBS)
    })?;

    let mut a = d.children[0].take().ok_or("ics-a is not running")?;
    d.say("world", &format!("kill -9 ics-a (pid {})", a.id()));
    let killed = Instant::now();
    a.kill().map_err(err)?;
    let _ = a.wait();
    d.until("a standby to take over", |d| d.is(1, State::HS))?;
    let took = killed.elapsed();
    println!(
        "failover: ics-a killed, ics-b hot {} ms later (heartbeat timeout 300 ms)",
        took.as_millis()
    );

    d.spawn(0).map_err(err)?;
    d.until("ics-a back as standby", |d| d.is(0, State::SBS))?;
    println!("no preemption: ics-a (priority 100) came back as standby; ics-b stays hot");

    let cfg = GroupConfig::load(&d.config).map_err(|e| e.to_string())?;
    let status = query(&cfg, Duration::from_millis(500)).map_err(|e| e.to_string())?;
    println!(
        "rdg status: hot {}, epoch {}, members {}",
        status.hot.as_deref().unwrap_or("NONE"),
        status.epoch,
        status
            .members
            .iter()
            .map(|m| format!("{}={}", m.name, m.state))
            .collect::<Vec<_>>()
            .join(" ")
    );
    if status.hot.as_deref() != Some("ics-b") {
        return Err("rdg status does not report ics-b as hot".into());
    }

    let b = d.children[1].as_ref().ok_or("ics-b is not running")?;
    d.say(
        "world",
        "SIGTERM ics-b (graceful stop: release, then hand over)",
    );
    let stopped = Instant::now();
    let pid = nix::unistd::Pid::from_raw(b.id() as i32);
    nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM).map_err(|e| e.to_string())?;
    d.until("ics-a to take the hand-over", |d| d.is(0, State::HS))?;
    println!(
        "hand-over: ics-a hot {} ms after ics-b was asked to stop (no timeout to wait for)",
        stopped.elapsed().as_millis()
    );
    for c in d.children.iter_mut().flatten() {
        let pid = nix::unistd::Pid::from_raw(c.id() as i32);
        let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM);
        let _ = c.wait();
    }
    d.children.iter_mut().for_each(|c| *c = None);
    println!("demo done: one hot member at every moment (checked every millisecond)");
    Ok(())
}

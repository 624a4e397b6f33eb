//! `rdg demo --real`: three real `rdg agent` processes on this host's loopback (unicast
//! heartbeats on two networks of 127.x addresses, so no root is needed), watched through their
//! role files: election, `kill -9` of the hot member, takeover with the measured time, the old
//! member back as standby, `rdg status` over the network, and a graceful stop that hands over.

use rdg_agent::clock::monotonic_ms;
use rdg_agent::local_group::LocalGroup;
use rdg_agent::query::query;
use rdg_core::State;
use rdg_core::config::GroupConfig;
use std::process::ExitCode;
use std::time::{Duration, Instant};

const MEMBERS: [(&str, u16); 3] = [("ics-a", 100), ("ics-b", 50), ("ics-c", 10)];
/// Longest wait for any step of the demo before it gives up.
const STEP_LIMIT: Duration = Duration::from_secs(10);

/// The group and the narration: the last role seen of each member, and the time line's origin.
struct Demo {
    group: LocalGroup,
    last: Vec<Option<(State, u64)>>,
    start: Instant,
}

impl Demo {
    fn spawn(&mut self, i: usize) -> std::io::Result<()> {
        let (name, prio) = MEMBERS[i];
        self.group.start(name)?;
        let pid = self.group.pid(name).unwrap_or_default();
        say(
            self.start,
            name,
            &format!("started (priority {prio}, pid {pid})"),
        );
        Ok(())
    }

    /// Watches until `cond` holds; fails on two hot members or after [`STEP_LIMIT`].
    fn until(
        &mut self,
        what: &str,
        cond: impl Fn(&LocalGroup) -> bool,
    ) -> Result<Duration, String> {
        let Demo { group, last, start } = self;
        let mut two_hot = None;
        let took = group.poll_until(STEP_LIMIT, || {
            let hot = watch(group, last, *start);
            if hot.len() > 1 {
                two_hot = Some(hot);
                return true;
            }
            cond(group)
        });
        if let Some(hot) = two_hot {
            return Err(format!("two hot members at once: {hot:?}"));
        }
        took.ok_or_else(|| format!("gave up waiting for {what}"))
    }
}

fn say(start: Instant, who: &str, text: &str) {
    println!(
        "[{:>7.3}s] {:<6} {text}",
        start.elapsed().as_secs_f64(),
        who
    );
}

/// Prints role changes; returns the members hot with a running lease.
fn watch(group: &LocalGroup, last: &mut [Option<(State, u64)>], start: Instant) -> Vec<usize> {
    let now = monotonic_ms();
    let mut hot = Vec::new();
    for (i, (name, _)) in MEMBERS.iter().enumerate() {
        let Some(r) = group.role(name) else { continue };
        if r.may_run(now) {
            hot.push(i);
        }
        let seen = Some((r.role, r.epoch));
        if last[i] != seen {
            last[i] = seen;
            let text = match r.role {
                State::HS => format!("role file: HOT (epoch {})", r.epoch),
                s => format!("role file: {s} (hot epoch {})", r.epoch),
            };
            say(start, name, &text);
        }
    }
    hot
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
    let rdg = std::env::current_exe().map_err(|e| e.to_string())?;
    let group = MEMBERS
        .iter()
        .fold(LocalGroup::builder(rdg, "demo", net), |b, (name, prio)| {
            b.member(name, *prio)
        })
        .networks("primary", "secondary")
        .heartbeat(Duration::from_millis(100), Duration::from_millis(300))
        .election(Duration::from_millis(600))
        .dir(&dir)
        .poll_every(Duration::from_millis(1))
        .build()
        .map_err(|e| format!("{}: {e}", dir.display()))?;
    let mut d = Demo {
        group,
        last: vec![None; MEMBERS.len()],
        start: Instant::now(),
    };
    println!(
        "rdg demo --real: three `rdg agent` processes on loopback, unicast heartbeats on two networks \
         (127.{net}.1.x, 127.{net}.2.x), interval 100 ms, timeout 300 ms; files in {}",
        d.group.dir().display()
    );
    let err = |e: std::io::Error| e.to_string();
    d.spawn(0).map_err(err)?;
    d.until("ics-a to win the election", |g| {
        g.role_is("ics-a", State::HS)
    })?;
    d.spawn(1).map_err(err)?;
    d.spawn(2).map_err(err)?;
    d.until("ics-b and ics-c to stand by", |g| {
        g.role_is("ics-b", State::SBS) && g.role_is("ics-c", State::SBS)
    })?;

    let pid = d.group.pid("ics-a").ok_or("ics-a is not running")?;
    say(d.start, "world", &format!("kill -9 ics-a (pid {pid})"));
    let killed = Instant::now();
    d.group.kill9("ics-a").map_err(err)?;
    d.until("a standby to take over", |g| g.role_is("ics-b", State::HS))?;
    let took = killed.elapsed();
    println!(
        "failover: ics-a killed, ics-b hot {} ms later (heartbeat timeout 300 ms)",
        took.as_millis()
    );

    d.spawn(0).map_err(err)?;
    d.until("ics-a back as standby", |g| g.role_is("ics-a", State::SBS))?;
    println!("no preemption: ics-a (priority 100) came back as standby; ics-b stays hot");

    let cfg = GroupConfig::load(d.group.config_path()).map_err(|e| e.to_string())?;
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

    say(
        d.start,
        "world",
        "SIGTERM ics-b (graceful stop: release, then hand over)",
    );
    let stopped = Instant::now();
    d.group
        .signal("ics-b", nix::sys::signal::Signal::SIGTERM)
        .map_err(err)?;
    d.until("ics-a to take the hand-over", |g| {
        g.role_is("ics-a", State::HS)
    })?;
    println!(
        "hand-over: ics-a hot {} ms after ics-b was asked to stop (no timeout to wait for)",
        stopped.elapsed().as_millis()
    );
    for (name, _) in MEMBERS {
        let _ = d.group.stop(name);
    }
    println!("demo done: one hot member at every moment (checked every millisecond)");
    Ok(())
}

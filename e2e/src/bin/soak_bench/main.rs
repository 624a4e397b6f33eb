//! The soak benchmark: a real rdg group in network namespaces (the `rdg-e2e` lab) under random
//! faults for a long time, checked continuously for two owners and for growing processes.
//!
//! ```text
//! sudo RDG_BIN=target/release/rdg target/release/soak_bench [--seconds 300] [--members 3]
//!     [--fault-every-ms 2000-5000] [--hold-ms 500-4000] [--seed N] [--interval-ms 100]
//!     [--faults kill,freeze,cut-one,cut-both,partition,loss,isolation] [--sample-ms 25]
//!     [--resource-every-ms 2000] [--bound-ms MS] [--json] [--output FILE]
//! ```
//!
//! The members (`ics-a`, `ics-b`, ... with priorities 100, 90, ...) run on two networks with
//! the net check on both targets and the VIP 10.0.0.100/24, heartbeat `--interval-ms` (default
//! 100), timeout three intervals. Once they are settled (started one after another, the first
//! hot), three things run side by side for `--seconds`:
//!
//! * the fault schedule ([`schedule`]): a pause, one fault from the fault matrix ([`fault`]:
//!   kill and restart, freeze and thaw, one cable cut, both cut, partition, 20–30 % loss,
//!   isolation from the net-check targets) on a random member, held, healed, recovery awaited;
//!   drawn from a seeded generator (`--seed`; printed, and in the report);
//! * the checker ([`checker`]), every 25 ms: role files and VIP holders; two hot members (or
//!   VIP holders) that can hear each other for longer than the protocol's bound count as a
//!   two-hot moment (a VIP owner conflict); the exact rule is in [`checker`];
//! * the resource sampler ([`resources`]), every 2 s: RSS, open file descriptors and threads of
//!   every agent process, one series per process incarnation, and whether each grows (the rule
//!   is in [`resources`]).
//!
//! Prints one JSON document on stdout (and to `--output`): `seconds`, `seed`, `faults`
//! (`applied`, `by_kind`, recovery times, the fault log), `failovers`, `two_hot_moments` and
//! `vip_owner_conflicts` (`count` and `list`), `checker` (samples, bound, totals), `resources`
//! (per series first/last/max and growth, `flat`), `flat`, `errors`. The exit status is 1 when
//! it could not run (`errors` not empty), 2 without root or rdg binary, 130 when interrupted;
//! the verdicts are for the caller to assert (CI asserts no two-hot moment, no VIP conflict,
//! and flat resources). Every namespace, link and process is removed on every way out (the
//! lab's `Drop`).

mod checker;
mod fault;
mod resources;
mod schedule;
mod situation;

use clap::Parser;
use fault::Kind;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use rdg_e2e::bench::{guarded, parse_seconds};
use rdg_e2e::start::start_in_order;
use rdg_e2e::stats::round1;
use rdg_e2e::{GroupConfig, Lab, Net};
use serde_json::{Value, json};
use situation::Situation;
use std::net::Ipv4Addr;
use std::ops::RangeInclusive;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

/// The group's virtual IP.
const VIP: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 100);
/// How long each member may take to settle at the start.
const SETTLE: Duration = Duration::from_secs(20);

/// A real rdg group under random faults for a long time: never two owners, no growth.
#[derive(Parser, Debug)]
#[command(name = "soak_bench")]
struct Options {
    /// How long faults are applied, in seconds (the last one is healed after).
    #[arg(long, value_name = "SECS", default_value = "300", value_parser = parse_seconds)]
    seconds: Duration,
    /// Members of the group.
    #[arg(long, value_name = "N", default_value_t = 3,
          value_parser = clap::value_parser!(u8).range(2..=9))]
    members: u8,
    /// The quiet pause before each fault, in ms: `MIN-MAX` (drawn uniformly) or one value.
    #[arg(long, value_name = "MS[-MS]", default_value = "2000-5000", value_parser = parse_range_ms)]
    fault_every_ms: RangeInclusive<u64>,
    /// How long each fault is held before it is healed, in ms: `MIN-MAX` or one value.
    #[arg(long, value_name = "MS[-MS]", default_value = "500-4000", value_parser = parse_range_ms)]
    hold_ms: RangeInclusive<u64>,
    /// Seed of the fault schedule [default: drawn from the clock, printed].
    #[arg(long)]
    seed: Option<u64>,
    /// Heartbeat interval in ms (the timeout is three intervals).
    #[arg(long, value_name = "MS", default_value_t = 100,
          value_parser = clap::value_parser!(u64).range(10..=5000))]
    interval_ms: u64,
    /// The kinds of fault drawn.
    #[arg(
        long,
        value_name = "KIND,KIND",
        value_delimiter = ',',
        default_value = "kill,freeze,cut-one,cut-both,partition,loss,isolation"
    )]
    faults: Vec<Kind>,
    /// How often the checker samples role files and VIP holders, in ms.
    #[arg(long, value_name = "MS", default_value_t = 25,
          value_parser = clap::value_parser!(u64).range(1..=1000))]
    sample_ms: u64,
    /// How often each agent's RSS, descriptors and threads are read, in ms.
    #[arg(long, value_name = "MS", default_value_t = 2000,
          value_parser = clap::value_parser!(u64).range(100..))]
    resource_every_ms: u64,
    /// How long two owners may remain once they can hear each other, in ms [default: one
    /// interval plus the timeout].
    #[arg(long, value_name = "MS")]
    bound_ms: Option<u64>,
    /// Accepted for scripts that ask for it: the output is always JSON.
    #[arg(long)]
    json: bool,
    /// Also write the JSON document to this file.
    #[arg(long, value_name = "FILE")]
    output: Option<PathBuf>,
}

/// `MIN-MAX` or `N` milliseconds, as a command-line value.
fn parse_range_ms(v: &str) -> Result<RangeInclusive<u64>, String> {
    let number = |s: &str| {
        s.trim()
            .parse::<u64>()
            .map_err(|_| format!("not a number of ms: {s}"))
    };
    let (lo, hi) = match v.split_once('-') {
        Some((lo, hi)) => (number(lo)?, number(hi)?),
        None => (number(v)?, number(v)?),
    };
    if lo > hi {
        return Err(format!("an empty range: {v}"));
    }
    Ok(lo..=hi)
}

impl Options {
    fn interval(&self) -> Duration {
        Duration::from_millis(self.interval_ms)
    }

    fn timeout(&self) -> Duration {
        self.interval() * 3
    }

    fn bound(&self) -> Duration {
        self.bound_ms
            .map(Duration::from_millis)
            .unwrap_or(self.interval() + self.timeout())
    }

    /// The group: `ics-a` (100), `ics-b` (90), ...; two networks, net check on both targets,
    /// the VIP.
    fn group_config(&self) -> GroupConfig {
        let names: Vec<(String, u16)> = (0..self.members)
            .map(|i| {
                let name = format!("ics-{}", char::from(b'a' + i));
                (name, 100 - 10 * u16::from(i))
            })
            .collect();
        let members: Vec<(&str, u16)> = names.iter().map(|(n, p)| (n.as_str(), *p)).collect();
        let mut config = GroupConfig::with_members(&members);
        config.interval = self.interval();
        config.timeout = self.timeout();
        config.net_check_targets = vec![Net::Primary.target(), Net::Secondary.target()];
        config.net_check_timeout = self.interval() / 2;
        config.vips = vec![format!("{VIP}/24")];
        config
    }
}

/// Sets the flag when dropped: the side threads stop however the schedule ends (a panic too).
struct StopOnDrop<'a>(&'a AtomicBool);

impl Drop for StopOnDrop<'_> {
    fn drop(&mut self) {
        self.0.store(true, Ordering::SeqCst);
    }
}

/// The soak itself; the report's parts, with errors listed in it.
fn soak(o: &Options, seed: u64) -> Result<Value, String> {
    let lab = Lab::new(o.group_config());
    eprintln!("soak_bench: lab in {}", lab.dir().display());
    let names = lab.member_names();
    let order: Vec<&str> = names.iter().map(String::as_str).collect();
    start_in_order(&lab, &order, SETTLE)?;
    let settings = schedule::Settings {
        seconds: o.seconds,
        pause_ms: o.fault_every_ms.clone(),
        hold_ms: o.hold_ms.clone(),
        kinds: o.faults.clone(),
    };
    let situation = Situation::default();
    let stop = AtomicBool::new(false);
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let start = Instant::now();
    eprintln!(
        "soak_bench: {} members settled, faults for {:?}",
        names.len(),
        o.seconds
    );
    std::thread::scope(|scope| {
        let checker = scope.spawn(|| {
            let period = Duration::from_millis(o.sample_ms);
            checker::run(&lab, VIP, &situation, period, o.bound(), start, &stop)
        });
        let resources = scope.spawn(|| {
            let period = Duration::from_millis(o.resource_every_ms);
            resources::run(&lab, period, start, &stop)
        });
        let stopper = StopOnDrop(&stop);
        let (faults, interrupted) = schedule::run(&lab, &settings, &mut rng, &situation, start);
        drop(stopper);
        let mut checked = checker
            .join()
            .map_err(|_| "the checker panicked".to_string())??;
        let resources = resources
            .join()
            .map_err(|_| "the resource sampler panicked".to_string())?;
        let mut errors = Vec::new();
        if interrupted {
            errors.push("interrupted".to_string());
        }
        let mut doc = json!({
            "elapsed_s": round1(start.elapsed().as_secs_f64()),
            "faults": faults,
            "flat": resources["flat"],
            "resources": resources,
            "errors": errors,
        });
        for key in ["two_hot_moments", "vip_owner_conflicts", "failovers"] {
            if let Some(v) = checked.as_object_mut().and_then(|c| c.remove(key)) {
                doc[key] = v;
            }
        }
        doc["checker"] = checked;
        Ok(doc)
    })
}

fn main() {
    let options = Options::parse();
    rdg_e2e::bench::require_root(
        "soak_bench",
        "it creates network namespaces and bridges; run it as root",
    );
    rdg_e2e::bench::handle_signals("soak_bench");
    let rdg = match std::panic::catch_unwind(rdg_e2e::rdg_binary) {
        Ok(path) => path,
        Err(_) => {
            eprintln!("soak_bench: no rdg binary: `cargo build --release` or set RDG_BIN");
            std::process::exit(2);
        }
    };
    let seed = options.seed.unwrap_or_else(|| {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos() as u64)
    });
    eprintln!("soak_bench: rdg binary {}, seed {seed}", rdg.display());
    let mut doc =
        guarded("soak", || soak(&options, seed)).unwrap_or_else(|e| json!({"errors": [e]}));
    let head = json!({
        "seconds": options.seconds.as_secs_f64(),
        "seed": seed,
        "members": options.members,
        "interval_ms": options.interval_ms,
        "timeout_ms": options.timeout().as_millis() as u64,
        "fault_every_ms": [options.fault_every_ms.start(), options.fault_every_ms.end()],
        "hold_ms": [options.hold_ms.start(), options.hold_ms.end()],
        "fault_kinds": options.faults.iter().map(|k| k.name()).collect::<Vec<_>>(),
        "rdg_binary": rdg.display().to_string(),
        "cpus": std::thread::available_parallelism().map_or(0, |n| n.get()),
    });
    for (k, v) in head.as_object().into_iter().flatten() {
        doc[k] = v.clone();
    }
    if let Some(path) = &options.output {
        let text = serde_json::to_string_pretty(&doc).expect("JSON values serialise");
        if let Err(e) = std::fs::write(path, text + "\n") {
            eprintln!("soak_bench: cannot write {}: {e}", path.display());
        }
    }
    rdg_e2e::bench::finish(&doc);
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::{CommandFactory, ValueEnum};

    #[test]
    fn options() {
        Options::command().debug_assert();
        let o = Options::parse_from(["soak_bench"]);
        assert_eq!(o.seconds, Duration::from_secs(300));
        assert_eq!((o.members, o.fault_every_ms.clone()), (3, 2000..=5000));
        assert_eq!(o.faults.len(), Kind::value_variants().len());
        assert_eq!(o.bound(), Duration::from_millis(400));
        let o = Options::parse_from(["soak_bench", "--fault-every-ms", "3000", "--faults", "loss"]);
        assert_eq!(
            (o.fault_every_ms, o.faults),
            (3000..=3000, vec![Kind::Loss])
        );
        assert!(Options::try_parse_from(["soak_bench", "--hold-ms", "5-1"]).is_err());
        assert!(Options::try_parse_from(["soak_bench", "--members", "1"]).is_err());
        let c = Options::parse_from(["soak_bench", "--members", "4"]).group_config();
        assert_eq!(c.members[3].name, "ics-d");
        assert_eq!(c.members[3].priority, 70);
    }
}

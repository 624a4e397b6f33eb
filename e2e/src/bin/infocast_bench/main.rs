//! The carousel benchmark: one transmitter and one receiver in this process, on loopback.
//!
//! ```text
//! cargo run --release -p rdg-e2e --bin infocast_bench -- [--seconds S]
//! ```
//!
//! Prints one JSON document on stdout (progress goes to stderr):
//!
//! * `throughput`: one channel with 1400-byte payloads and no rate limit worth the name
//!   (100 Gbit/s configured): Mbit/s sent and received, receiver loss, and the CPU % of the
//!   transmitter's thread (see [`throughput`]);
//! * `accuracy`: the channel paced at 2, 20 and 200 Mbit/s, each measured by the receiver over
//!   `--seconds` (default 5) after a warm-up: target, measured, error % (see [`accuracy`]);
//! * `failover` (root): the gap a receiver in a client namespace sees across 20 host deaths
//!   of the hot member, p50/p99/max (see [`failover`]);
//! * `errors`: whatever went wrong; the exit status is 1 when there are any.
//!
//! Each part is one entry of [`SECTIONS`]; parts that need root (e.g. the gap a receiver sees
//! across failovers in network namespaces) are added there as further entries.

mod accuracy;
mod failover;
mod setup;
mod throughput;

use clap::Parser;
use rdg_e2e::bench::parse_seconds;
use serde_json::{Map, Value};
use std::time::Duration;

/// One carousel transmitter and receiver in this process, on loopback (and across failovers in
/// network namespaces, as root); prints one JSON document on stdout.
#[derive(Parser, Debug)]
#[command(name = "infocast_bench")]
struct Args {
    /// Measurement window of each run, in seconds.
    #[arg(long, value_name = "S", default_value = "5", value_parser = parse_seconds)]
    seconds: Duration,
}

/// What every section may use.
pub struct Settings {
    /// Measurement window of each run.
    pub window: Duration,
    /// Traffic before a window opens (sockets, caches and timers settle).
    pub warmup: Duration,
}

/// One part of the benchmark: its key in the JSON document and the function measuring it.
type Section = (&'static str, fn(&Settings) -> Result<Value, String>);

/// The parts, run in order.
const SECTIONS: &[Section] = &[
    ("throughput", throughput::run),
    ("accuracy", accuracy::run),
    ("failover", failover::run),
];

fn main() {
    let args = Args::parse();
    let settings = Settings {
        window: args.seconds,
        warmup: Duration::from_millis(500),
    };
    let mut doc = Map::new();
    let mut errors = Vec::new();
    for (name, run) in SECTIONS {
        eprintln!("infocast_bench: {name} ...");
        match run(&settings) {
            Ok(v) => {
                doc.insert((*name).to_string(), v);
            }
            Err(e) => errors.push(Value::String(format!("{name}: {e}"))),
        }
    }
    doc.insert("errors".into(), Value::Array(errors));
    rdg_e2e::bench::finish(&Value::Object(doc));
}

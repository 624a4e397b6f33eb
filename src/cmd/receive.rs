//! `rdg receive --channel ADDR:PORT [--interface ADDR] [--seconds S] [--json]`: listen to one
//! carousel channel like a set-top box and print what arrived (see `rdg_infocast::receiver`;
//! the JSON is the design's receiver contract, extended compatibly: `rdg_infocast::report`).
//!
//! A multicast ADDR is joined (on `--interface`, default any); any other ADDR:PORT is bound as
//! is (e.g. a loopback address, no multicast route needed). Runs `--seconds` (default: until
//! SIGINT/SIGTERM), then prints the report. Exit 0; 1 when the socket cannot be opened.

use rdg_infocast::{Receiver, ReceiverOptions};
use std::net::{IpAddr, SocketAddr};
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

/// Arguments of `rdg receive`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The channel, ADDR:PORT (a multicast group is joined; another address is bound).
    #[arg(long)]
    channel: SocketAddr,
    /// Local address of the interface to join the group on; default: any.
    #[arg(long)]
    interface: Option<IpAddr>,
    /// Listen this many seconds (fractions allowed); default: until SIGINT/SIGTERM.
    #[arg(long)]
    seconds: Option<f64>,
    /// Print the JSON report instead of a summary.
    #[arg(long)]
    json: bool,
}

/// Listens, then prints the report.
pub fn run(args: &Args) -> ExitCode {
    crate::logging::init();
    let duration = match args.seconds {
        Some(s) if !(s.is_finite() && s > 0.0) => {
            eprintln!("--seconds must be a positive number of seconds");
            return ExitCode::from(2);
        }
        Some(s) => Some(Duration::from_secs_f64(s)),
        None => None,
    };
    let stop = Arc::new(AtomicBool::new(false));
    for sig in [signal_hook::consts::SIGTERM, signal_hook::consts::SIGINT] {
        if let Err(e) = signal_hook::flag::register(sig, Arc::clone(&stop)) {
            eprintln!("rdg receive: cannot handle signal {sig}: {e}");
            return ExitCode::FAILURE;
        }
    }
    let receiver = match Receiver::start(ReceiverOptions {
        channel: args.channel,
        interface: args.interface,
    }) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("rdg receive: cannot listen on {}: {e}", args.channel);
            return ExitCode::FAILURE;
        }
    };
    let deadline = duration.map(|d| Instant::now() + d);
    while !stop.load(Ordering::SeqCst) {
        let left = deadline.map(|d| d.saturating_duration_since(Instant::now()));
        if left.is_some_and(|l| l.is_zero()) {
            break;
        }
        std::thread::sleep(left.map_or(Duration::from_millis(20), |l| {
            l.min(Duration::from_millis(20))
        }));
    }
    let report = receiver.stop();
    if args.json {
        match serde_json::to_string(&report) {
            Ok(s) => println!("{s}"),
            Err(e) => {
                eprintln!("rdg receive: {e}");
                return ExitCode::FAILURE;
            }
        }
    } else {
        print!("{}", report.human());
    }
    ExitCode::SUCCESS
}

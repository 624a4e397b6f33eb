//! What the benchmark programs share: interruption by SIGINT/SIGTERM/SIGHUP (every wait gives
//! up, so the labs are dropped and cleaned up), panics of the harness turned into errors, and
//! the JSON document they print with the exit status it implies.

use nix::sys::signal::{SaFlags, SigAction, SigHandler, SigSet, Signal, sigaction};
use serde_json::Value;
use std::panic::AssertUnwindSafe;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

/// Set by SIGINT/SIGTERM/SIGHUP once [`handle_signals`] has been called.
static INTERRUPTED: AtomicBool = AtomicBool::new(false);

extern "C" fn on_signal(_: nix::libc::c_int) {
    INTERRUPTED.store(true, Ordering::SeqCst);
}

/// Makes SIGINT, SIGTERM and SIGHUP set the interruption flag instead of ending the process,
/// so that the program can clean up; `program` names it in the warning if that fails.
pub fn handle_signals(program: &str) {
    let handler = SigAction::new(
        SigHandler::Handler(on_signal),
        SaFlags::empty(),
        SigSet::empty(),
    );
    for signal in [Signal::SIGINT, Signal::SIGTERM, Signal::SIGHUP] {
        // SAFETY: the handler only stores to an atomic, which is async-signal-safe.
        if let Err(e) = unsafe { sigaction(signal, &handler) } {
            eprintln!("{program}: cannot handle {signal}: {e}");
        }
    }
}

/// True once the program has been interrupted.
pub fn interrupted() -> bool {
    INTERRUPTED.load(Ordering::SeqCst)
}

/// `Err` once the program has been interrupted.
pub fn check_interrupted() -> Result<(), String> {
    if interrupted() {
        Err("interrupted".into())
    } else {
        Ok(())
    }
}

/// Sleeps for `d` in short steps, giving up when interrupted.
pub fn sleep(d: Duration) -> Result<(), String> {
    let end = Instant::now() + d;
    loop {
        check_interrupted()?;
        let left = end.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Ok(());
        }
        std::thread::sleep(left.min(Duration::from_millis(50)));
    }
}

/// Runs `f`, turning a panic (the harness panics on set-up failures) into an error: the first
/// line of its message (the harness's log dump has been printed to stderr already).
pub fn catch_panic<T>(f: impl FnOnce() -> Result<T, String>) -> Result<T, String> {
    std::panic::catch_unwind(AssertUnwindSafe(f)).unwrap_or_else(|panic| {
        let message = panic
            .downcast_ref::<String>()
            .cloned()
            .or_else(|| panic.downcast_ref::<&str>().map(|s| (*s).to_string()))
            .unwrap_or_else(|| "panic".into());
        Err(message.lines().next().unwrap_or_default().to_string())
    })
}

/// [`catch_panic`] with errors prefixed by `what`. Whatever `f` created is dropped, and so
/// cleaned up, either way.
pub fn guarded<T>(what: &str, f: impl FnOnce() -> Result<T, String>) -> Result<T, String> {
    catch_panic(f).map_err(|e| format!("{what}: {e}"))
}

/// Prints `doc` on stdout and ends the program: status 130 when interrupted, 1 when
/// `doc["errors"]` lists any, 0 otherwise.
pub fn finish(doc: &Value) -> ! {
    println!(
        "{}",
        serde_json::to_string_pretty(doc).expect("JSON values serialise")
    );
    if interrupted() {
        std::process::exit(130);
    }
    let failed = doc["errors"].as_array().is_some_and(|e| !e.is_empty());
    std::process::exit(i32::from(failed));
}

/// A positive number of seconds, as a command-line value.
pub fn parse_seconds(v: &str) -> Result<Duration, String> {
    v.parse::<f64>()
        .ok()
        .filter(|s| s.is_finite() && *s > 0.0)
        .map(Duration::from_secs_f64)
        .ok_or_else(|| format!("not a number of seconds: {v}"))
}

/// A positive whole number, as a command-line value.
pub fn parse_positive(v: &str) -> Result<usize, String> {
    v.parse()
        .ok()
        .filter(|&n| n > 0)
        .ok_or_else(|| format!("not a positive number: {v}"))
}

/// Ends the program with status 2 and `why` unless it runs as root.
pub fn require_root(program: &str, why: &str) {
    if !crate::is_root() {
        eprintln!("{program}: needs root ({why})");
        std::process::exit(2);
    }
}

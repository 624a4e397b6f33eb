//! The suite needs root (network namespaces, bridges, nftables); without it each test says so
//! loudly and passes vacuously, so `cargo test --workspace` still works for everyone.

use std::io::Write;

/// True when the process runs with effective uid 0.
pub fn is_root() -> bool {
    nix::unistd::geteuid().is_root()
}

/// Returns true when the test may run; otherwise prints a loud SKIPPED line to stderr naming
/// `test` and returns false (the caller then returns early). The line is written to the
/// process's stderr directly, so the test harness's output capture does not hide it.
pub fn require_root(test: &str) -> bool {
    is_root() || skipped(test, "needs root (network namespaces); CI runs it as root")
}

/// Prints the loud SKIPPED line of `test` (`why`: what it needs) straight to stderr, past the
/// test harness's capture; returns false, for `require_*` functions to return.
pub(crate) fn skipped(test: &str, why: &str) -> bool {
    let _ = writeln!(
        std::io::stderr(),
        "\n!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!\n\
         SKIPPED: {test} {why}\n\
         !!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!"
    );
    false
}

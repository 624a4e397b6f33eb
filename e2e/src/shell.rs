//! Running the system tools the lab is built with (`ip`, `nft`), with readable errors.

use std::io::Write;
use std::process::{Command, Stdio};

/// Runs `program args...`, feeding `stdin` when given; returns stdout, or an error naming the
/// command line, its exit status and its stderr.
pub(crate) fn run(program: &str, args: &[&str], stdin: Option<&str>) -> Result<String, String> {
    let line = format!("{program} {}", args.join(" "));
    let mut child = Command::new(program)
        .args(args)
        .stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("{line}: cannot start: {e}"))?;
    if let Some(input) = stdin {
        let mut pipe = child.stdin.take().expect("stdin is piped");
        pipe.write_all(input.as_bytes())
            .map_err(|e| format!("{line}: writing stdin: {e}"))?;
    }
    let out = child
        .wait_with_output()
        .map_err(|e| format!("{line}: {e}"))?;
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    } else {
        Err(format!(
            "{line}: {}: {}{}",
            out.status,
            String::from_utf8_lossy(&out.stderr).trim(),
            stdin.map(|s| format!("\ninput:\n{s}")).unwrap_or_default()
        ))
    }
}

/// [`run`] that panics on failure: for set-up steps a test cannot do without.
pub(crate) fn must(program: &str, args: &[&str]) -> String {
    run(program, args, None).unwrap_or_else(|e| panic!("{e}"))
}

/// Runs `ip args...`, panicking on failure.
pub(crate) fn ip(args: &[&str]) {
    must("ip", args);
}

/// Loads an nftables script in namespace `netns`.
pub(crate) fn nft(netns: &str, script: &str) -> Result<(), String> {
    run(
        "ip",
        &["netns", "exec", netns, "nft", "-f", "-"],
        Some(script),
    )
    .map(|_| ())
}

/// Runs `program args...` and returns its stdout; panics (naming the command and its stderr)
/// when it fails. For tests that inspect the system (`ip netns list`, ...).
pub fn shell_output(program: &str, args: &[&str]) -> String {
    must(program, args)
}

//! Names of everything a lab creates: unique per process and per lab, recognisable by the
//! [`PREFIX`] so leftovers of crashed runs can be found, and short enough for interface names
//! (at most 15 bytes).
//!
//! A lab id is `rdgt<pid in base 36>-<lab counter in base 36>` (at most 12 bytes for any Linux
//! pid and the first 1296 labs of a process). Namespaces are `<id>-<node>`, bridges `<id>b<p|s>`,
//! root-side veth ends `<id><slot><p|s>` where the slot is the member's index (1-9), `t` for the
//! targets or `c` for the client, and the temporary directory is `$TMPDIR/<id>`.

use std::sync::atomic::{AtomicU64, Ordering};

/// Prefix of every namespace, link and directory the harness creates.
pub(crate) const PREFIX: &str = "rdgt";

static LAB_COUNTER: AtomicU64 = AtomicU64::new(0);

/// A fresh lab id for this process.
pub(crate) fn new_lab_id() -> String {
    let n = LAB_COUNTER.fetch_add(1, Ordering::Relaxed);
    format!(
        "{PREFIX}{}-{}",
        base36(u64::from(std::process::id())),
        base36(n)
    )
}

/// Bridge of `net_suffix` (`'p'` or `'s'`).
pub(crate) fn bridge(lab: &str, net_suffix: char) -> String {
    checked(format!("{lab}b{net_suffix}"))
}

/// Root-namespace end of the veth pair of `slot` on the network `net_suffix`.
pub(crate) fn veth_root(lab: &str, slot: char, net_suffix: char) -> String {
    checked(format!("{lab}{slot}{net_suffix}"))
}

/// Namespace of the node `node` (a member name, `targets` or `client`).
pub(crate) fn netns(lab: &str, node: &str) -> String {
    format!("{lab}-{node}")
}

/// The pid of the process that created `name`, when `name` is one of ours.
pub(crate) fn owner_pid(name: &str) -> Option<u32> {
    let rest = name.strip_prefix(PREFIX)?;
    let pid = rest.split('-').next()?;
    u32::try_from(from_base36(pid)?).ok()
}

/// True when `name` was created by this process or by one that no longer runs.
pub(crate) fn is_stale(name: &str) -> bool {
    match owner_pid(name) {
        Some(pid) => {
            pid == std::process::id() || !std::path::Path::new(&format!("/proc/{pid}")).exists()
        }
        None => false,
    }
}

fn checked(name: String) -> String {
    assert!(name.len() <= 15, "interface name {name} is too long");
    name
}

fn base36(mut n: u64) -> String {
    const DIGITS: &[u8; 36] = b"0123456789abcdefghijklmnopqrstuvwxyz";
    let mut out = Vec::new();
    loop {
        out.push(DIGITS[(n % 36) as usize]);
        n /= 36;
        if n == 0 {
            break;
        }
    }
    out.reverse();
    String::from_utf8(out).expect("ASCII digits")
}

fn from_base36(s: &str) -> Option<u64> {
    if s.is_empty() {
        return None;
    }
    s.chars().try_fold(0u64, |acc, c| {
        acc.checked_mul(36)?.checked_add(u64::from(c.to_digit(36)?))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_fit_and_parse_back() {
        let id = format!("{PREFIX}{}-{}", base36(4_194_304), base36(1295));
        assert!(veth_root(&id, 't', 'p').len() <= 15);
        assert!(bridge(&id, 's').len() <= 15);
        assert_eq!(owner_pid(&netns(&id, "ics-a")), Some(4_194_304));
        assert_eq!(owner_pid(&veth_root(&id, '3', 's')), Some(4_194_304));
        assert_eq!(owner_pid("eth0"), None);
        assert!(is_stale(&new_lab_id()));
    }
}

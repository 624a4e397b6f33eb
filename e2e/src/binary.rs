//! Where the `rdg` binary under test is.

use std::path::PathBuf;

/// The `rdg` binary: `$RDG_BIN` when set, otherwise `rdg` in the target profile directory the
/// running executable was built into (tests run from `target/<profile>/deps/`, so this finds
/// `target/<profile>/rdg`). Panics with a hint when neither exists.
pub fn rdg_binary() -> PathBuf {
    if let Some(bin) = std::env::var_os("RDG_BIN") {
        let bin = PathBuf::from(bin);
        assert!(bin.is_file(), "RDG_BIN={} is not a file", bin.display());
        return bin;
    }
    let exe = std::env::current_exe().expect("the path of the running executable");
    for dir in exe.ancestors().skip(1) {
        let candidate = dir.join("rdg");
        if candidate.is_file() {
            return candidate;
        }
    }
    panic!(
        "no rdg binary found above {}; build it (`cargo build`) or set RDG_BIN",
        exe.display()
    )
}

//! Role file reader: `rdg_agent::role_file::read` only takes a path; it is `fs::read` +
//! `serde_json::from_slice::<RoleRecord>`. Every input goes through that same deserializer
//! on the bytes (the parse step of `read`, without file I/O); every 64th input is also written
//! to a temporary file and read with `read` itself, so the real entry point stays covered.
//! Invariants: `may_run` is only true for HS before the lease end; a parsed record
//! round-trips through JSON, and through `role_file::write` + `read` on the file path.
#![no_main]

use libfuzzer_sys::fuzz_target;
use rdg_agent::role_file::{self, RoleRecord};
use rdg_core::State;
use std::sync::atomic::{AtomicU64, Ordering};

static RUNS: AtomicU64 = AtomicU64::new(0);

fuzz_target!(|data: &[u8]| {
    let parsed = serde_json::from_slice::<RoleRecord>(data);
    if let Ok(r) = &parsed {
        for now in [
            0,
            r.lease_until_monotonic_ms.saturating_sub(1),
            r.lease_until_monotonic_ms,
            u64::MAX,
        ] {
            if r.may_run(now) {
                assert_eq!(r.role, State::HS);
                assert!(now < r.lease_until_monotonic_ms);
            }
        }
        let text = serde_json::to_vec(r).expect("a role record serializes");
        let back: RoleRecord =
            serde_json::from_slice(&text).expect("a serialized role record parses");
        assert_eq!(&back, r);
    }
    if RUNS.fetch_add(1, Ordering::Relaxed) % 64 == 0 {
        let dir = std::env::temp_dir().join(format!("rdg-fuzz-role-{}", std::process::id()));
        let _ = std::fs::create_dir_all(&dir);
        let path = dir.join("g.role");
        std::fs::write(&path, data).expect("write the temporary role file");
        let read = role_file::read(&path);
        assert_eq!(
            read.is_ok(),
            parsed.is_ok(),
            "read() and from_slice disagree"
        );
        if let (Ok(Some(a)), Ok(b)) = (&read, &parsed) {
            assert_eq!(a, b);
            role_file::write(&path, a).expect("rewrite the role file");
            let again = role_file::read(&path).expect("read the rewritten role file");
            assert_eq!(again.as_ref(), Some(a));
        }
        let _ = std::fs::remove_file(&path);
        let _ = std::fs::remove_dir(&dir);
    }
});

//! One lab at a time per process: the scenarios are timing-sensitive and share the machine.

use std::sync::{Mutex, MutexGuard};

static LAB_LOCK: Mutex<()> = Mutex::new(());

/// Takes the process-wide lab lock, waiting for the lab of another test to be dropped. A test
/// that panicked while holding it poisons nothing: its lab has been cleaned up by then.
pub(crate) fn acquire() -> MutexGuard<'static, ()> {
    LAB_LOCK
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

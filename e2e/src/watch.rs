//! Continuous checking of the one-hot-member rule while a scenario runs: a background thread
//! reads every role file every 10 ms.

use crate::role::{RoleRecord, monotonic_ms};
use std::collections::BTreeSet;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;

/// What a [`HotWatch`] saw.
#[derive(Debug, Clone, Default)]
pub struct HotReport {
    /// Moments when two or more role files said HS with running leases (first 20).
    pub overlaps: Vec<String>,
    /// Members whose role file said HS at some point (lease running or not).
    pub ever_hot: BTreeSet<String>,
    /// Number of passes over the role files.
    pub samples: u64,
}

impl HotReport {
    /// Panics when two members ever held a running HS lease at the same time.
    pub fn assert_never_two_hot(&self) {
        assert!(
            self.overlaps.is_empty(),
            "two hot members at once ({} of {} samples):\n{}",
            self.overlaps.len(),
            self.samples,
            self.overlaps.join("\n")
        );
    }

    /// Panics when `member`'s role file ever said HS.
    pub fn assert_never_hot(&self, member: &str) {
        assert!(
            !self.ever_hot.contains(member),
            "{member} was hot at some point ({} samples)",
            self.samples
        );
    }
}

/// A background thread checking, every 10 ms, that at most one role file says HS with a
/// running lease, and recording who was ever hot. Started by [`crate::Lab::watch_hot`]; stop it
/// with [`HotWatch::stop`] (dropping it stops it too).
pub struct HotWatch {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<HotReport>>,
}

impl HotWatch {
    pub(crate) fn start(role_files: Vec<(String, PathBuf)>) -> HotWatch {
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let thread = std::thread::spawn(move || {
            let mut report = HotReport::default();
            while !flag.load(Ordering::SeqCst) {
                report.samples += 1;
                let mut hot = Vec::new();
                for (name, path) in &role_files {
                    if let Some(r) = RoleRecord::read(path) {
                        let now = monotonic_ms();
                        if r.says_hot() {
                            report.ever_hot.insert(name.clone());
                        }
                        if r.hot_with_lease(now) {
                            hot.push(format!(
                                "{name} (epoch {}, lease until {}, now {now})",
                                r.epoch, r.lease_until_monotonic_ms
                            ));
                        }
                    }
                }
                if hot.len() > 1 && report.overlaps.len() < 20 {
                    report.overlaps.push(hot.join(" and "));
                }
                std::thread::sleep(Duration::from_millis(10));
            }
            report
        });
        HotWatch {
            stop,
            thread: Some(thread),
        }
    }

    /// Stops watching and returns what was seen.
    pub fn stop(mut self) -> HotReport {
        self.finish()
    }

    fn finish(&mut self) -> HotReport {
        self.stop.store(true, Ordering::SeqCst);
        self.thread
            .take()
            .and_then(|t| t.join().ok())
            .unwrap_or_default()
    }
}

impl Drop for HotWatch {
    fn drop(&mut self) {
        if self.thread.is_some() {
            self.finish();
        }
    }
}

impl crate::Lab {
    /// Starts watching every member's role file (see [`HotWatch`]).
    pub fn watch_hot(&self) -> HotWatch {
        HotWatch::start(
            self.member_names()
                .into_iter()
                .map(|m| {
                    let path = self.role_file(&m).to_path_buf();
                    (m, path)
                })
                .collect(),
        )
    }
}

//! What the fault schedule tells the checker: the fault in progress, and which members it
//! takes out of the group (dead, frozen, or cut off from the others), whose role files and
//! VIPs the one-owner rule therefore does not count.

use std::collections::BTreeSet;
use std::sync::Mutex;
use std::time::Instant;

/// Shared between the fault schedule (writer) and the checker (reader).
#[derive(Default)]
pub struct Situation {
    inner: Mutex<Inner>,
}

#[derive(Default, Clone)]
struct Inner {
    /// The fault in progress, e.g. `freeze ics-a`.
    fault: Option<String>,
    /// The last fault healed, and when its heal completed.
    last: Option<(String, Instant)>,
    /// Members the fault takes out of the group.
    out: BTreeSet<String>,
}

/// One reading of the situation.
#[derive(Clone)]
pub struct Snapshot {
    /// Members out of the group now.
    pub out: BTreeSet<String>,
    /// The fault in progress, or the last one healed and how long ago.
    pub fault: String,
}

impl Situation {
    /// A fault begins: `out` are out of the group from now on. Called before the fault is
    /// applied, so no sample sees its effect without knowing of it.
    pub fn begin(&self, fault: &str, out: &[String]) {
        let mut s = self.lock();
        s.fault = Some(fault.to_string());
        s.out = out.iter().cloned().collect();
    }

    /// The fault's heal has completed: every member counts again from now on.
    pub fn healed(&self) {
        let mut s = self.lock();
        if let Some(fault) = s.fault.take() {
            s.last = Some((fault, Instant::now()));
        }
        s.out.clear();
    }

    /// The situation now.
    pub fn snapshot(&self) -> Snapshot {
        let s = self.lock().clone();
        let fault = match (&s.fault, &s.last) {
            (Some(f), _) => f.clone(),
            (None, Some((f, at))) => format!("{} ms after {f}", at.elapsed().as_millis()),
            (None, None) => "none".into(),
        };
        Snapshot { out: s.out, fault }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }
}

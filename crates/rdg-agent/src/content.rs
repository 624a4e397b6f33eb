//! Watching this member's carousel for the comparison with the hot member's: a source (the
//! transmitter's object files, see `rdg_infocast::manifest`) is re-read on a blocking thread
//! once per [`POLL`], and every change goes to the agent loop, which hands it to the node.

use rdg_core::content::Manifest;
use std::fmt;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::mpsc;

/// How often the source is looked at: a stat per object file, a read only when one changed.
pub const POLL: Duration = Duration::from_secs(1);

/// Something that can tell what this member's carousel is now.
pub trait ContentSource: Send + 'static {
    /// The carousel as it would be sent now (re-reading what changed).
    fn manifest(&mut self) -> Manifest;
}

/// A shareable handle on a [`ContentSource`], as the agent's options carry it.
#[derive(Clone)]
pub struct ContentWatch(Arc<Mutex<dyn ContentSource>>);

impl fmt::Debug for ContentWatch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ContentWatch")
    }
}

impl ContentWatch {
    /// Wraps `source`.
    pub fn new(source: impl ContentSource) -> ContentWatch {
        ContentWatch(Arc::new(Mutex::new(source)))
    }

    /// The carousel now, read on the calling thread.
    pub fn manifest(&self) -> Manifest {
        // A panic while reading files leaves nothing half-updated that matters here.
        let mut source = self.0.lock().unwrap_or_else(|e| e.into_inner());
        source.manifest()
    }

    /// Sends the first manifest at once and each later change, reading on tokio's blocking
    /// pool so a large object file never stalls the agent loop. Ends when `tx` closes.
    pub fn spawn(self, tx: mpsc::Sender<Manifest>) {
        tokio::spawn(async move {
            let mut last: Option<Manifest> = None;
            let mut tick = tokio::time::interval(POLL);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tick.tick().await;
                let watch = self.clone();
                let Ok(now) = tokio::task::spawn_blocking(move || watch.manifest()).await else {
                    tracing::error!("reading the carousel for the content check failed");
                    continue;
                };
                if last.as_ref() == Some(&now) {
                    continue;
                }
                last = Some(now.clone());
                if tx.send(now).await.is_err() {
                    return;
                }
            }
        });
    }
}

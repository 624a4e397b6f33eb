//! Notify commands (like keepalived's notify scripts): on becoming hot, becoming standby,
//! crash (CS), network anomaly and recovery, run `COMMAND... EVENT GROUP MEMBER EPOCH REASON`.
//! Runs go through a queue to one background task, one at a time in event order, each bounded
//! by a timeout; the state machine only ever enqueues, so a slow script never delays a
//! failover. A full queue drops the notification and says so in the log.

use crate::metrics::Metrics;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;

/// Queued notifications beyond this are dropped (a script that hangs must not eat memory).
const QUEUE: usize = 64;

/// What happened, as the first argument of the notify command.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NotifyEvent {
    /// This member became hot.
    Hot,
    /// This member became standby (after being hot, starting, or crashed).
    Standby,
    /// Net check failed twice: this member is isolated (CS).
    Crashed,
    /// Net check passes again.
    CrashRecovered,
    /// A member is silent on one network only.
    Anomaly,
    /// The network of an earlier anomaly works again.
    AnomalyRecovered,
    /// The agent stopped (graceful shutdown).
    Stopped,
    /// Hot, but a VIP could not be added (address in use, interface gone).
    VipFailed,
    /// The carousel this member would send differs from the hot member's.
    ContentMismatch,
    /// The carousel again equals the hot member's.
    ContentConsistent,
}

impl NotifyEvent {
    /// The argument passed to the command.
    pub fn as_str(self) -> &'static str {
        match self {
            NotifyEvent::Hot => "hot",
            NotifyEvent::Standby => "standby",
            NotifyEvent::Crashed => "crashed",
            NotifyEvent::CrashRecovered => "crash-recovered",
            NotifyEvent::Anomaly => "anomaly",
            NotifyEvent::AnomalyRecovered => "anomaly-recovered",
            NotifyEvent::Stopped => "stopped",
            NotifyEvent::VipFailed => "vip-failed",
            NotifyEvent::ContentMismatch => "content-mismatch",
            NotifyEvent::ContentConsistent => "content-consistent",
        }
    }
}

/// One queued run.
#[derive(Debug)]
struct Job {
    event: NotifyEvent,
    epoch: u64,
    reason: String,
}

/// Handle to the notify queue; cheap to call from the agent loop.
#[derive(Debug)]
pub struct Notifier {
    tx: Option<mpsc::Sender<Job>>,
    task: Option<tokio::task::JoinHandle<()>>,
}

impl Notifier {
    /// A notifier that runs nothing (no `notify` in the configuration).
    pub fn disabled() -> Notifier {
        Notifier {
            tx: None,
            task: None,
        }
    }

    /// Starts the background task that runs `command` for every notification.
    pub fn start(
        command: Vec<String>,
        timeout: Duration,
        group: String,
        member: String,
        metrics: Arc<Metrics>,
    ) -> Notifier {
        let (tx, mut rx) = mpsc::channel::<Job>(QUEUE);
        let task = tokio::spawn(async move {
            while let Some(job) = rx.recv().await {
                run_one(&command, timeout, &group, &member, &job, &metrics).await;
            }
        });
        Notifier {
            tx: Some(tx),
            task: Some(task),
        }
    }

    /// Queues a notification; never waits.
    pub fn send(&self, event: NotifyEvent, epoch: u64, reason: impl Into<String>) {
        let Some(tx) = &self.tx else { return };
        let job = Job {
            event,
            epoch,
            reason: reason.into(),
        };
        if tx.try_send(job).is_err() {
            tracing::warn!(
                event = event.as_str(),
                "notify queue full (the notify command is too slow); notification dropped"
            );
        }
    }

    /// Waits (at most `limit`) until every queued notification has run; used at shutdown so the
    /// last notifications are not lost.
    pub async fn drain(mut self, limit: Duration) {
        // Closing the queue ends the task's loop after the last job.
        self.tx = None;
        if let Some(task) = self.task.take() {
            if tokio::time::timeout(limit, task).await.is_err() {
                tracing::warn!("notify commands still running at exit were abandoned");
            }
        }
    }
}

async fn run_one(
    command: &[String],
    timeout: Duration,
    group: &str,
    member: &str,
    job: &Job,
    metrics: &Metrics,
) {
    let Some((program, args)) = command.split_first() else {
        return;
    };
    let epoch = job.epoch.to_string();
    let mut cmd = tokio::process::Command::new(program);
    cmd.args(args)
        .args([job.event.as_str(), group, member, &epoch, &job.reason])
        .stdin(std::process::Stdio::null())
        .kill_on_drop(true);
    let event = job.event.as_str();
    let mut child = match cmd.spawn() {
        Ok(c) => c,
        Err(e) => {
            metrics.notify_failures.inc();
            tracing::error!(event, program = %program, error = %e, "notify command cannot start");
            return;
        }
    };
    match tokio::time::timeout(timeout, child.wait()).await {
        Ok(Ok(status)) if status.success() => {
            tracing::debug!(event, "notify command done");
        }
        Ok(Ok(status)) => {
            metrics.notify_failures.inc();
            tracing::warn!(event, %status, "notify command failed");
        }
        Ok(Err(e)) => {
            metrics.notify_failures.inc();
            tracing::warn!(event, error = %e, "notify command could not be waited for");
        }
        Err(_) => {
            metrics.notify_failures.inc();
            let _ = child.kill().await;
            tracing::warn!(
                event,
                timeout_ms = timeout.as_millis() as u64,
                "notify command timed out and was killed"
            );
        }
    }
}

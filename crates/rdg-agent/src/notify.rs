//! Notify commands (like keepalived's notify scripts): on becoming hot, becoming standby,
//! crash (CS), network anomaly and recovery, run `COMMAND... EVENT GROUP MEMBER EPOCH REASON`.
//! Runs go through a queue to one background task, one at a time in event order, each bounded
//! by a timeout; the state machine only ever enqueues, so a slow script never delays a
//! failover. A full queue drops the notification and says so in the log.
//!
//! Notification mails ([`email`]) have a queue and a task of their own, so a slow SMTP server
//! delays neither the command nor the state machine.

pub mod email;

use crate::metrics::Metrics;
use email::{EmailError, Mailer};
use rdg_core::config::Notify;
use std::sync::Arc;
use std::time::{Duration, SystemTime};
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

/// What a notification knows beyond the command's arguments; shown in mails only, so the
/// command's argv stays `EVENT GROUP MEMBER EPOCH REASON`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Details {
    /// Hot: the member that was hot before, if one was known.
    pub previous_hot: Option<String>,
    /// Hot after a takeover: how long the previous hot member was silent before it was declared
    /// lost.
    pub detection: Option<Duration>,
    /// Standby: this member was hot until now (it handed the role over or gave it up).
    pub was_hot: bool,
    /// Standby after hot: why the role was released (`handover to ics-b`, `lease-expired`).
    pub released: Option<String>,
}

/// One queued notification.
#[derive(Debug, Clone)]
pub struct Job {
    /// What happened.
    pub event: NotifyEvent,
    /// Epoch this member knew.
    pub epoch: u64,
    /// Short reason, the command's last argument.
    pub reason: String,
    /// Extra facts for mails.
    pub details: Details,
    /// When it happened (wall clock), shown in mails.
    pub at: SystemTime,
}

/// A queue and the background task that works it off.
#[derive(Debug)]
struct Queue {
    tx: Option<mpsc::Sender<Job>>,
    task: Option<tokio::task::JoinHandle<()>>,
    /// `notify command` or `notify mail`, for the log.
    what: &'static str,
}

impl Queue {
    fn push(&self, job: Job) {
        let Some(tx) = &self.tx else { return };
        let event = job.event.as_str();
        if tx.try_send(job).is_err() {
            tracing::warn!(
                event,
                "{} queue full (the {} is too slow); notification dropped",
                self.what,
                self.what
            );
        }
    }

    async fn drain(mut self, limit: Duration) {
        // Closing the queue ends the task's loop after the last job.
        self.tx = None;
        if let Some(task) = self.task.take() {
            if tokio::time::timeout(limit, task).await.is_err() {
                tracing::warn!("{} still running at exit abandoned", self.what);
            }
        }
    }
}

/// Least time a mail at shutdown gets (connect, TLS, login, transfer), whatever the drain
/// limit of the command.
const MAIL_DRAIN_MIN: Duration = Duration::from_secs(5);

/// Handle to the notify queues (command, mail); cheap to call from the agent loop.
#[derive(Debug)]
pub struct Notifier {
    command: Option<Queue>,
    email: Option<Queue>,
}

impl Notifier {
    /// A notifier that runs nothing (no `notify` in the configuration).
    pub fn disabled() -> Notifier {
        Notifier {
            command: None,
            email: None,
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
            command: Some(Queue {
                tx: Some(tx),
                task: Some(task),
                what: "notify command",
            }),
            email: None,
        }
    }

    /// Starts what `notify` configures: the command's task (when a command is given) and the
    /// mail task (when `email` is). Fails when the mail settings cannot be used (credentials
    /// file unreadable or open to others, bad address, CA file unreadable).
    pub fn from_config(
        notify: &Notify,
        group: &str,
        member: &str,
        metrics: Arc<Metrics>,
    ) -> Result<Notifier, EmailError> {
        let mailer = match &notify.email {
            Some(e) => Some(Mailer::new(e, group, member, Arc::clone(&metrics))?),
            None => None,
        };
        let mut n = if notify.command.is_empty() {
            Notifier::disabled()
        } else {
            Notifier::start(
                notify.command.clone(),
                notify.timeout.get(),
                group.to_string(),
                member.to_string(),
                metrics,
            )
        };
        n.email = mailer.map(Notifier::mail_queue);
        Ok(n)
    }

    /// A notifier that only mails, through `mailer`.
    pub fn with_mailer(mailer: Mailer) -> Notifier {
        Notifier {
            command: None,
            email: Some(Notifier::mail_queue(mailer)),
        }
    }

    fn mail_queue(mailer: Mailer) -> Queue {
        let (tx, rx) = mpsc::channel::<Job>(QUEUE);
        Queue {
            tx: Some(tx),
            task: Some(tokio::spawn(mailer.run(rx))),
            what: "notify mail",
        }
    }

    /// Queues a notification; never waits.
    pub fn send(&self, event: NotifyEvent, epoch: u64, reason: impl Into<String>) {
        self.send_with(event, epoch, reason, Details::default());
    }

    /// Queues a notification with facts for the mail; never waits.
    pub fn send_with(
        &self,
        event: NotifyEvent,
        epoch: u64,
        reason: impl Into<String>,
        details: Details,
    ) {
        if self.command.is_none() && self.email.is_none() {
            return;
        }
        let job = Job {
            event,
            epoch,
            reason: reason.into(),
            details,
            at: SystemTime::now(),
        };
        if let Some(q) = &self.email {
            q.push(job.clone());
        }
        if let Some(q) = &self.command {
            q.push(job);
        }
    }

    /// Waits (at most `limit`, a mail at least 5 s) until every queued notification has run or
    /// been mailed; used at shutdown so the last notifications are not lost. Mails collected by
    /// the rate limit go out at once.
    pub async fn drain(self, limit: Duration) {
        let command = async {
            if let Some(q) = self.command {
                q.drain(limit).await;
            }
        };
        let email = async {
            if let Some(q) = self.email {
                q.drain(limit.max(MAIL_DRAIN_MIN)).await;
            }
        };
        tokio::join!(command, email);
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

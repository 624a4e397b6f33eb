//! Notification mails (`notify.email`): one task sends them over SMTP (lettre, rustls), fed by
//! the notifier's queue, so the state machine never waits for a mail server.
//!
//! Rate limit: the first event after a quiet spell waits [`GATHER`] (1 s) for the events that
//! come with it (a takeover's `hot` and `vip-failed`), then goes out. Events after a mail wait
//! until `minInterval` has passed since it and then go out together: one event as its own mail,
//! several as ONE summary mail listing them all (at most [`MAX_LISTED`], the rest counted). So a
//! flapping member sends at most one mail per `minInterval`, never a storm. A mail that fails
//! for a passing reason (server down, timeout, 4xx) is logged, counted and its events are tried
//! again with the next window, up to [`ATTEMPTS`] times; a refusal (5xx) is not retried. At
//! shutdown whatever is collected goes out at once.

use super::{Job, NotifyEvent};
use crate::metrics::Metrics;
use crate::private_file::{PrivateReadError, read_owner_only};
use lettre::message::header::ContentType;
use lettre::message::{Mailbox, Mailboxes};
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Certificate, Tls, TlsParameters};
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use rdg_core::config::{NotifyEmail, SmtpSecurity};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime};
use tokio::sync::mpsc;
use tokio::time::Instant;

/// How long the first event after a quiet spell waits for the events that come with it.
pub const GATHER: Duration = Duration::from_secs(1);
/// Most events one summary mail lists; further ones are only counted.
pub const MAX_LISTED: usize = 100;
/// Times the events of a mail that failed for a passing reason are tried in all.
pub const ATTEMPTS: u32 = 3;

/// Why the mail settings cannot be used; the agent does not start.
#[derive(Debug, thiserror::Error)]
pub enum EmailError {
    /// A file could not be read.
    #[error("{key} {path}: {source}")]
    Io {
        /// The configuration key naming the file.
        key: &'static str,
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The credentials file may be read by others than its owner.
    #[error(
        "notify.email.credentialsFile {path} is accessible to group or others (mode {mode:o}); \
         run `chmod 600 {path}`"
    )]
    Permissions {
        /// The file.
        path: PathBuf,
        /// Its permission bits.
        mode: u32,
    },
    /// The credentials file does not hold a user and a password.
    #[error(
        "notify.email.credentialsFile {path}: {why} (expected `user:password` on one line, or \
         the user on the first line and the password on the second)"
    )]
    Credentials {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        why: &'static str,
    },
    /// An address is not a mailbox.
    #[error("{key}: {value:?} is not a mail address: {source}")]
    Address {
        /// The configuration key.
        key: String,
        /// The value.
        value: String,
        /// Why.
        source: lettre::address::AddressError,
    },
    /// The TLS settings (CA file) cannot be used.
    #[error("{key}: {source}")]
    Tls {
        /// The configuration key.
        key: &'static str,
        /// Why.
        source: lettre::transport::smtp::Error,
    },
}

/// SMTP login read from `credentialsFile`; its `Debug` never shows the password.
#[derive(Clone, PartialEq, Eq)]
pub struct Login {
    /// User name.
    pub user: String,
    password: String,
}

impl std::fmt::Debug for Login {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Login({:?}, <redacted>)", self.user)
    }
}

impl Login {
    /// Parses `user:password` on one line, or the user and the password on two lines (for a
    /// user name holding a colon); surrounding blank lines and line ends are ignored.
    pub fn parse(text: &str) -> Result<Login, &'static str> {
        let lines: Vec<&str> = text
            .lines()
            .map(|l| l.trim_end_matches('\r'))
            .filter(|l| !l.trim().is_empty())
            .collect();
        let (user, password) = match lines.as_slice() {
            [] => return Err("the file is empty"),
            [one] => one
                .split_once(':')
                .ok_or("one line without a colon between user and password")?,
            [user, password] => (*user, *password),
            _ => return Err("more than two lines"),
        };
        let user = user.trim();
        if user.is_empty() {
            return Err("the user is empty");
        }
        if password.is_empty() {
            return Err("the password is empty");
        }
        Ok(Login {
            user: user.to_string(),
            password: password.to_string(),
        })
    }

    /// Reads the login from `path`, which must be readable by its owner only.
    pub fn read(path: &Path) -> Result<Login, EmailError> {
        let text = read_owner_only(path).map_err(|e| match e {
            PrivateReadError::Io(source) => EmailError::Io {
                key: "notify.email.credentialsFile",
                path: path.to_path_buf(),
                source,
            },
            PrivateReadError::Exposed(mode) => EmailError::Permissions {
                path: path.to_path_buf(),
                mode,
            },
        })?;
        Login::parse(&text).map_err(|why| EmailError::Credentials {
            path: path.to_path_buf(),
            why,
        })
    }
}

/// Builds and sends the mails of one member; [`Mailer::run`] is its task.
pub struct Mailer {
    transport: AsyncSmtpTransport<Tokio1Executor>,
    /// `server:port (security)`, for the log.
    server: String,
    from: Mailbox,
    to: Vec<Mailbox>,
    prefix: String,
    group: String,
    member: String,
    host: String,
    timeout: Duration,
    min_interval: Duration,
    metrics: Arc<Metrics>,
}

impl std::fmt::Debug for Mailer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Mailer")
            .field("server", &self.server)
            .field("from", &self.from)
            .field("to", &self.to)
            .finish_non_exhaustive()
    }
}

/// The lettre TLS mode of a security setting (the certificate checked against `server`).
pub fn tls_mode(
    security: SmtpSecurity,
    server: &str,
    ca_file: Option<&Path>,
) -> Result<Tls, EmailError> {
    if security == SmtpSecurity::None {
        return Ok(Tls::None);
    }
    let mut params = TlsParameters::builder(server.to_string());
    if let Some(path) = ca_file {
        let pem = std::fs::read(path).map_err(|source| EmailError::Io {
            key: "notify.email.caFile",
            path: path.to_path_buf(),
            source,
        })?;
        let cert = Certificate::from_pem(&pem).map_err(|source| EmailError::Tls {
            key: "notify.email.caFile",
            source,
        })?;
        params = params.add_root_certificate(cert);
    }
    let params = params.build_rustls().map_err(|source| EmailError::Tls {
        key: "notify.email",
        source,
    })?;
    Ok(match security {
        SmtpSecurity::Starttls => Tls::Required(params),
        SmtpSecurity::Tls => Tls::Wrapper(params),
        SmtpSecurity::None => Tls::None,
    })
}

impl Mailer {
    /// Reads the credentials and CA files and parses the addresses; sends nothing yet.
    pub fn new(
        cfg: &NotifyEmail,
        group: &str,
        member: &str,
        metrics: Arc<Metrics>,
    ) -> Result<Mailer, EmailError> {
        let mailbox = |key: String, value: &str| {
            value
                .trim()
                .parse::<Mailbox>()
                .map_err(|source| EmailError::Address {
                    key,
                    value: value.to_string(),
                    source,
                })
        };
        let from = mailbox("notify.email.from".into(), &cfg.from)?;
        let to = cfg
            .to
            .iter()
            .enumerate()
            .map(|(i, t)| mailbox(format!("notify.email.to[{i}]"), t))
            .collect::<Result<Vec<_>, _>>()?;
        let port = cfg.effective_port();
        let tls = tls_mode(
            cfg.security,
            &cfg.server,
            cfg.ca_file.as_deref().map(Path::new),
        )?;
        let timeout = cfg.timeout.get();
        let mut builder = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(&cfg.server)
            .port(port)
            .tls(tls)
            .timeout(Some(timeout));
        if let Some(path) = &cfg.credentials_file {
            let login = Login::read(Path::new(path))?;
            builder = builder.credentials(Credentials::new(login.user, login.password));
        }
        let host = nix::unistd::gethostname()
            .ok()
            .and_then(|h| h.into_string().ok())
            .unwrap_or_else(|| "unknown".into());
        Ok(Mailer {
            transport: builder.build(),
            server: format!("{}:{port} ({})", cfg.server, cfg.security.as_str()),
            from,
            to,
            prefix: cfg.subject_prefix.clone(),
            group: group.to_string(),
            member: member.to_string(),
            host,
            timeout,
            min_interval: cfg.min_interval.get(),
            metrics,
        })
    }

    /// Works off the queue until it is closed, then sends what is still collected.
    pub async fn run(self, mut rx: mpsc::Receiver<Job>) {
        let mut pending: Vec<Job> = Vec::new();
        // Events beyond MAX_LISTED since the last mail, only counted.
        let mut unlisted = 0usize;
        let mut last_mail: Option<Instant> = None;
        let mut due: Option<Instant> = None;
        let mut failed_attempts = 0u32;
        loop {
            let closed = tokio::select! {
                job = rx.recv() => match job {
                    Some(job) => {
                        if mailed(&job) {
                            if pending.len() < MAX_LISTED {
                                pending.push(job);
                            } else {
                                unlisted += 1;
                            }
                            if due.is_none() {
                                let gather = Instant::now() + GATHER.min(self.min_interval);
                                let window = last_mail.map(|t| t + self.min_interval);
                                due = Some(window.map_or(gather, |w| w.max(gather)));
                            }
                        }
                        false
                    }
                    None => true,
                },
                () = sleep_until(due) => false,
            };
            let now = Instant::now();
            if pending.is_empty() || !(closed || due.is_some_and(|d| d <= now)) {
                if closed {
                    return;
                }
                continue;
            }
            let jobs = std::mem::take(&mut pending);
            let extra = std::mem::take(&mut unlisted);
            due = None;
            last_mail = Some(now);
            match self.send(&jobs, extra).await {
                Ok(()) => failed_attempts = 0,
                Err(retry) => {
                    failed_attempts += 1;
                    if retry && failed_attempts < ATTEMPTS && !closed {
                        // Tried again with the next window, ahead of newer events.
                        let newer = std::mem::replace(&mut pending, jobs);
                        pending.extend(newer);
                        let over = pending.len().saturating_sub(MAX_LISTED);
                        pending.truncate(MAX_LISTED);
                        unlisted = extra + over;
                        due = Some(now + self.min_interval);
                    } else {
                        tracing::error!(
                            events = jobs.len() + extra,
                            attempts = failed_attempts,
                            "notification mail given up; its events are only in the log"
                        );
                        failed_attempts = 0;
                    }
                }
            }
            if closed {
                return;
            }
        }
    }

    /// Sends one mail for `jobs` (a summary when there are several); Err(true) when it failed
    /// for a passing reason and may be tried again.
    async fn send(&self, jobs: &[Job], unlisted: usize) -> Result<(), bool> {
        let events: Vec<&str> = jobs.iter().map(|j| j.event.as_str()).collect();
        let message = match self.message(jobs, unlisted) {
            Ok(m) => m,
            Err(e) => {
                self.metrics.notify_email_failures.inc();
                tracing::warn!(error = %e, ?events, "notification mail could not be built");
                return Err(false);
            }
        };
        match tokio::time::timeout(self.timeout, self.transport.send(message)).await {
            Ok(Ok(response)) => {
                self.metrics.notify_emails_sent.inc();
                tracing::info!(
                    server = %self.server,
                    ?events,
                    response = %response.message().collect::<Vec<_>>().join(" "),
                    "notification mail sent"
                );
                Ok(())
            }
            Ok(Err(e)) => {
                self.metrics.notify_email_failures.inc();
                tracing::warn!(
                    server = %self.server,
                    ?events,
                    error = %e,
                    "notification mail failed"
                );
                Err(!e.is_permanent())
            }
            Err(_) => {
                self.metrics.notify_email_failures.inc();
                tracing::warn!(
                    server = %self.server,
                    ?events,
                    timeout_ms = self.timeout.as_millis() as u64,
                    "notification mail timed out"
                );
                Err(true)
            }
        }
    }

    /// The mail for `jobs`: headers and plain-text body.
    pub fn message(&self, jobs: &[Job], unlisted: usize) -> Result<Message, lettre::error::Error> {
        let (subject, body) = self.text(jobs, unlisted);
        let mut to = Mailboxes::new();
        for t in &self.to {
            to.push(t.clone());
        }
        Message::builder()
            .from(self.from.clone())
            .mailbox(lettre::message::header::To::from(to))
            .subject(subject)
            .date(SystemTime::now())
            .message_id(None)
            .header(ContentType::TEXT_PLAIN)
            .body(body)
    }

    /// Subject and body of the mail for `jobs` (one event, or a summary of several).
    pub fn text(&self, jobs: &[Job], unlisted: usize) -> (String, String) {
        let who = format!("{}/{}", self.group, self.member);
        let mut body = String::new();
        let subject = match jobs {
            [job] if unlisted == 0 => {
                body.push_str(&self.describe(job));
                format!("{} {who}: {}", self.prefix, summary(job))
            }
            _ => {
                let n = jobs.len() + unlisted;
                let _ = writeln!(
                    body,
                    "{n} events on {who} (host {}) since the last mail,\noldest first:\n",
                    self.host
                );
                for (i, job) in jobs.iter().enumerate() {
                    let _ = writeln!(body, "{}. {}", i + 1, summary(job));
                }
                if unlisted > 0 {
                    let _ = writeln!(body, "... and {unlisted} more (see the agent's log)");
                }
                for job in jobs {
                    body.push('\n');
                    body.push_str(&self.describe(job));
                }
                let last = jobs.last().map(summary).unwrap_or_default();
                format!("{} {who}: {n} events, last: {last}", self.prefix)
            }
        };
        // Lines stay short, so the body goes as plain 7-bit text.
        let _ = write!(
            body,
            "\n-- \nrdg agent of {who}. Events within {} of a mail\nare summed up in the \
             next one.\n",
            humantime::format_duration(self.min_interval)
        );
        (subject, body)
    }

    /// One event as labelled lines.
    fn describe(&self, job: &Job) -> String {
        let mut s = String::new();
        let mut line = |k: &str, v: &str| {
            let _ = writeln!(s, "{:<20} {v}", format!("{k}:"));
        };
        line("Event", job.event.as_str());
        line("What", &summary(job));
        line("Group", &self.group);
        line("Member", &self.member);
        line("Host", &self.host);
        line("Epoch", &job.epoch.to_string());
        line("Reason", &job.reason);
        line(
            "Time",
            &humantime::format_rfc3339_millis(job.at).to_string(),
        );
        let d = &job.details;
        if job.event == NotifyEvent::Hot {
            line(
                "Previous hot member",
                d.previous_hot.as_deref().unwrap_or("none known"),
            );
            if let Some(t) = d.detection {
                line("Detection time", &format!("{} ms", t.as_millis()));
            }
        }
        if let Some(r) = &d.released {
            line("Released because", r);
        }
        s
    }
}

/// True for the events that are mailed: all but a standby that was not hot before (start-up,
/// recovery: the other mails cover those).
fn mailed(job: &Job) -> bool {
    job.event != NotifyEvent::Standby || job.details.was_hot
}

/// One line on what happened, for subjects and summaries.
pub fn summary(job: &Job) -> String {
    let d = &job.details;
    match job.event {
        NotifyEvent::Hot => {
            let mut s = format!("became hot ({}", job.reason);
            if let Some(p) = &d.previous_hot {
                let _ = write!(s, " from {p}");
            }
            if let Some(t) = d.detection {
                let _ = write!(s, ", lost after {} ms", t.as_millis());
            }
            s.push(')');
            s
        }
        NotifyEvent::Standby => match &d.released {
            Some(r) if r.starts_with("handover") || r == "shutdown" => {
                format!("handed the hot role over ({r})")
            }
            Some(r) => format!("gave up the hot role ({r}), now standby"),
            None => "gave up the hot role, now standby".into(),
        },
        NotifyEvent::Crashed => "crashed (CS): net check failed, isolated".into(),
        NotifyEvent::CrashRecovered => "recovered from CS: net check passes again".into(),
        NotifyEvent::Anomaly => format!("network anomaly: {}", job.reason),
        NotifyEvent::AnomalyRecovered => format!("network anomaly over: {}", job.reason),
        NotifyEvent::Stopped => "agent stopped".into(),
        NotifyEvent::VipFailed => format!("VIP failed: {}", job.reason),
        NotifyEvent::ContentMismatch => "carousel differs from the hot member's".into(),
        NotifyEvent::ContentConsistent => "carousel equals the hot member's again".into(),
    }
}

async fn sleep_until(due: Option<Instant>) {
    match due {
        Some(t) => tokio::time::sleep_until(t).await,
        None => std::future::pending().await,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::notify::Details;
    use std::os::unix::fs::PermissionsExt;

    fn job(event: NotifyEvent, reason: &str, details: Details) -> Job {
        Job {
            event,
            epoch: 7,
            reason: reason.into(),
            details,
            at: SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000),
        }
    }

    fn cfg(security: SmtpSecurity) -> NotifyEmail {
        serde_yaml_ng::from_str::<NotifyEmail>(&format!(
            "{{server: smtp.example.com, security: {}, from: 'rdg <rdg@example.com>', to: \
             [ops@example.com, 'On call <oncall@example.com>']}}",
            security.as_str()
        ))
        .unwrap()
    }

    #[test]
    fn login_files_take_one_or_two_lines() {
        let l = Login::parse("alice:s3cr:et\n").unwrap();
        assert_eq!((l.user.as_str(), l.password.as_str()), ("alice", "s3cr:et"));
        let l = Login::parse("dom\\user:x\n\r\npass word\r\n").unwrap();
        assert_eq!(
            (l.user.as_str(), l.password.as_str()),
            ("dom\\user:x", "pass word")
        );
        assert_eq!(format!("{l:?}"), "Login(\"dom\\\\user:x\", <redacted>)");
        for (bad, why) in [
            ("", "empty"),
            ("alice", "colon"),
            (":pw", "user is empty"),
            ("alice:", "password is empty"),
            ("a\nb\nc", "more than two"),
        ] {
            assert!(Login::parse(bad).unwrap_err().contains(why), "{bad:?}");
        }
    }

    #[test]
    fn a_credentials_file_open_to_others_is_refused() {
        let dir = std::env::temp_dir().join(format!("rdg-mail-login-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("smtp");
        std::fs::write(&path, "alice:pw\n").unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o640)).unwrap();
        let e = Login::read(&path).unwrap_err().to_string();
        assert!(e.contains("chmod 600") && e.contains("640"), "{e}");
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
        assert_eq!(Login::read(&path).unwrap().user, "alice");
        let e = Login::read(&dir.join("missing")).unwrap_err().to_string();
        assert!(e.starts_with("notify.email.credentialsFile"), "{e}");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn security_selects_port_and_tls_mode() {
        let c = cfg(SmtpSecurity::Starttls);
        assert_eq!(c.effective_port(), 587);
        assert!(matches!(
            tls_mode(c.security, &c.server, None).unwrap(),
            Tls::Required(_)
        ));
        let c = cfg(SmtpSecurity::Tls);
        assert_eq!(c.effective_port(), 465);
        assert!(matches!(
            tls_mode(c.security, &c.server, None).unwrap(),
            Tls::Wrapper(_)
        ));
        let mut c = cfg(SmtpSecurity::None);
        assert_eq!(c.effective_port(), 25);
        assert!(matches!(
            tls_mode(c.security, &c.server, None).unwrap(),
            Tls::None
        ));
        c.port = Some(2525);
        assert_eq!(c.effective_port(), 2525);
        let default: NotifyEmail =
            serde_yaml_ng::from_str("{server: s, from: a@example.com, to: [b@example.com]}")
                .unwrap();
        assert_eq!(default.security, SmtpSecurity::Starttls);
        assert_eq!(default.subject_prefix, "[rdg]");
        let e = tls_mode(
            SmtpSecurity::Tls,
            "s",
            Some(Path::new("/nonexistent/ca.pem")),
        )
        .unwrap_err();
        assert!(e.to_string().starts_with("notify.email.caFile"), "{e}");
    }

    #[tokio::test]
    async fn subjects_and_bodies_name_the_event_and_its_facts() {
        let m = Mailer::new(
            &cfg(SmtpSecurity::None),
            "infocast",
            "ics-b",
            Arc::new(Metrics::new()),
        )
        .unwrap();
        let hot = job(
            NotifyEvent::Hot,
            "takeover",
            Details {
                previous_hot: Some("ics-a".into()),
                detection: Some(Duration::from_millis(512)),
                ..Details::default()
            },
        );
        let (subject, body) = m.text(std::slice::from_ref(&hot), 0);
        assert_eq!(
            subject,
            "[rdg] infocast/ics-b: became hot (takeover from ics-a, lost after 512 ms)"
        );
        for want in [
            "Event:               hot",
            "Previous hot member: ics-a",
            "Detection time:      512 ms",
            "Epoch:               7",
            "Time:                2027-01-15T08:00:00.000Z",
        ] {
            assert!(body.contains(want), "{want:?} missing in\n{body}");
        }
        let handover = job(
            NotifyEvent::Standby,
            "from HS",
            Details {
                was_hot: true,
                released: Some("handover to ics-c".into()),
                ..Details::default()
            },
        );
        assert!(mailed(&handover));
        assert!(!mailed(&job(
            NotifyEvent::Standby,
            "from SS",
            Details::default()
        )));
        assert_eq!(
            summary(&handover),
            "handed the hot role over (handover to ics-c)"
        );
        let vip = job(
            NotifyEvent::VipFailed,
            "10.0.0.1/24: in use",
            Details::default(),
        );
        let (subject, body) = m.text(&[hot, handover, vip], 2);
        assert_eq!(
            subject,
            "[rdg] infocast/ics-b: 5 events, last: VIP failed: 10.0.0.1/24: in use"
        );
        assert!(
            body.starts_with("5 events on infocast/ics-b (host "),
            "{body}"
        );
        assert!(body.contains("3. VIP failed"), "{body}");
        assert!(body.contains("and 2 more"), "{body}");
        let raw = String::from_utf8(
            m.message(
                &[job(NotifyEvent::Stopped, "shutdown", Details::default())],
                0,
            )
            .unwrap()
            .formatted(),
        )
        .unwrap();
        for want in [
            "From: rdg <rdg@example.com>",
            "To: ops@example.com, \"On call\" <oncall@example.com>",
            "Subject: [rdg] infocast/ics-b: agent stopped",
            "Date: ",
            "Message-ID: <",
        ] {
            assert!(raw.contains(want), "{want:?} missing in\n{raw}");
        }
    }
}

//! Notification mails against a real SMTP server (aiosmtpd on loopback, security none): the
//! headers and body of each event's mail, a burst summed up in one mail, the rate limit's
//! window flushed at shutdown, and failures (refused, server down, retried once it is back)
//! counted in the metrics and logged with the server's error; STARTTLS and SMTPS with a CA of
//! the test's own (`caFile`), and a certificate nobody vouches for refused.

mod smtp;

use rdg_agent::metrics::Metrics;
use rdg_agent::notify::email::Mailer;
use rdg_agent::notify::{Details, Notifier, NotifyEvent};
use rdg_core::config::NotifyEmail;
use smtp::SmtpServer;
use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const WAIT: Duration = Duration::from_secs(20);

fn settings(port: u16, min_interval: &str) -> NotifyEmail {
    serde_yaml_ng::from_str(&format!(
        "{{server: 127.0.0.1, port: {port}, security: none, from: 'rdg <rdg@example.com>', \
         to: [ops@example.com, 'On call <oncall@example.com>'], subjectPrefix: '[rdg-test]', \
         minInterval: {min_interval}, timeout: 5s}}"
    ))
    .unwrap()
}

fn notifier(port: u16, min_interval: &str) -> (Notifier, Arc<Metrics>) {
    let metrics = Arc::new(Metrics::new());
    let mailer = Mailer::new(
        &settings(port, min_interval),
        "infocast",
        "ics-b",
        Arc::clone(&metrics),
    )
    .unwrap();
    (Notifier::with_mailer(mailer), metrics)
}

/// Log lines of the current thread (the tests run the mail task on it), for assertions.
#[derive(Clone, Default)]
struct Log(Arc<Mutex<Vec<u8>>>);

impl Write for Log {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Log {
    fn capture() -> (Log, tracing::subscriber::DefaultGuard) {
        let log = Log::default();
        let writer = log.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_ansi(false)
            .with_writer(move || writer.clone())
            .finish();
        (log, tracing::subscriber::set_default(subscriber))
    }

    fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap()).into_owned()
    }
}

fn hot_after_takeover() -> Details {
    Details {
        previous_hot: Some("ics-a".into()),
        detection: Some(Duration::from_millis(512)),
        ..Details::default()
    }
}

#[tokio::test]
async fn each_event_mails_its_facts_and_a_burst_is_one_summary() {
    let Some(server) = SmtpServer::start("each-event", &[]) else {
        return;
    };
    let (n, metrics) = notifier(server.addr.port(), "1s");

    // A standby that was not hot (start-up) mails nothing; the takeover does.
    n.send(NotifyEvent::Standby, 6, "from SS");
    n.send_with(NotifyEvent::Hot, 7, "takeover", hot_after_takeover());
    let mails = server.wait_for(1, WAIT).await;
    let hot = &mails[0];
    assert_eq!(
        hot.header("Subject"),
        "[rdg-test] infocast/ics-b: became hot (takeover from ics-a, lost after 512 ms)"
    );
    assert_eq!(hot.header("From"), "rdg <rdg@example.com>");
    assert_eq!(
        hot.header("To"),
        "ops@example.com, \"On call\" <oncall@example.com>"
    );
    assert_eq!(
        hot.header("X-RcptTo"),
        "ops@example.com, oncall@example.com"
    );
    assert!(hot.header("Content-Type").starts_with("text/plain"));
    assert_eq!(hot.header("Content-Transfer-Encoding"), "7bit");
    let id = hot.header("Message-ID");
    assert!(
        id.starts_with('<') && id.ends_with('>') && id.contains('@'),
        "{id}"
    );
    let date = hot.header("Date");
    assert!(date.ends_with("+0000") || date.ends_with("GMT"), "{date}");
    for want in [
        "Event:               hot\n",
        "Group:               infocast\n",
        "Member:              ics-b\n",
        "Epoch:               7\n",
        "Reason:              takeover\n",
        "Previous hot member: ics-a\n",
        "Detection time:      512 ms\n",
        "Host:                ",
        "Time:                20",
    ] {
        assert!(hot.body.contains(want), "{want:?} missing in\n{}", hot.body);
    }

    // One mail per event when they come a window apart.
    let singles: [(NotifyEvent, &str, Details, &str); 4] = [
        (
            NotifyEvent::Standby,
            "from HS",
            Details {
                was_hot: true,
                released: Some("handover to ics-c".into()),
                ..Details::default()
            },
            "handed the hot role over (handover to ics-c)",
        ),
        (
            NotifyEvent::Crashed,
            "net-check-failed",
            Details::default(),
            "crashed (CS): net check failed, isolated",
        ),
        (
            NotifyEvent::VipFailed,
            "10.0.0.100/24: address in use",
            Details::default(),
            "VIP failed: 10.0.0.100/24: address in use",
        ),
        (
            NotifyEvent::ContentMismatch,
            "objects differ",
            Details::default(),
            "carousel differs from the hot member's",
        ),
    ];
    for (i, (event, reason, details, what)) in singles.into_iter().enumerate() {
        n.send_with(event, 8, reason, details);
        let mails = server.wait_for(i + 2, WAIT).await;
        let m = &mails[i + 1];
        assert_eq!(
            m.header("Subject"),
            format!("[rdg-test] infocast/ics-b: {what}")
        );
        let line = format!("Event:               {}\n", event.as_str());
        assert!(m.body.contains(&line), "{line:?} missing in\n{}", m.body);
        assert!(m.body.contains(&format!("Reason:              {reason}\n")));
    }
    assert!(mails_body(&server, 1).contains("Released because:    handover to ics-c\n"));

    // A burst: six events at once make ONE mail that lists them all.
    n.send(NotifyEvent::Anomaly, 8, "ics-a silent on secondary");
    n.send(NotifyEvent::AnomalyRecovered, 8, "ics-a heard on secondary");
    n.send(NotifyEvent::CrashRecovered, 8, "net-check-ok");
    n.send(NotifyEvent::ContentConsistent, 8, "objects equal");
    n.send(NotifyEvent::VipFailed, 8, "10.0.0.101/24: interface gone");
    n.send(NotifyEvent::Hot, 9, "election");
    let mails = server.wait_for(6, WAIT).await;
    let summary = &mails[5];
    assert_eq!(
        summary.header("Subject"),
        "[rdg-test] infocast/ics-b: 6 events, last: became hot (election)"
    );
    for want in [
        "6 events on infocast/ics-b (host ",
        "1. network anomaly: ics-a silent on secondary\n",
        "2. network anomaly over: ics-a heard on secondary\n",
        "3. recovered from CS: net check passes again\n",
        "4. carousel equals the hot member's again\n",
        "5. VIP failed: 10.0.0.101/24: interface gone\n",
        "6. became hot (election)\n",
        "Event:               content-consistent\n",
        "Previous hot member: none known\n",
    ] {
        assert!(
            summary.body.contains(want),
            "{want:?} missing in\n{}",
            summary.body
        );
    }
    n.drain(Duration::from_secs(5)).await;
    assert_eq!(server.messages().len(), 6, "no mail beyond the summary");
    assert_eq!(metrics.notify_emails_sent.get(), 6);
    assert_eq!(metrics.notify_email_failures.get(), 0);
    let text = metrics.encode();
    assert!(text.contains("rdg_notify_emails_sent_total 6"), "{text}");
    assert!(text.contains("rdg_notify_email_failures_total 0"), "{text}");
}

fn mails_body(server: &SmtpServer, i: usize) -> String {
    server.messages()[i].body.clone()
}

#[tokio::test]
async fn shutdown_sends_what_the_rate_limit_holds_back() {
    let Some(server) = SmtpServer::start("shutdown", &[]) else {
        return;
    };
    // A window of ten minutes: only the drain can send the stop mail in time.
    let (n, metrics) = notifier(server.addr.port(), "10m");
    n.send(NotifyEvent::Crashed, 3, "net-check-failed");
    server.wait_for(1, WAIT).await;
    n.send(NotifyEvent::Stopped, 3, "shutdown");
    let start = Instant::now();
    n.drain(Duration::from_secs(2)).await;
    assert!(
        start.elapsed() < Duration::from_secs(5),
        "{:?}",
        start.elapsed()
    );
    let mails = server.wait_for(2, Duration::from_secs(2)).await;
    assert_eq!(
        mails[1].header("Subject"),
        "[rdg-test] infocast/ics-b: agent stopped"
    );
    assert_eq!(metrics.notify_emails_sent.get(), 2);
}

#[tokio::test]
async fn a_refused_mail_is_counted_and_logged_with_the_servers_error() {
    // Messages over 100 bytes are refused (552, permanent: not tried again).
    let Some(server) = SmtpServer::start("refused", &["-s", "100"]) else {
        return;
    };
    let (log, _guard) = Log::capture();
    let (n, metrics) = notifier(server.addr.port(), "1s");
    n.send(NotifyEvent::Crashed, 3, "net-check-failed");
    let deadline = Instant::now() + WAIT;
    while metrics.notify_email_failures.get() == 0 {
        assert!(
            Instant::now() < deadline,
            "no failure counted: {}",
            log.text()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    n.drain(Duration::from_secs(5)).await;
    assert_eq!(metrics.notify_email_failures.get(), 1, "{}", log.text());
    assert_eq!(metrics.notify_emails_sent.get(), 0);
    assert!(server.messages().is_empty());
    let text = log.text();
    assert!(
        text.contains("WARN") && text.contains("notification mail failed"),
        "{text}"
    );
    assert!(
        text.contains("552"),
        "the server's answer is logged: {text}"
    );
    assert!(text.contains("given up"), "{text}");
}

#[tokio::test]
async fn a_server_that_is_down_counts_a_failure_and_gets_the_mail_once_it_is_back() {
    let port = smtp::free_port();
    let (log, _guard) = Log::capture();
    // Retried after 3 s, then 6 s: time enough for the server to start.
    let (n, metrics) = notifier(port, "3s");
    n.send(NotifyEvent::VipFailed, 4, "10.0.0.100/24: address in use");
    let deadline = Instant::now() + WAIT;
    while metrics.notify_email_failures.get() == 0 {
        assert!(
            Instant::now() < deadline,
            "no failure counted: {}",
            log.text()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(
        log.text().contains("notification mail failed"),
        "{}",
        log.text()
    );
    assert_eq!(metrics.notify_emails_sent.get(), 0);
    // The server comes up on that port: the next window sends the event after all.
    let Some(server) = SmtpServer::start_on("down", port, &[]) else {
        n.drain(Duration::from_secs(1)).await;
        return;
    };
    let mails = server.wait_for(1, WAIT).await;
    assert_eq!(
        mails[0].header("Subject"),
        "[rdg-test] infocast/ics-b: VIP failed: 10.0.0.100/24: address in use"
    );
    n.drain(Duration::from_secs(5)).await;
    assert_eq!(metrics.notify_emails_sent.get(), 1);
    assert!(metrics.notify_email_failures.get() >= 1);
}

/// A CA and a certificate for 127.0.0.1 and `localhost` signed by it, as PEM files in `dir`:
/// `ca.crt`, `server.crt`, `server.key`.
fn write_pki(dir: &std::path::Path) {
    use rcgen::{
        BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair, KeyUsagePurpose,
        SanType,
    };
    let ca_key = KeyPair::generate().unwrap();
    let mut ca = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca.distinguished_name
        .push(DnType::CommonName, "rdg mail test CA");
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    let ca_cert = ca.self_signed(&ca_key).unwrap();
    let issuer = Issuer::new(ca, ca_key);
    let key = KeyPair::generate().unwrap();
    let mut server = CertificateParams::new(vec!["localhost".to_string()]).unwrap();
    server
        .subject_alt_names
        .push(SanType::IpAddress("127.0.0.1".parse().unwrap()));
    let cert = server.signed_by(&key, &issuer).unwrap();
    std::fs::write(dir.join("ca.crt"), ca_cert.pem()).unwrap();
    std::fs::write(dir.join("server.crt"), cert.pem()).unwrap();
    std::fs::write(dir.join("server.key"), key.serialize_pem()).unwrap();
}

#[tokio::test]
async fn starttls_and_smtps_check_the_servers_certificate() {
    let pki = std::env::temp_dir().join(format!("rdg-mail-pki-{}", std::process::id()));
    std::fs::create_dir_all(&pki).unwrap();
    write_pki(&pki);
    let (crt, key, ca) = (
        pki.join("server.crt"),
        pki.join("server.key"),
        pki.join("ca.crt"),
    );
    let (crt, key) = (crt.to_str().unwrap(), key.to_str().unwrap());
    // STARTTLS: aiosmtpd refuses MAIL before it (require_starttls), so a mail proves TLS.
    let Some(starttls) = SmtpServer::start("starttls", &["--tlscert", crt, "--tlskey", key]) else {
        return;
    };
    let smtps = SmtpServer::start("smtps", &["--smtpscert", crt, "--smtpskey", key]).unwrap();
    for (server, security, ca_file) in [
        (&starttls, "starttls", Some(&ca)),
        (&smtps, "tls", Some(&ca)),
        (&smtps, "tls", None),
    ] {
        let mut cfg = settings(server.addr.port(), "1s");
        cfg.security = serde_yaml_ng::from_str(security).unwrap();
        cfg.ca_file = ca_file.map(|p| p.display().to_string());
        let metrics = Arc::new(Metrics::new());
        let (log, _guard) = Log::capture();
        let n = Notifier::with_mailer(
            Mailer::new(&cfg, "infocast", "ics-b", Arc::clone(&metrics)).unwrap(),
        );
        let before = server.messages().len();
        n.send(NotifyEvent::Crashed, 5, "net-check-failed");
        n.drain(Duration::from_secs(10)).await;
        if ca_file.is_some() {
            let mails = server.wait_for(before + 1, WAIT).await;
            assert_eq!(
                mails[before].header("Subject"),
                "[rdg-test] infocast/ics-b: crashed (CS): net check failed, isolated",
                "{security}"
            );
            assert_eq!(
                metrics.notify_emails_sent.get(),
                1,
                "{security}: {}",
                log.text()
            );
        } else {
            // Without the CA the certificate is vouched for by nobody: refused, counted.
            assert_eq!(metrics.notify_email_failures.get(), 1, "{}", log.text());
            assert_eq!(metrics.notify_emails_sent.get(), 0);
            assert!(
                log.text().to_lowercase().contains("certificate"),
                "{}",
                log.text()
            );
            assert_eq!(server.messages().len(), before);
        }
    }
    let _ = std::fs::remove_dir_all(&pki);
}

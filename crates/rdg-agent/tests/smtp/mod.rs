//! A real SMTP server for the mail tests: Debian's aiosmtpd on loopback, each message stored in
//! a Maildir. Without aiosmtpd a test says so loudly and passes (fails under CI, which installs
//! it).

use std::collections::BTreeMap;
use std::io::Write;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A running aiosmtpd; killed on drop.
pub struct SmtpServer {
    child: Child,
    /// Where it listens.
    pub addr: SocketAddr,
    /// Its Maildir.
    pub dir: PathBuf,
}

/// A Python that can import aiosmtpd (Debian's, where python3-aiosmtpd puts it, first).
fn python() -> Option<&'static str> {
    ["/usr/bin/python3", "python3"].into_iter().find(|p| {
        Command::new(p)
            .args(["-c", "import aiosmtpd"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    })
}

/// A loopback port nobody listens on now.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

impl SmtpServer {
    /// Starts aiosmtpd storing messages in a fresh Maildir named after `test`, with `extra`
    /// arguments (`-s 10`: refuse messages over 10 bytes). None (after a loud SKIPPED line)
    /// without aiosmtpd, unless CI is set.
    pub fn start(test: &str, extra: &[&str]) -> Option<SmtpServer> {
        SmtpServer::start_on(test, free_port(), extra)
    }

    /// [`SmtpServer::start`] on a given loopback port.
    pub fn start_on(test: &str, port: u16, extra: &[&str]) -> Option<SmtpServer> {
        let Some(python) = python() else {
            assert!(
                std::env::var_os("CI").is_none(),
                "{test}: aiosmtpd is missing, but .ci/run installs python3-aiosmtpd"
            );
            let _ = writeln!(
                std::io::stderr(),
                "\n!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!\n\
                 SKIPPED: {test} needs aiosmtpd (apt-get install python3-aiosmtpd)\n\
                 !!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!"
            );
            return None;
        };
        let dir = std::env::temp_dir().join(format!("rdg-mail-{test}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let addr: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
        let child = Command::new(python)
            .args(["-m", "aiosmtpd", "-n", "-l", &addr.to_string()])
            .args(extra)
            .args(["-c", "aiosmtpd.handlers.Mailbox"])
            .arg(dir.join("Maildir"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(dir.join("server.log")).unwrap())
            .spawn()
            .expect("aiosmtpd starts");
        let mut server = SmtpServer { child, addr, dir };
        let deadline = Instant::now() + Duration::from_secs(20);
        while TcpStream::connect(addr).is_err() {
            if let Some(status) = server.child.try_wait().unwrap() {
                panic!("aiosmtpd exited ({status}): {}", server.log());
            }
            assert!(
                Instant::now() < deadline,
                "aiosmtpd does not listen on {addr}: {}",
                server.log()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        Some(server)
    }

    /// The server's own output.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("server.log")).unwrap_or_default()
    }

    /// The messages received so far, oldest first.
    pub fn messages(&self) -> Vec<Mail> {
        let new = self.dir.join("Maildir/new");
        let mut files: Vec<(std::time::SystemTime, PathBuf)> = std::fs::read_dir(&new)
            .map(|d| {
                d.filter_map(Result::ok)
                    .map(|e| (e.metadata().unwrap().modified().unwrap(), e.path()))
                    .collect()
            })
            .unwrap_or_default();
        files.sort();
        files.iter().map(|(_, p)| Mail::read(p)).collect()
    }

    /// Waits (at most `limit`) until `n` messages arrived; all of them. Async, so the tasks of
    /// a current-thread runtime go on meanwhile.
    #[allow(dead_code)]
    pub async fn wait_for(&self, n: usize, limit: Duration) -> Vec<Mail> {
        let deadline = Instant::now() + limit;
        loop {
            if let Some(m) = self.arrived(n, deadline, limit) {
                return m;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// [`SmtpServer::wait_for`] for a test without a runtime.
    #[allow(dead_code)]
    pub fn wait_for_blocking(&self, n: usize, limit: Duration) -> Vec<Mail> {
        let deadline = Instant::now() + limit;
        loop {
            if let Some(m) = self.arrived(n, deadline, limit) {
                return m;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn arrived(&self, n: usize, deadline: Instant, limit: Duration) -> Option<Vec<Mail>> {
        let m = self.messages();
        if m.len() >= n {
            return Some(m);
        }
        assert!(
            Instant::now() < deadline,
            "{} of {n} mails after {limit:?}: {:#?}\n{}",
            m.len(),
            m.iter().map(|m| m.header("Subject")).collect::<Vec<_>>(),
            self.log()
        );
        None
    }
}

impl Drop for SmtpServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// One received message: headers (unfolded, by lower-case name) and body.
#[derive(Debug, Clone)]
pub struct Mail {
    /// Header name (lower case) to its values.
    pub headers: BTreeMap<String, Vec<String>>,
    /// The body, line ends as `\n`.
    pub body: String,
}

/// Decodes a quoted-printable body (soft line breaks, `=XX`).
fn quoted_printable(text: &str) -> String {
    let joined = text.replace("=\n", "");
    let bytes = joined.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = bytes
            .get(i + 1..i + 3)
            .and_then(|h| std::str::from_utf8(h).ok())
            .and_then(|h| u8::from_str_radix(h, 16).ok());
        match (bytes[i], hex) {
            (b'=', Some(b)) => {
                out.push(b);
                i += 3;
            }
            (b, _) => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

impl Mail {
    fn read(path: &Path) -> Mail {
        let raw = std::fs::read_to_string(path).unwrap().replace("\r\n", "\n");
        let (head, body) = raw.split_once("\n\n").unwrap_or((&raw, ""));
        let mut headers: BTreeMap<String, Vec<String>> = BTreeMap::new();
        let unfolded = head.replace("\n ", " ").replace("\n\t", " ");
        for line in unfolded.lines() {
            let (k, v) = line.split_once(':').expect("header line");
            headers
                .entry(k.trim().to_ascii_lowercase())
                .or_default()
                .push(v.trim().to_string());
        }
        let qp = headers
            .get("content-transfer-encoding")
            .is_some_and(|v| v.iter().any(|v| v.eq_ignore_ascii_case("quoted-printable")));
        let body = if qp {
            quoted_printable(body)
        } else {
            body.to_string()
        };
        Mail { headers, body }
    }

    /// The one value of header `name`; panics when it is missing or repeated.
    pub fn header(&self, name: &str) -> &str {
        match self
            .headers
            .get(&name.to_ascii_lowercase())
            .map(Vec::as_slice)
        {
            Some([v]) => v,
            other => panic!("header {name}: {other:?} in {self:#?}"),
        }
    }
}

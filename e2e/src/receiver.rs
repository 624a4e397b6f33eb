//! A set-top box in the client namespace: `rdg receive --json` on the lab's carousel channel,
//! joined on the client's primary address. The lab starts it before the group so it hears
//! the first chunk; [`Receiver::finish`] stops it (SIGINT, after which it prints its report)
//! and returns the JSON.

use crate::config::Net;
use crate::lab::Lab;
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use serde_json::Value;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A running `rdg receive` (killed when dropped without [`Receiver::finish`]).
pub struct Receiver {
    child: Option<Child>,
    report: PathBuf,
    log: PathBuf,
}

impl Lab {
    /// Starts `rdg receive --channel <carousel> --interface <client> --json` in the client
    /// namespace (the lab must have a client and a carousel). Its report goes to `<label>.json`
    /// in the lab directory, its log to `<label>.log`.
    pub fn start_receiver(&self, label: &str) -> Receiver {
        let carousel = self
            .config()
            .carousel
            .as_ref()
            .expect("the lab's config has a carousel");
        let report = self.dir().join(format!("{label}.json"));
        let log = self.dir().join(format!("{label}.log"));
        let file = |p: &PathBuf| std::fs::File::create(p).expect("create a receiver file");
        let child = Command::new("ip")
            .args(["netns", "exec", self.client_netns()])
            .arg(self.rdg())
            .args(["receive", "--json", "--channel", &carousel.channel()])
            .args(["--interface", &Net::Primary.client().to_string()])
            .stdin(Stdio::null())
            .stdout(file(&report))
            .stderr(file(&log))
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start rdg receive: {e}"));
        Receiver {
            child: Some(child),
            report,
            log,
        }
    }
}

impl Receiver {
    /// Stops the receiver with SIGINT and returns its JSON report.
    pub fn finish(mut self) -> Result<Value, String> {
        let mut child = self.child.take().expect("running");
        // `ip netns exec` execs the command, so the child is `rdg receive` itself.
        let _ = kill(Pid::from_raw(child.id() as i32), Signal::SIGINT);
        let deadline = Instant::now() + Duration::from_secs(10);
        let status = loop {
            match child.try_wait() {
                Ok(Some(status)) => break status,
                Ok(None) if Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(20));
                }
                _ => {
                    let _ = child.kill();
                    return Err("rdg receive did not stop within 10 s of SIGINT".into());
                }
            }
        };
        let log = std::fs::read_to_string(&self.log).unwrap_or_default();
        if !status.success() {
            return Err(format!("rdg receive exited with {status}: {log}"));
        }
        let text = std::fs::read_to_string(&self.report).map_err(|e| e.to_string())?;
        serde_json::from_str(&text).map_err(|e| format!("receiver report {text:?}: {e}; {log}"))
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

//! keepalived, the tool rdg replaces, run in the lab's member namespaces for comparison: one
//! VRRPv3 instance per member on its primary interface, at the same advertisement rate as rdg's
//! heartbeat, all starting as BACKUP with nopreempt and rdg's priorities, one VIP
//! (10.0.0.100/24). Each instance runs in the foreground (`-n`, logging to its console, which is
//! a file in the lab directory) with its own pid files, so instances never collide with each
//! other or with a keepalived of the host.
//!
//! Every process started here is its own process group leader; [`Instances`] kills the groups
//! when dropped (the lab, dropped later, also kills whatever is left in its namespaces).

use nix::sys::signal::{Signal, kill, killpg};
use nix::unistd::Pid;
use rdg_e2e::{Lab, Net};
use std::fs::File;
use std::os::unix::process::CommandExt;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The virtual IP the instances fight over.
pub const VIP: &str = "10.0.0.100";
/// The VRRP router id (any value 1–255 not used elsewhere on the lab's bridges).
const VRID: u8 = 35;

/// `keepalived --version`'s first line, or why keepalived cannot be run.
pub fn version() -> Result<String, String> {
    let out = Command::new("keepalived")
        .arg("--version")
        .output()
        .map_err(|e| format!("keepalived is not installed ({e}); apt-get install -y keepalived"))?;
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    Ok(text.lines().next().unwrap_or_default().trim().to_string())
}

/// The running keepalived instances, one per member.
pub struct Instances {
    procs: Vec<(String, Child)>,
}

/// keepalived.conf for one member.
fn config(router: &str, priority: u16, advert: Duration) -> String {
    // VRRPv3 counts the advertisement interval in centiseconds; keepalived takes seconds.
    let advert = format!("{:.2}", advert.as_secs_f64());
    let interface = Net::Primary.interface();
    format!(
        "global_defs {{\n\
         \x20   router_id {router}\n\
         \x20   vrrp_version 3\n\
         \x20   enable_script_security\n\
         }}\n\
         vrrp_instance rdgbench {{\n\
         \x20   state BACKUP\n\
         \x20   nopreempt\n\
         \x20   interface {interface}\n\
         \x20   virtual_router_id {VRID}\n\
         \x20   priority {priority}\n\
         \x20   advert_int {advert}\n\
         \x20   virtual_ipaddress {{\n\
         \x20       {VIP}/24 dev {interface}\n\
         \x20   }}\n\
         }}\n"
    )
}

impl Instances {
    /// Starts one instance per member of `lab` at one advertisement per `advert`, with the
    /// members' rdg priorities (1–254 in VRRP).
    pub fn start(lab: &Lab, advert: Duration) -> Result<Instances, String> {
        let mut instances = Instances { procs: Vec::new() };
        for m in &lab.config().members {
            let name = &m.name;
            let conf = lab.dir().join(format!("keepalived-{name}.conf"));
            std::fs::write(&conf, config(name, m.priority.clamp(1, 254), advert))
                .map_err(|e| format!("write {}: {e}", conf.display()))?;
            let child = spawn(lab, name)?;
            instances.procs.push((name.clone(), child));
        }
        Ok(instances)
    }

    /// SIGKILLs `member`'s instance (its whole process group, as a host death would): the VIP,
    /// if it held it, stays on its interface.
    pub fn kill_member(&mut self, member: &str) {
        if let Some(i) = self.procs.iter().position(|(m, _)| m == member) {
            let (_, mut child) = self.procs.remove(i);
            if matches!(child.try_wait(), Ok(None)) {
                let pid = Pid::from_raw(child.id() as i32);
                let _ = killpg(pid, Signal::SIGKILL);
                let _ = kill(pid, Signal::SIGKILL);
            }
            let _ = child.wait();
        }
    }

    /// Starts `member`'s instance again (after [`Instances::kill_member`]) with the
    /// configuration written by [`Instances::start`].
    pub fn restart_member(&mut self, lab: &Lab, member: &str) -> Result<(), String> {
        self.kill_member(member);
        // Stale pid files of the killed instance (keepalived would check whether they run).
        for ext in ["pid", "vrrp.pid", "checkers.pid", "bfd.pid"] {
            let _ = std::fs::remove_file(lab.dir().join(format!("keepalived-{member}.{ext}")));
        }
        let child = spawn(lab, member)?;
        self.procs.push((member.to_string(), child));
        Ok(())
    }

    /// The parent keepalived process of each member (`ip netns exec` execs it in place).
    pub fn roots(&self) -> Vec<(String, i32)> {
        self.procs
            .iter()
            .map(|(m, c)| (m.clone(), c.id() as i32))
            .collect()
    }

    /// Fails when an instance has exited.
    pub fn check_running(&mut self) -> Result<(), String> {
        for (m, child) in &mut self.procs {
            if let Ok(Some(status)) = child.try_wait() {
                return Err(format!("keepalived of {m} exited: {status}"));
            }
        }
        Ok(())
    }

    /// Waits until exactly one member holds the VIP and all instances run; that member.
    pub fn wait_master(&mut self, lab: &Lab, timeout: Duration) -> Result<String, String> {
        let start = Instant::now();
        loop {
            crate::check_interrupted()?;
            self.check_running()?;
            let holders = vip_holders(lab);
            if let [one] = holders.as_slice() {
                return Ok(one.clone());
            }
            if start.elapsed() >= timeout {
                return Err(format!(
                    "keepalived: VIP held by {holders:?} after {timeout:?} (logs in {})",
                    lab.dir().display()
                ));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Stops every instance: SIGTERM (keepalived releases the VIP), SIGKILL to the process
    /// group of any still running after 3 s.
    pub fn stop(mut self) {
        for (_, child) in &self.procs {
            let _ = kill(Pid::from_raw(child.id() as i32), Signal::SIGTERM);
        }
        let end = Instant::now() + Duration::from_secs(3);
        while Instant::now() < end
            && self
                .procs
                .iter_mut()
                .any(|(_, c)| matches!(c.try_wait(), Ok(None)))
        {
            std::thread::sleep(Duration::from_millis(20));
        }
        self.kill_all();
    }

    fn kill_all(&mut self) {
        for (_, child) in &mut self.procs {
            // Only a child not yet reaped: its pid (and so its process group id) cannot have
            // been reused. The group takes the VRRP child along. (A parent that exited on
            // SIGTERM has waited for its children; anything else left dies with the lab.)
            if matches!(child.try_wait(), Ok(None)) {
                let pid = Pid::from_raw(child.id() as i32);
                let _ = killpg(pid, Signal::SIGKILL);
                let _ = kill(pid, Signal::SIGKILL);
                let _ = child.wait();
            }
        }
        self.procs.clear();
    }
}

impl Drop for Instances {
    fn drop(&mut self) {
        self.kill_all();
    }
}

/// Starts `name`'s instance with the configuration file [`Instances::start`] wrote, in the
/// foreground, as its own process group leader, logging to a file in the lab directory.
fn spawn(lab: &Lab, name: &str) -> Result<Child, String> {
    let file = |ext: &str| lab.dir().join(format!("keepalived-{name}.{ext}"));
    let log = File::options()
        .create(true)
        .append(true)
        .open(file("log"))
        .map_err(|e| format!("keepalived log: {e}"))?;
    let err = log
        .try_clone()
        .map_err(|e| format!("keepalived log: {e}"))?;
    Command::new("ip")
        .args(["netns", "exec", lab.netns(name), "keepalived", "-f"])
        .arg(file("conf"))
        .arg("-p")
        .arg(file("pid"))
        .arg("-r")
        .arg(file("vrrp.pid"))
        .arg("-c")
        .arg(file("checkers.pid"))
        .arg("-b")
        .arg(file("bfd.pid"))
        .args(["-n", "-l", "-D", "-G"])
        .stdin(Stdio::null())
        .stdout(log)
        .stderr(err)
        .process_group(0)
        .spawn()
        .map_err(|e| format!("cannot start keepalived for {name}: {e}"))
}

/// Members whose primary interface holds the VIP.
pub fn vip_holders(lab: &Lab) -> Vec<String> {
    lab.member_names()
        .into_iter()
        .filter(|m| {
            Command::new("ip")
                .args(["-n", lab.netns(m), "-o", "-4", "addr", "show", "dev"])
                .arg(Net::Primary.interface())
                .output()
                .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).contains(&format!(" {VIP}/")))
        })
        .collect()
}

//! The lab: one isolated world of network namespaces per test, and its clean-up.
//!
//! The loopback counterpart, without root, namespaces or multicast, is
//! `rdg_agent::local_group::LocalGroup` (`rdg demo --real` and the root crate's `tests/agent.rs`).

use crate::config::{GroupConfig, Net};
use crate::shell::{ip, must, run};
use crate::{binary, lock, names};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Child;
use std::sync::atomic::AtomicBool;
use std::sync::{Mutex, MutexGuard};

/// A group member's place in the lab.
#[derive(Debug)]
pub(crate) struct MemberSlot {
    /// Its name in the group.
    pub(crate) name: String,
    /// 1-based index: its address slot.
    pub(crate) index: usize,
    /// Its network namespace.
    pub(crate) netns: String,
    /// Root-namespace veth ends (bridge ports), primary then secondary.
    pub(crate) ports: [String; 2],
    /// Its configuration file (the group's, with its own role file).
    pub(crate) config: PathBuf,
    /// Its role file.
    pub(crate) role_file: PathBuf,
    /// Its agent's stdout and stderr.
    pub(crate) log: PathBuf,
}

/// A process the lab started (an agent, or a helper such as `rdg gate`).
#[derive(Debug)]
pub(crate) struct Process {
    /// The member name for agents, a free label for helpers.
    pub(crate) label: String,
    /// The child (its own process group leader).
    pub(crate) child: Child,
    /// Where its output goes.
    pub(crate) log: PathBuf,
}

/// One test's world: a namespace per member, one for the net-check targets (10.0.0.1 and
/// 192.168.100.1) and optionally one for a client (10.0.0.50 and 192.168.100.50), joined by a
/// bridge per network in the root namespace; the group configuration written per member; the
/// agents and helper processes started in it.
///
/// Dropping the lab (also during a panic) kills every process it started, deletes its
/// namespaces, bridges and veths and removes its temporary directory (kept when
/// `RDG_E2E_KEEP` is set). When dropped during a panic it first prints the tail of every log.
pub struct Lab {
    pub(crate) id: String,
    pub(crate) dir: PathBuf,
    /// Where the role files live: a directory on tmpfs (`/dev/shm`) when there is one, as
    /// `/run` is on a real host; else `dir`. On a disk file system a rename can stall for tens
    /// of milliseconds on a busy machine and let a hot member's lease lapse for a moment.
    pub(crate) run_dir: PathBuf,
    pub(crate) config: GroupConfig,
    pub(crate) members: Vec<MemberSlot>,
    pub(crate) targets_netns: String,
    pub(crate) client_netns: Option<String>,
    pub(crate) rdg: PathBuf,
    /// Every namespace created, for clean-up.
    namespaces: Vec<String>,
    /// Every bridge and root-side veth end created, for clean-up.
    links: Vec<String>,
    /// The running agent of each member.
    pub(crate) agents: Mutex<HashMap<String, Process>>,
    /// Helper processes.
    pub(crate) helpers: Mutex<Vec<Process>>,
    /// Set once the logs have been dumped (by a timed-out wait), so a panic dumps them once.
    pub(crate) dumped: AtomicBool,
    /// Held for the lab's whole life; dropped after the clean-up in `Drop`.
    _lock: MutexGuard<'static, ()>,
}

impl Lab {
    /// A lab for `config`'s members and the net-check targets. Waits for any other lab of this
    /// process to be dropped first, and sweeps leftovers of crashed earlier runs.
    pub fn new(config: GroupConfig) -> Lab {
        Lab::build(config, false)
    }

    /// [`Lab::new`] plus a client namespace (10.0.0.50, 192.168.100.50).
    pub fn with_client(config: GroupConfig) -> Lab {
        Lab::build(config, true)
    }

    fn build(config: GroupConfig, client: bool) -> Lab {
        assert!(
            (1..=9).contains(&config.members.len()),
            "a lab holds 1 to 9 members"
        );
        let guard = lock::acquire();
        sweep_leftovers();
        let rdg = binary::rdg_binary();
        let id = names::new_lab_id();
        let dir = std::env::temp_dir().join(&id);
        std::fs::create_dir_all(&dir).expect("create the lab directory");
        let run_dir = memory_dir(&id).unwrap_or_else(|| dir.clone());
        let members = config
            .members
            .iter()
            .enumerate()
            .map(|(i, m)| MemberSlot {
                name: m.name.clone(),
                index: i + 1,
                netns: names::netns(&id, &m.name),
                ports: Net::BOTH
                    .map(|net| names::veth_root(&id, char::from(b'1' + i as u8), net.suffix())),
                config: dir.join(format!("{}.yaml", m.name)),
                role_file: run_dir.join(format!("{}.role", m.name)),
                log: dir.join(format!("{}.log", m.name)),
            })
            .collect();
        let mut lab = Lab {
            targets_netns: names::netns(&id, "targets"),
            client_netns: client.then(|| names::netns(&id, "client")),
            id,
            dir,
            run_dir,
            config,
            members,
            rdg,
            namespaces: Vec::new(),
            links: Vec::new(),
            agents: Mutex::new(HashMap::new()),
            helpers: Mutex::new(Vec::new()),
            dumped: AtomicBool::new(false),
            _lock: guard,
        };
        // From here on a panic drops `lab`, which removes whatever was created so far.
        lab.create_topology();
        lab.write_configs();
        lab
    }

    fn create_topology(&mut self) {
        for net in Net::BOTH {
            let bridge = names::bridge(&self.id, net.suffix());
            self.links.push(bridge.clone());
            ip(&[
                "link",
                "add",
                &bridge,
                "type",
                "bridge",
                "mcast_snooping",
                "0",
            ]);
            ip(&["link", "set", &bridge, "up"]);
        }
        let mut nodes: Vec<(String, char, u8)> = self
            .members
            .iter()
            .map(|m| {
                (
                    m.netns.clone(),
                    char::from(b'0' + m.index as u8),
                    10 + m.index as u8,
                )
            })
            .collect();
        nodes.push((self.targets_netns.clone(), 't', 1));
        if let Some(client) = &self.client_netns {
            nodes.push((client.clone(), 'c', 50));
        }
        for (netns, slot, host) in nodes {
            self.add_node(&netns, slot, host);
        }
    }

    /// A namespace with `lo` up and one veth per network, its inner end named after the network
    /// (`eth-p`, `eth-s`) holding `.host`, its outer end a port of the network's bridge.
    fn add_node(&mut self, netns: &str, slot: char, host: u8) {
        ip(&["netns", "add", netns]);
        self.namespaces.push(netns.to_string());
        ip(&["-n", netns, "link", "set", "lo", "up"]);
        for net in Net::BOTH {
            let port = names::veth_root(&self.id, slot, net.suffix());
            let inner = net.interface();
            ip(&[
                "link", "add", &port, "type", "veth", "peer", "name", inner, "netns", netns,
            ]);
            self.links.push(port.clone());
            let bridge = names::bridge(&self.id, net.suffix());
            ip(&["link", "set", &port, "master", &bridge, "up"]);
            let address = format!("{}/24", net.host(host));
            ip(&["-n", netns, "addr", "add", &address, "dev", inner]);
            ip(&["-n", netns, "link", "set", inner, "up"]);
        }
    }

    /// Writes the key file and every member's configuration, and has `rdg check-config`
    /// validate one of them (a harness mistake then fails here, readably).
    fn write_configs(&self) {
        let key_file = self.config.auth_key.as_ref().map(|key| {
            let path = self.dir.join("group.key");
            std::fs::write(&path, key).expect("write the key file");
            path
        });
        if let Some(c) = &self.config.carousel {
            for (i, (name, _)) in c.objects.iter().enumerate() {
                std::fs::write(self.dir.join(name), c.object_bytes(i))
                    .expect("write a carousel object");
            }
        }
        for m in &self.members {
            let yaml = self
                .config
                .render(&m.role_file, key_file.as_deref(), &self.dir);
            std::fs::write(&m.config, yaml).expect("write a member configuration");
        }
        if let Some(first) = self.members.first() {
            let config = first.config.to_string_lossy().into_owned();
            let rdg = self.rdg.to_string_lossy().into_owned();
            if let Err(e) = run(&rdg, &["check-config", &config], None) {
                panic!(
                    "the lab's configuration is invalid: {e}\n{}",
                    std::fs::read_to_string(&first.config).unwrap_or_default()
                );
            }
        }
    }

    /// The lab's temporary directory (configurations, role files, logs).
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The group configuration the agents run with.
    pub fn config(&self) -> &GroupConfig {
        &self.config
    }

    /// The `rdg` binary under test.
    pub fn rdg(&self) -> &Path {
        &self.rdg
    }

    /// Names of the group's members, in configuration order.
    pub fn member_names(&self) -> Vec<String> {
        self.members.iter().map(|m| m.name.clone()).collect()
    }

    /// The network namespace of `member`.
    pub fn netns(&self, member: &str) -> &str {
        &self.slot(member).netns
    }

    /// The namespace holding the net-check targets (10.0.0.1, 192.168.100.1).
    pub fn targets_netns(&self) -> &str {
        &self.targets_netns
    }

    /// The client namespace (10.0.0.50, 192.168.100.50); panics when the lab has none.
    pub fn client_netns(&self) -> &str {
        self.client_netns
            .as_deref()
            .expect("this lab was created without a client (use Lab::with_client)")
    }

    /// `member`'s address on `net`.
    pub fn address(&self, member: &str, net: Net) -> std::net::Ipv4Addr {
        net.member(self.slot(member).index)
    }

    /// `member`'s role file.
    pub fn role_file(&self, member: &str) -> &Path {
        &self.slot(member).role_file
    }

    /// `member`'s configuration file.
    pub fn config_file(&self, member: &str) -> &Path {
        &self.slot(member).config
    }

    /// `member`'s agent log (stdout and stderr, every run appended).
    pub fn log_file(&self, member: &str) -> &Path {
        &self.slot(member).log
    }

    pub(crate) fn slot(&self, member: &str) -> &MemberSlot {
        self.members
            .iter()
            .find(|m| m.name == member)
            .unwrap_or_else(|| panic!("{member} is not a member of this lab"))
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        if std::thread::panicking() && !self.dumped.swap(true, std::sync::atomic::Ordering::SeqCst)
        {
            eprintln!("{}", self.dump());
        }
        self.kill_all_processes();
        for netns in &self.namespaces {
            kill_namespace_processes(netns);
        }
        // Deleting one end of a veth pair deletes both; deleting the namespaces afterwards is then
        // instant (no interface left for the kernel to clean up asynchronously).
        for link in self.links.iter().rev() {
            let _ = run("ip", &["link", "del", link], None);
        }
        for netns in &self.namespaces {
            if let Err(e) = run("ip", &["netns", "del", netns], None) {
                eprintln!("rdg-e2e clean-up: {e}");
            }
        }
        if std::env::var_os("RDG_E2E_KEEP").is_some() {
            eprintln!(
                "rdg-e2e: RDG_E2E_KEEP is set, keeping {} (role files in {})",
                self.dir.display(),
                self.run_dir.display()
            );
        } else {
            let _ = std::fs::remove_dir_all(&self.dir);
            let _ = std::fs::remove_dir_all(&self.run_dir);
        }
    }
}

/// The tmpfs directory for the role files of lab `id`: `/dev/shm/<id>`, created; `None` when
/// `/dev/shm` is missing or not writable.
fn memory_dir(id: &str) -> Option<PathBuf> {
    let dir = Path::new(SHM).join(id);
    std::fs::create_dir_all(&dir).ok().map(|()| dir)
}

/// Where [`memory_dir`] puts lab directories.
const SHM: &str = "/dev/shm";

/// SIGKILLs every process left in `netns` (after SIGCONT, in case it is stopped).
fn kill_namespace_processes(netns: &str) {
    let Ok(pids) = run("ip", &["netns", "pids", netns], None) else {
        return;
    };
    for pid in pids
        .split_whitespace()
        .filter_map(|p| p.parse::<i32>().ok())
    {
        let pid = nix::unistd::Pid::from_raw(pid);
        let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGCONT);
        let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGKILL);
    }
}

/// Removes namespaces, links and directories left by labs of processes that no longer run
/// (a crashed or killed test run), or by earlier labs of this process whose clean-up failed.
fn sweep_leftovers() {
    let netns_list = must("ip", &["netns", "list"]);
    for netns in netns_list
        .lines()
        .filter_map(|l| l.split_whitespace().next())
    {
        if names::is_stale(netns) {
            eprintln!("rdg-e2e: sweeping leftover namespace {netns}");
            kill_namespace_processes(netns);
            let _ = run("ip", &["netns", "del", netns], None);
        }
    }
    let links = must("ip", &["-o", "link", "show"]);
    for line in links.lines() {
        // "12: rdgt1a2b-0bp: <BROADCAST,...>" or "13: rdgt1a2b-01p@if2: <...>"
        let Some(name) = line.split(": ").nth(1) else {
            continue;
        };
        let name = name.split('@').next().unwrap_or(name);
        if names::is_stale(name) {
            eprintln!("rdg-e2e: sweeping leftover link {name}");
            let _ = run("ip", &["link", "del", name], None);
        }
    }
    if std::env::var_os("RDG_E2E_KEEP").is_some() {
        return;
    }
    for parent in [std::env::temp_dir(), PathBuf::from(SHM)] {
        let Ok(entries) = std::fs::read_dir(parent) else {
            continue;
        };
        for entry in entries.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            if names::is_stale(&name) && entry.path().is_dir() {
                let _ = std::fs::remove_dir_all(entry.path());
            }
        }
    }
}

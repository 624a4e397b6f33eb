//! A real Kubernetes API server for tests, as envtest provides it for Go: etcd plus the
//! standalone apiextensions-apiserver (CRDs and custom resources, nothing else), on loopback
//! ports, with its own CA and an admin kubeconfig.
//!
//! [`ApiServer::start`] runs both from the binaries `e2e/apiserver/build.sh` builds into
//! `target/apiserver/bin` (or those of `$RDG_APISERVER_BIN_DIR`), running the script first
//! once per process (it returns at once when they are up to date, and builds them as root
//! otherwise). Without binaries the test is skipped loudly ([`ApiServer::for_test`]).
//! Everything lives in one temporary directory (etcd's data, the
//! certificates, the kubeconfig, both logs); dropping the server kills both processes and
//! removes it (kept with `RDG_E2E_KEEP`). Processes left by a crashed earlier run are killed
//! when the next server starts.
//!
//! ```no_run
//! use rdg_e2e::apiserver::ApiServer;
//!
//! let Some(api) = ApiServer::for_test("my_test") else { return };
//! let out = api.kubectl(&["get", "crd"]);
//! assert!(out.status.success());
//! ```

use std::fmt;
use std::fs::{self, File, OpenOptions};
use std::io::{Read, Write};
use std::net::{IpAddr, Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Once, OnceLock};
use std::time::{Duration, Instant};

use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use nix::sys::signal::{Signal, killpg};
use nix::unistd::Pid;

/// Prefix of the temporary directory of every server (`$TMPDIR/rdg-apiserver-<pid>-<n>`); the
/// owner's pid in it tells leftovers of dead test processes apart.
const DIR_PREFIX: &str = "rdg-apiserver-";
/// Marker file of a directory kept on purpose (`RDG_E2E_KEEP`): the sweep leaves it alone.
const KEPT_MARKER: &str = "KEPT";
/// How long the API server gets to become ready.
const READY_DEADLINE: Duration = Duration::from_secs(60);
/// How long etcd gets to become healthy.
const ETCD_DEADLINE: Duration = Duration::from_secs(30);
/// How often readiness is polled.
const POLL: Duration = Duration::from_millis(100);
/// Attempts at finding free ports before giving up.
const PORT_ATTEMPTS: usize = 5;
/// Admission plugins turned off: they need objects this server does not serve (namespaces,
/// admission policies, webhooks' configurations).
const DISABLED_ADMISSION: &str = "NamespaceLifecycle,MutatingAdmissionPolicy,MutatingAdmissionWebhook,ValidatingAdmissionPolicy,ValidatingAdmissionWebhook";
/// Names the API server binary may have in the binary directory, in order of preference.
const SERVER_NAMES: [&str; 2] = ["kube-apiserver", "apiextensions-apiserver"];

static DIR_COUNTER: AtomicU64 = AtomicU64::new(0);
static SWEEP: Once = Once::new();

/// Why an API server cannot run here (binaries not built and not buildable); the test that
/// wanted it is skipped and says so loudly.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Skip(pub String);

impl fmt::Display for Skip {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Prints a loud SKIPPED line naming `test` and the reason to the process's stderr (not
/// captured by the test harness).
pub fn skip_loudly(test: &str, skip: &Skip) {
    let _ = writeln!(
        std::io::stderr(),
        "\n!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!\n\
         SKIPPED: {test} needs a Kubernetes API server: {skip}\n\
         !!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!"
    );
}

/// Where the API server listens and which addresses its serving certificate names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Options {
    /// `--bind-address`; 127.0.0.1 by default, 0.0.0.0 to be reachable from network
    /// namespaces through another address of this host.
    pub bind_address: IpAddr,
    /// IP SANs of the serving certificate besides 127.0.0.1 (and `localhost`): the addresses
    /// clients in other namespaces use ([`ApiServer::kubeconfig_for`]).
    pub extra_sans: Vec<IpAddr>,
}

impl Default for Options {
    fn default() -> Options {
        Options {
            bind_address: IpAddr::V4(Ipv4Addr::LOCALHOST),
            extra_sans: Vec::new(),
        }
    }
}

impl Options {
    /// Listening on every address, with `addresses` in the serving certificate: for clients
    /// in other network namespaces reaching this host at one of them.
    pub fn reachable_at(addresses: &[IpAddr]) -> Options {
        Options {
            bind_address: IpAddr::V4(Ipv4Addr::UNSPECIFIED),
            extra_sans: addresses.to_vec(),
        }
    }
}

/// The binaries a server runs.
#[derive(Debug, Clone)]
struct Binaries {
    etcd: PathBuf,
    kubectl: PathBuf,
    server: PathBuf,
}

/// Ports of one server: etcd's client and peer ports and the API server's secure port.
#[derive(Debug, Clone, Copy)]
struct Ports {
    etcd_client: u16,
    etcd_peer: u16,
    secure: u16,
}

/// PEM texts of the test PKI.
#[derive(Debug, Clone)]
struct Pki {
    ca: String,
    client_cert: String,
    client_key: String,
}

/// A running etcd and API server, owned by one test; see the module documentation.
#[derive(Debug)]
pub struct ApiServer {
    dir: PathBuf,
    bins: Binaries,
    options: Options,
    ports: Ports,
    pki: Pki,
    kubeconfig: PathBuf,
    etcd: Option<Child>,
    server: Option<Child>,
    started_in: Duration,
}

impl ApiServer {
    /// Starts etcd and an API server on loopback and waits until the server is ready.
    /// `Err` when the binaries are not there and cannot be built; panics (with the logs'
    /// tails) when they are there but the server does not come up.
    pub fn start() -> Result<ApiServer, Skip> {
        ApiServer::start_with(Options::default())
    }

    /// [`ApiServer::start`] with another bind address and serving certificate addresses.
    pub fn start_with(options: Options) -> Result<ApiServer, Skip> {
        let bins = binaries()?;
        SWEEP.call_once(sweep_leftovers);
        let dir = std::env::temp_dir().join(format!(
            "{DIR_PREFIX}{}-{}",
            std::process::id(),
            DIR_COUNTER.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(dir.join("pki")).expect("create the API server's directory");
        let pki = write_pki(&dir, &options);
        let mut api = ApiServer {
            kubeconfig: dir.join("admin.kubeconfig"),
            dir,
            bins,
            options,
            ports: Ports {
                etcd_client: 0,
                etcd_peer: 0,
                secure: 0,
            },
            pki,
            etcd: None,
            server: None,
            started_in: Duration::ZERO,
        };
        // From here on a panic drops `api`, which kills whatever was started.
        api.launch_fresh();
        Ok(api)
    }

    /// [`ApiServer::start`] for a test: None after printing a loud SKIPPED line naming `test`
    /// when the server cannot run here (the test then returns early).
    pub fn for_test(test: &str) -> Option<ApiServer> {
        ApiServer::for_test_with(test, Options::default())
    }

    /// [`ApiServer::for_test`] with [`Options`].
    pub fn for_test_with(test: &str, options: Options) -> Option<ApiServer> {
        match ApiServer::start_with(options) {
            Ok(api) => Some(api),
            Err(skip) => {
                skip_loudly(test, &skip);
                None
            }
        }
    }

    /// The admin kubeconfig (server `https://127.0.0.1:<port>`, CA and client certificate
    /// embedded; the client is `admin` in `system:masters`).
    pub fn kubeconfig(&self) -> &Path {
        &self.kubeconfig
    }

    /// An admin kubeconfig for the server at `address` (one of [`Options::extra_sans`], or
    /// 127.0.0.1), written next to the default one; returns its path.
    pub fn kubeconfig_for(&self, address: IpAddr) -> PathBuf {
        assert!(
            address == IpAddr::V4(Ipv4Addr::LOCALHOST)
                || self.options.extra_sans.contains(&address),
            "{address} is not in the serving certificate; start the server with Options::reachable_at(&[{address}])"
        );
        let path = self.dir.join(format!("admin-{address}.kubeconfig"));
        fs::write(
            &path,
            kubeconfig_yaml(&self.pki, address, self.ports.secure),
        )
        .expect("write a kubeconfig");
        path
    }

    /// A client of the server as admin, from [`ApiServer::kubeconfig`]. Must be called within
    /// a Tokio runtime (the client's worker lives there).
    pub async fn client(&self) -> kube::Client {
        client_from(&self.kubeconfig, None)
            .await
            .unwrap_or_else(|e| panic!("a client from {}: {e}", self.kubeconfig.display()))
    }

    /// Runs the built `kubectl` with the admin kubeconfig and `args`; its output.
    pub fn kubectl(&self, args: &[&str]) -> Output {
        self.kubectl_with_stdin(args, None)
    }

    /// [`ApiServer::kubectl`] feeding `stdin` (for `-f -`).
    pub fn kubectl_with_stdin(&self, args: &[&str], stdin: Option<&str>) -> Output {
        let mut child = Command::new(&self.bins.kubectl)
            .arg("--kubeconfig")
            .arg(&self.kubeconfig)
            // Discovery is cached by host:port; ports are reused across runs.
            .arg("--cache-dir")
            .arg(self.dir.join("kubectl-cache"))
            .args(args)
            .stdin(if stdin.is_some() {
                Stdio::piped()
            } else {
                Stdio::null()
            })
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot run {}: {e}", self.bins.kubectl.display()));
        if let Some(input) = stdin {
            let mut pipe = child.stdin.take().expect("stdin is piped");
            pipe.write_all(input.as_bytes())
                .expect("write kubectl's stdin");
        }
        child.wait_with_output().expect("wait for kubectl")
    }

    /// The built `kubectl` binary, for runs that cannot take [`ApiServer::kubectl`]'s flags
    /// (kubectl refuses flags before a plugin's name).
    pub fn kubectl_binary(&self) -> &Path {
        &self.bins.kubectl
    }

    /// The `https://127.0.0.1:<port>` URL of the server.
    pub fn url(&self) -> String {
        format!("https://127.0.0.1:{}", self.ports.secure)
    }

    /// The API server's secure port.
    pub fn port(&self) -> u16 {
        self.ports.secure
    }

    /// The temporary directory (etcd data, certificates, kubeconfigs, logs).
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Time from starting etcd to the API server being ready, of the last (re)start.
    pub fn started_in(&self) -> Duration {
        self.started_in
    }

    /// True while both processes run.
    pub fn is_running(&mut self) -> bool {
        let alive =
            |c: &mut Option<Child>| c.as_mut().is_some_and(|c| matches!(c.try_wait(), Ok(None)));
        alive(&mut self.etcd) && alive(&mut self.server)
    }

    /// Kills the API server and etcd (SIGKILL, like a crash) and waits for them. The data,
    /// certificates and ports stay for [`ApiServer::start_again`].
    pub fn stop(&mut self) {
        kill(&mut self.server);
        kill(&mut self.etcd);
    }

    /// Starts etcd and the API server again on the same data directory and ports after
    /// [`ApiServer::stop`], and waits until the server is ready. Panics when it does not come up.
    pub fn start_again(&mut self) {
        self.stop();
        let t0 = Instant::now();
        for name in ["etcd.log", "apiserver.log"] {
            let mut log = open_log(&self.dir.join(name));
            let _ = writeln!(log, "\n===== rdg-e2e: started again =====\n");
        }
        if let Err(e) = self.launch() {
            panic!(
                "the API server did not start again on the same ports: {e}\n{}",
                self.log_tails()
            );
        }
        self.started_in = t0.elapsed();
    }

    /// The last lines of etcd's and the API server's logs.
    pub fn log_tails(&self) -> String {
        let mut out = String::new();
        for name in ["etcd.log", "apiserver.log"] {
            let path = self.dir.join(name);
            out.push_str(&format!("----- tail of {} -----\n", path.display()));
            out.push_str(&tail(&path, 40));
        }
        out
    }

    /// First start: picks free ports, retrying with others when one was taken meanwhile.
    fn launch_fresh(&mut self) {
        let t0 = Instant::now();
        let mut last = String::new();
        for _ in 0..PORT_ATTEMPTS {
            self.ports = Ports {
                etcd_client: free_port(),
                etcd_peer: free_port(),
                secure: free_port(),
            };
            fs::write(
                &self.kubeconfig,
                kubeconfig_yaml(
                    &self.pki,
                    IpAddr::V4(Ipv4Addr::LOCALHOST),
                    self.ports.secure,
                ),
            )
            .expect("write the admin kubeconfig");
            match self.launch() {
                Ok(()) => {
                    self.started_in = t0.elapsed();
                    return;
                }
                Err(Failure::PortTaken(e)) => {
                    last = e;
                    self.stop();
                    // A fresh etcd: a half-initialised data dir would keep the old peer URL.
                    let _ = fs::remove_dir_all(self.dir.join("etcd-data"));
                }
                Err(e) => panic!("{e}\n{}", self.log_tails()),
            }
        }
        panic!(
            "no free ports for etcd and the API server after {PORT_ATTEMPTS} attempts; last: {last}\n{}",
            self.log_tails()
        );
    }

    /// Starts etcd, waits until it is healthy, starts the API server, waits until it is ready.
    fn launch(&mut self) -> Result<(), Failure> {
        let p = self.ports;
        let client_url = format!("http://127.0.0.1:{}", p.etcd_client);
        let peer_url = format!("http://127.0.0.1:{}", p.etcd_peer);
        let mut etcd = Command::new(&self.bins.etcd);
        etcd.arg("--name=rdg-e2e")
            .arg(format!(
                "--data-dir={}",
                self.dir.join("etcd-data").display()
            ))
            .arg(format!("--listen-client-urls={client_url}"))
            .arg(format!("--advertise-client-urls={client_url}"))
            .arg(format!("--listen-peer-urls={peer_url}"))
            .arg(format!("--initial-advertise-peer-urls={peer_url}"))
            .arg(format!("--initial-cluster=rdg-e2e={peer_url}"))
            .arg("--initial-cluster-state=new")
            // Tests need no durability across a power cut; fsync costs seconds on a busy disk.
            .arg("--unsafe-no-fsync");
        self.etcd = Some(spawn(etcd, &self.dir.join("etcd.log")));
        self.wait_etcd()?;

        let pki = self.dir.join("pki");
        let mut server = Command::new(&self.bins.server);
        server
            .arg(format!("--etcd-servers={client_url}"))
            .arg(format!("--secure-port={}", p.secure))
            .arg(format!("--bind-address={}", self.options.bind_address))
            .arg(format!(
                "--tls-cert-file={}",
                pki.join("server.crt").display()
            ))
            .arg(format!(
                "--tls-private-key-file={}",
                pki.join("server.key").display()
            ))
            .arg(format!("--client-ca-file={}", pki.join("ca.crt").display()))
            .arg(format!("--kubeconfig={}", self.kubeconfig.display()))
            .arg(format!(
                "--authentication-kubeconfig={}",
                self.kubeconfig.display()
            ))
            .arg(format!(
                "--authorization-kubeconfig={}",
                self.kubeconfig.display()
            ))
            .arg("--authentication-skip-lookup")
            .arg(format!("--disable-admission-plugins={DISABLED_ADMISSION}"))
            .arg("--enable-priority-and-fairness=false")
            .arg(format!(
                "--cert-dir={}",
                self.dir.join("cert-dir").display()
            ));
        self.server = Some(spawn(server, &self.dir.join("apiserver.log")));
        self.wait_ready()
    }

    /// Polls etcd's `/health` until it says healthy.
    fn wait_etcd(&mut self) -> Result<(), Failure> {
        let deadline = Instant::now() + ETCD_DEADLINE;
        let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, self.ports.etcd_client));
        loop {
            if let Some(status) = exited(&mut self.etcd) {
                let log = tail(&self.dir.join("etcd.log"), 40);
                let msg = format!("etcd exited ({status}) before it was healthy");
                return Err(if log.contains("address already in use") {
                    Failure::PortTaken(msg)
                } else {
                    Failure::Other(msg)
                });
            }
            if http_get(addr, "/health").is_some_and(|body| body.contains("\"health\":\"true\"")) {
                return Ok(());
            }
            if Instant::now() > deadline {
                return Err(Failure::Other(format!(
                    "etcd was not healthy within {ETCD_DEADLINE:?} at {addr}"
                )));
            }
            std::thread::sleep(POLL);
        }
    }

    /// Polls `/readyz?exclude=informer-sync` with the admin certificate until it answers `ok`
    /// (the informer-sync check never passes: this server serves no core objects to sync).
    fn wait_ready(&mut self) -> Result<(), Failure> {
        let deadline = Instant::now() + READY_DEADLINE;
        let kubeconfig = self.kubeconfig.clone();
        let (tx, rx) = std::sync::mpsc::channel::<Result<(), String>>();
        let (stop_tx, stop_rx) = std::sync::mpsc::channel::<()>();
        // Its own thread and runtime, so callers may be inside a Tokio runtime or not.
        let poller = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("a Tokio runtime for the readiness poll");
            rt.block_on(async {
                let client = match client_from(&kubeconfig, Some(Duration::from_secs(2))).await {
                    Ok(c) => c,
                    Err(e) => {
                        let _ = tx.send(Err(format!("no client from the kubeconfig: {e}")));
                        return;
                    }
                };
                while stop_rx.try_recv().is_err() {
                    let req = http::Request::get("/readyz?exclude=informer-sync")
                        .body(Vec::new())
                        .expect("a valid request");
                    let answer = match client.request_text(req).await {
                        Ok(body) if body.trim() == "ok" => {
                            let _ = tx.send(Ok(()));
                            return;
                        }
                        Ok(body) => body,
                        Err(e) => e.to_string(),
                    };
                    let _ = tx.send(Err(answer));
                    tokio::time::sleep(POLL).await;
                }
            });
        });
        let mut last = String::from("no answer yet");
        let result = loop {
            match rx.recv_timeout(POLL) {
                Ok(Ok(())) => break Ok(()),
                Ok(Err(e)) => last = e,
                Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {}
                Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => {
                    break Err(Failure::Other(format!("readiness poll ended: {last}")));
                }
            }
            if let Some(status) = exited(&mut self.server) {
                let log = tail(&self.dir.join("apiserver.log"), 40);
                let msg = format!("the API server exited ({status}) before it was ready");
                break Err(if log.contains("address already in use") {
                    Failure::PortTaken(msg)
                } else {
                    Failure::Other(msg)
                });
            }
            if Instant::now() > deadline {
                break Err(Failure::Other(format!(
                    "the API server was not ready within {READY_DEADLINE:?}; last answer of /readyz?exclude=informer-sync: {last}"
                )));
            }
        };
        let _ = stop_tx.send(());
        let _ = poller.join();
        result
    }
}

impl Drop for ApiServer {
    fn drop(&mut self) {
        self.stop();
        if std::thread::panicking() {
            eprintln!("{}", self.log_tails());
        }
        if std::env::var_os("RDG_E2E_KEEP").is_some() {
            let _ = fs::write(self.dir.join(KEPT_MARKER), "");
            eprintln!(
                "rdg-e2e: RDG_E2E_KEEP is set, keeping the API server's directory {} (logs, etcd data, kubeconfig)",
                self.dir.display()
            );
        } else {
            let _ = fs::remove_dir_all(&self.dir);
        }
    }
}

/// Why a (re)start failed.
#[derive(Debug)]
enum Failure {
    /// A port was taken between choosing it and listening on it.
    PortTaken(String),
    /// Anything else.
    Other(String),
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Failure::PortTaken(s) | Failure::Other(s) => f.write_str(s),
        }
    }
}

/// The workspace root: the parent of this crate's directory.
fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("the e2e crate is inside the workspace")
        .to_path_buf()
}

/// `build.sh`'s output directory: `$RDG_APISERVER_CACHE/bin`, by default
/// `<workspace>/target/apiserver/bin`.
fn build_output_dir() -> PathBuf {
    std::env::var_os("RDG_APISERVER_CACHE")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace_root().join("target/apiserver"))
        .join("bin")
}

/// The binaries in `dir`, or what is missing.
fn find_binaries(dir: &Path) -> Result<Binaries, String> {
    let etcd = dir.join("etcd");
    let kubectl = dir.join("kubectl");
    let server = SERVER_NAMES
        .iter()
        .map(|n| dir.join(n))
        .find(|p| p.is_file());
    let mut missing = Vec::new();
    if !etcd.is_file() {
        missing.push("etcd".to_string());
    }
    if !kubectl.is_file() {
        missing.push("kubectl".to_string());
    }
    if server.is_none() {
        missing.push(SERVER_NAMES.join(" or "));
    }
    match server {
        Some(server) if missing.is_empty() => Ok(Binaries {
            etcd,
            kubectl,
            server,
        }),
        _ => Err(format!(
            "{} missing in {}",
            missing.join(", "),
            dir.display()
        )),
    }
}

/// The binaries: those of `$RDG_APISERVER_BIN_DIR` as they are; otherwise `build.sh`'s, after
/// running `e2e/apiserver/build.sh` once per process. The script returns at once when its
/// binaries are up to date, rebuilds them when it or `main.go` changed, and holds a file lock
/// while building, so parallel test processes build once. `Err` when there are no binaries
/// and they cannot be built here (no script, or not root).
fn binaries() -> Result<Binaries, Skip> {
    if let Some(dir) = std::env::var_os("RDG_APISERVER_BIN_DIR") {
        return find_binaries(Path::new(&dir))
            .map_err(|missing| Skip(format!("RDG_APISERVER_BIN_DIR: {missing}")));
    }
    let dir = build_output_dir();
    let script = workspace_root().join("e2e/apiserver/build.sh");
    if !script.is_file() {
        return find_binaries(&dir).map_err(|missing| {
            Skip(format!(
                "{missing}, and there is no {} to build them",
                script.display()
            ))
        });
    }
    static BUILD: OnceLock<Result<(), String>> = OnceLock::new();
    let build = BUILD.get_or_init(|| run_build_script(&script));
    match (find_binaries(&dir), build) {
        (Ok(b), Ok(())) => Ok(b),
        (Ok(b), Err(e)) => {
            eprintln!(
                "rdg-e2e: WARNING: {e}; using the binaries already in {}",
                dir.display()
            );
            Ok(b)
        }
        (Err(missing), Err(e)) if !crate::is_root() => {
            Err(Skip(format!("{missing}; building them needs root: {e}")))
        }
        (Err(missing), Err(e)) => panic!("{missing}: {e}"),
        (Err(missing), Ok(())) => panic!("bash {} succeeded but {missing}", script.display()),
    }
}

/// Runs `bash build.sh`, its progress going to stderr.
fn run_build_script(script: &Path) -> Result<(), String> {
    let t0 = Instant::now();
    let status = Command::new("bash")
        .arg(script)
        .current_dir(workspace_root())
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .status()
        .map_err(|e| format!("cannot run bash {}: {e}", script.display()))?;
    if status.success() {
        if t0.elapsed() > Duration::from_secs(5) {
            eprintln!(
                "rdg-e2e: built the API server's binaries in {:?}",
                t0.elapsed()
            );
        }
        Ok(())
    } else {
        Err(format!(
            "bash {} failed ({status}; its messages are above)",
            script.display()
        ))
    }
}

/// Kills processes left behind by test processes that died without dropping their server
/// (their directory names a pid that no longer runs), and removes those directories unless
/// they were kept on purpose.
fn sweep_leftovers() {
    let tmp = std::env::temp_dir();
    let needle = format!("{}/{DIR_PREFIX}", tmp.display());
    let owner_dead = |rest: &str| -> bool {
        let pid = rest.split('-').next().unwrap_or("");
        match pid.parse::<u32>() {
            Ok(pid) => pid != std::process::id() && !process_runs(pid),
            Err(_) => false,
        }
    };
    for pid in crate::procfs::pids() {
        let Ok(cmdline) = fs::read(format!("/proc/{pid}/cmdline")) else {
            continue;
        };
        let cmdline = String::from_utf8_lossy(&cmdline);
        if let Some(at) = cmdline.find(&needle)
            && owner_dead(&cmdline[at + needle.len()..])
        {
            eprintln!(
                "rdg-e2e: killing process {pid} left by a dead test run: {}",
                cmdline.replace('\0', " ")
            );
            let _ = nix::sys::signal::kill(Pid::from_raw(pid), Signal::SIGKILL);
        }
    }
    if let Ok(entries) = fs::read_dir(&tmp) {
        for entry in entries.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            if let Some(rest) = name.strip_prefix(DIR_PREFIX)
                && owner_dead(rest)
                && !entry.path().join(KEPT_MARKER).exists()
            {
                let _ = fs::remove_dir_all(entry.path());
            }
        }
    }
}

/// True when process `pid` exists and is not a zombie (a killed test process stays one until
/// its parent reaps it).
fn process_runs(pid: u32) -> bool {
    fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|stat| {
        // `pid (comm) state ...`; comm may contain spaces and parentheses.
        stat.rsplit_once(')')
            .and_then(|(_, rest)| rest.split_whitespace().next())
            .is_some_and(|state| state != "Z")
    })
}

/// Generates the CA, the serving certificate (127.0.0.1, `localhost` and the extra
/// addresses) and the admin client certificate, writes what the server reads into `dir/pki`
/// and returns what the kubeconfigs embed.
fn write_pki(dir: &Path, options: &Options) -> Pki {
    use rcgen::{
        BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer,
        KeyPair, KeyUsagePurpose, SanType,
    };
    let fail = |what: &str, e: rcgen::Error| -> ! { panic!("generate the {what}: {e}") };

    let ca_key = KeyPair::generate().unwrap_or_else(|e| fail("CA key", e));
    let mut ca_params =
        CertificateParams::new(Vec::<String>::new()).unwrap_or_else(|e| fail("CA", e));
    ca_params
        .distinguished_name
        .push(DnType::CommonName, "rdg-e2e-ca");
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    let ca_cert = ca_params
        .self_signed(&ca_key)
        .unwrap_or_else(|e| fail("CA", e));
    let issuer = Issuer::new(ca_params, ca_key);

    let server_key = KeyPair::generate().unwrap_or_else(|e| fail("serving key", e));
    let mut server_params = CertificateParams::new(vec!["localhost".to_string()])
        .unwrap_or_else(|e| fail("serving certificate", e));
    server_params
        .distinguished_name
        .push(DnType::CommonName, "rdg-e2e-apiserver");
    let mut ips = vec![IpAddr::V4(Ipv4Addr::LOCALHOST)];
    for ip in &options.extra_sans {
        if !ips.contains(ip) {
            ips.push(*ip);
        }
    }
    server_params
        .subject_alt_names
        .extend(ips.into_iter().map(SanType::IpAddress));
    server_params.key_usages = vec![
        KeyUsagePurpose::DigitalSignature,
        KeyUsagePurpose::KeyEncipherment,
    ];
    server_params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    let server_cert = server_params
        .signed_by(&server_key, &issuer)
        .unwrap_or_else(|e| fail("serving certificate", e));

    let client_key = KeyPair::generate().unwrap_or_else(|e| fail("client key", e));
    let mut client_params = CertificateParams::new(Vec::<String>::new())
        .unwrap_or_else(|e| fail("client certificate", e));
    client_params
        .distinguished_name
        .push(DnType::CommonName, "admin");
    client_params
        .distinguished_name
        .push(DnType::OrganizationName, "system:masters");
    client_params.key_usages = vec![
        KeyUsagePurpose::DigitalSignature,
        KeyUsagePurpose::KeyEncipherment,
    ];
    client_params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
    let client_cert = client_params
        .signed_by(&client_key, &issuer)
        .unwrap_or_else(|e| fail("client certificate", e));

    let pki = dir.join("pki");
    let write = |name: &str, text: &str| {
        fs::write(pki.join(name), text).unwrap_or_else(|e| panic!("write pki/{name}: {e}"));
    };
    write("ca.crt", &ca_cert.pem());
    write("server.crt", &server_cert.pem());
    write("server.key", &server_key.serialize_pem());
    write("admin.crt", &client_cert.pem());
    write("admin.key", &client_key.serialize_pem());
    Pki {
        ca: ca_cert.pem(),
        client_cert: client_cert.pem(),
        client_key: client_key.serialize_pem(),
    }
}

/// An admin kubeconfig for the server at `https://address:port`, everything embedded.
fn kubeconfig_yaml(pki: &Pki, address: IpAddr, port: u16) -> String {
    let server = match address {
        IpAddr::V4(a) => format!("https://{a}:{port}"),
        IpAddr::V6(a) => format!("https://[{a}]:{port}"),
    };
    let doc = serde_json::json!({
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": "rdg-e2e", "cluster": {
            "server": server,
            "certificate-authority-data": BASE64.encode(&pki.ca),
        }}],
        "users": [{"name": "admin", "user": {
            "client-certificate-data": BASE64.encode(&pki.client_cert),
            "client-key-data": BASE64.encode(&pki.client_key),
        }}],
        "contexts": [{"name": "rdg-e2e", "context": {"cluster": "rdg-e2e", "user": "admin"}}],
        "current-context": "rdg-e2e",
    });
    serde_yaml_ng::to_string(&doc).expect("a kubeconfig serializes")
}

/// A client from the kubeconfig at `path` (such as [`ApiServer::kubeconfig_for`]'s);
/// `timeout`, when given, bounds connecting and each read. Call it within a Tokio runtime.
pub async fn client_from(path: &Path, timeout: Option<Duration>) -> Result<kube::Client, String> {
    let kubeconfig = kube::config::Kubeconfig::read_from(path).map_err(|e| e.to_string())?;
    let mut config = kube::Config::from_custom_kubeconfig(
        kubeconfig,
        &kube::config::KubeConfigOptions::default(),
    )
    .await
    .map_err(|e| e.to_string())?;
    if timeout.is_some() {
        config.connect_timeout = timeout;
        config.read_timeout = timeout;
    }
    kube::Client::try_from(config).map_err(|e| e.to_string())
}

/// A free TCP port on loopback: bound to port 0, then released.
fn free_port() -> u16 {
    TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
        .and_then(|l| l.local_addr())
        .expect("bind a loopback port")
        .port()
}

/// Spawns `cmd` as the leader of its own process group, stdout and stderr appended to `log`.
fn spawn(mut cmd: Command, log: &Path) -> Child {
    let out = open_log(log);
    let err = out.try_clone().expect("duplicate the log file");
    cmd.stdin(Stdio::null())
        .stdout(out)
        .stderr(err)
        .process_group(0)
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {cmd:?}: {e}"))
}

/// Kills the process group of `child` (SIGKILL) and waits for the leader.
fn kill(child: &mut Option<Child>) {
    if let Some(mut c) = child.take() {
        let pid = Pid::from_raw(c.id() as i32);
        let _ = killpg(pid, Signal::SIGKILL);
        let _ = c.kill();
        let _ = c.wait();
    }
}

/// The exit status of `child` if it has exited.
fn exited(child: &mut Option<Child>) -> Option<std::process::ExitStatus> {
    child.as_mut().and_then(|c| c.try_wait().ok().flatten())
}

/// Opens `path` for appending, creating it.
fn open_log(path: &Path) -> File {
    OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .unwrap_or_else(|e| panic!("open {}: {e}", path.display()))
}

/// The last `lines` lines of the file at `path`.
fn tail(path: &Path, lines: usize) -> String {
    let text = fs::read(path)
        .map(|b| String::from_utf8_lossy(&b).into_owned())
        .unwrap_or_else(|e| format!("(cannot read: {e})\n"));
    let all: Vec<&str> = text.lines().collect();
    let mut out = all[all.len().saturating_sub(lines)..].join("\n");
    out.push('\n');
    out
}

/// A plain HTTP GET of `path` on `addr`; the body, or None on any error.
fn http_get(addr: SocketAddr, path: &str) -> Option<String> {
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_millis(500)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(2))).ok()?;
    write!(s, "GET {path} HTTP/1.0\r\nHost: {addr}\r\n\r\n").ok()?;
    let mut response = String::new();
    s.read_to_string(&mut response).ok()?;
    let (head, body) = response.split_once("\r\n\r\n")?;
    head.starts_with("HTTP/1.1 200")
        .then(|| body.to_string())
        .or_else(|| head.starts_with("HTTP/1.0 200").then(|| body.to_string()))
}

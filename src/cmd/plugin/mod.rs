//! `kubectl rdg`: the kubectl plugin. The `rdg` binary run under the name `kubectl-rdg` (a
//! symlink; kubectl finds it on PATH) shows a group at a glance, asks for planned hand-overs,
//! fences members for maintenance and collects a support bundle, through the API server alone.
//! Under the name `kubectl_complete-rdg` it answers kubectl's shell completion.
//!
//! Exit codes follow kubectl's: 0 done, 1 failed or refused (with the reason), 2 usage.

pub mod complete;
mod fence;
mod report;
mod status;
mod switchover;

use clap::{CommandFactory, Parser, Subcommand, ValueEnum};
use kube::api::Api;
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::{Client, Config};
use rdg_core::Dur;
use rdg_operator::RedundantGroup;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

/// The executable name kubectl looks up for `kubectl rdg`.
pub const PLUGIN_NAME: &str = "kubectl-rdg";
/// The executable name kubectl looks up to complete `kubectl rdg ...` (kubectl 1.26+).
pub const COMPLETE_NAME: &str = "kubectl_complete-rdg";

/// Look after RedundantGroups: status, planned hand-over, fencing, support bundle.
#[derive(Debug, Parser)]
#[command(name = PLUGIN_NAME, bin_name = "kubectl rdg", version)]
pub struct PluginCli {
    #[command(flatten)]
    kube: KubeArgs,
    #[command(subcommand)]
    command: PluginCommand,
}

/// kubectl's connection flags.
#[derive(Debug, Clone, clap::Args)]
pub struct KubeArgs {
    /// Namespace of the group (default: the context's, else `default`).
    #[arg(short = 'n', long, global = true)]
    namespace: Option<String>,
    /// The kubeconfig context to use.
    #[arg(long, global = true)]
    context: Option<String>,
    /// Path to the kubeconfig file (default: $KUBECONFIG, else ~/.kube/config, else in-cluster).
    #[arg(long, global = true)]
    kubeconfig: Option<PathBuf>,
}

/// Output formats of data.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    /// JSON.
    Json,
    /// YAML.
    Yaml,
}

#[derive(Debug, Subcommand)]
enum PluginCommand {
    /// One screen about a group: phase, hot member, members, VIPs, last failover, Events.
    Status {
        /// The RedundantGroup.
        group: String,
        /// Print the group's status as data instead.
        #[arg(short = 'o', long, value_enum)]
        output: Option<Format>,
    },
    /// Ask for a planned hand-over of the hot role to MEMBER (refused when it cannot take it).
    Switchover {
        /// The RedundantGroup.
        group: String,
        /// The member that should become hot.
        member: String,
        /// Wait until MEMBER is hot and say how long it took.
        #[arg(long)]
        wait: bool,
        /// How long --wait waits.
        #[arg(long, default_value = "60s")]
        timeout: Dur,
    },
    /// Fence MEMBER for maintenance: its agent runs with priority 0 and is never elected hot
    /// (a hot member hands over first). Stored in the spec, so it survives restarts.
    Fence {
        /// The RedundantGroup.
        group: String,
        /// The member to fence.
        member: String,
    },
    /// Undo `fence`: MEMBER runs with its configured priority again.
    Unfence {
        /// The RedundantGroup.
        group: String,
        /// The member to unfence.
        member: String,
    },
    /// Write a support bundle (tar.gz): spec, status, Events, member pods and their logs.
    /// Secrets are never read.
    Report {
        /// The RedundantGroup.
        group: String,
        /// The file to write (default `rdg-report-<group>-<UTC time>.tar.gz`).
        #[arg(short = 'o', long)]
        output: Option<PathBuf>,
    },
    /// Print a shell completion script for `kubectl-rdg` (for kubectl's own completion, see
    /// `kubectl_complete-rdg`).
    Completion {
        /// The shell.
        shell: clap_complete::Shell,
    },
}

/// The plugin's command line (for its manual page and completions).
pub fn command() -> clap::Command {
    PluginCli::command()
}

/// Runs `kubectl rdg ...` from the process's arguments.
pub fn main() -> ExitCode {
    let cli = PluginCli::parse();
    if let PluginCommand::Completion { shell } = cli.command {
        clap_complete::generate(shell, &mut command(), PLUGIN_NAME, &mut std::io::stdout());
        return ExitCode::SUCCESS;
    }
    let rt = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("kubectl rdg: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match rt.block_on(run(cli)) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("kubectl rdg: {e}");
            ExitCode::FAILURE
        }
    }
}

async fn run(cli: PluginCli) -> Result<ExitCode, String> {
    let k = Kube::connect(&cli.kube).await?;
    match cli.command {
        PluginCommand::Status { group, output } => status::run(&k, &group, output).await,
        PluginCommand::Switchover {
            group,
            member,
            wait,
            timeout,
        } => switchover::run(&k, &group, &member, wait.then(|| timeout.get())).await,
        PluginCommand::Fence { group, member } => fence::run(&k, &group, &member, true).await,
        PluginCommand::Unfence { group, member } => fence::run(&k, &group, &member, false).await,
        PluginCommand::Report { group, output } => report::run(&k, &group, output).await,
        PluginCommand::Completion { .. } => unreachable!("handled before connecting"),
    }
}

/// A client and the namespace the command works in.
pub struct Kube {
    client: Client,
    namespace: String,
}

impl Kube {
    /// Connects as kubectl would: `--kubeconfig` (else `$KUBECONFIG`, else `~/.kube/config`,
    /// else the in-cluster service account), `--context`, `-n`.
    pub async fn connect(args: &KubeArgs) -> Result<Kube, String> {
        let mut config = if args.kubeconfig.is_none() && args.context.is_none() {
            Config::infer()
                .await
                .map_err(|e| format!("no cluster to talk to: {e}"))?
        } else {
            let kubeconfig = match &args.kubeconfig {
                Some(p) => Kubeconfig::read_from(p),
                None => Kubeconfig::read(),
            }
            .map_err(|e| format!("cannot read the kubeconfig: {e}"))?;
            let options = KubeConfigOptions {
                context: args.context.clone(),
                ..KubeConfigOptions::default()
            };
            Config::from_custom_kubeconfig(kubeconfig, &options)
                .await
                .map_err(|e| format!("kubeconfig: {e}"))?
        };
        config.connect_timeout = Some(Duration::from_secs(10));
        config.read_timeout = Some(Duration::from_secs(30));
        let namespace = args
            .namespace
            .clone()
            .unwrap_or_else(|| config.default_namespace.clone());
        let client = Client::try_from(config).map_err(|e| format!("client: {e}"))?;
        Ok(Kube { client, namespace })
    }

    /// The API of objects of kind `K` in the namespace.
    fn api<K>(&self) -> Api<K>
    where
        K: kube::Resource<Scope = k8s_openapi::NamespaceResourceScope>,
        K::DynamicType: Default,
    {
        Api::namespaced(self.client.clone(), &self.namespace)
    }

    /// The group `name`, or a clear error when there is none.
    async fn group(&self, name: &str) -> Result<RedundantGroup, String> {
        match self.api::<RedundantGroup>().get(name).await {
            Ok(g) => Ok(g),
            Err(kube::Error::Api(e)) if e.code == 404 => Err(format!(
                "no RedundantGroup {name:?} in namespace {:?} ({})",
                self.namespace, e.message
            )),
            Err(e) => Err(format!("cannot read RedundantGroup {name:?}: {e}")),
        }
    }
}

/// A refusal: printed as `kubectl rdg: <why>`, exit 1.
fn refuse(why: impl std::fmt::Display) -> Result<ExitCode, String> {
    eprintln!("kubectl rdg: refused: {why}");
    Ok(ExitCode::FAILURE)
}

/// Whether an API error means the server does not serve that kind of object at all (as the
/// apiextensions-apiserver serves no Pods or Events), rather than that one object is missing.
/// Such a server answers 404 with its list of paths, which is not a Status (code 0 here).
fn not_served(e: &kube::Error) -> bool {
    matches!(e, kube::Error::Api(r) if (r.code == 404
        && r.message.contains("could not find the requested resource"))
        || (r.code == 0 && r.reason.is_empty() && r.message.is_empty()))
}

/// `e` as one line for a note.
fn api_error_text(e: &kube::Error) -> String {
    match e {
        _ if not_served(e) => "404: the API server does not serve this path".to_string(),
        kube::Error::Api(r) => format!("HTTP {} {}: {}", r.code, r.reason, r.message),
        e => e.to_string(),
    }
}

/// The invoked program's file name (the last component of `argv[0]`).
pub fn invoked_as() -> Option<String> {
    let arg0 = std::env::args_os().next()?;
    let name = std::path::Path::new(&arg0).file_name()?;
    Some(name.to_string_lossy().into_owned())
}

#[cfg(test)]
mod tests;

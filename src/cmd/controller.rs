//! `rdg controller`: the Kubernetes operator. Watches `RedundantGroup` resources and runs one
//! host-network pod per member; serves /metrics, /healthz and /readyz.

use clap::Args as ClapArgs;
use kube::runtime::events::Reporter;
use rdg_operator::children::PodDefaults;
use rdg_operator::controller::{self, Context};
use std::net::SocketAddr;
use std::process::ExitCode;
use std::sync::Arc;

/// Arguments of `rdg controller`.
#[derive(Debug, ClapArgs)]
pub struct Args {
    /// Watch only this namespace (default: all namespaces).
    #[arg(long, env = "RDG_WATCH_NAMESPACE")]
    namespace: Option<String>,
    /// Image of member pods when a group names none (normally the operator's own image).
    #[arg(long, env = "RDG_IMAGE")]
    image: String,
    /// ServiceAccount of member pods (may patch groups' status, label pods, create events).
    #[arg(long, env = "RDG_MEMBER_SERVICE_ACCOUNT", default_value = "rdg-member")]
    member_service_account: String,
    /// Where /metrics, /healthz and /readyz are served.
    #[arg(long, env = "RDG_METRICS_LISTEN", default_value = "0.0.0.0:8080")]
    metrics_listen: SocketAddr,
    /// Name of this controller instance in Events (normally the pod name).
    #[arg(long, env = "POD_NAME")]
    instance: Option<String>,
}

/// Runs the controller until SIGTERM/SIGINT.
pub fn run(args: &Args) -> ExitCode {
    crate::logging::init();
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    rt.block_on(async {
        let client = match kube::Client::try_default().await {
            Ok(c) => c,
            Err(e) => {
                eprintln!(
                    "cannot reach the Kubernetes API ({e}); run in a cluster or with a kubeconfig"
                );
                return ExitCode::FAILURE;
            }
        };
        let listener = match tokio::net::TcpListener::bind(args.metrics_listen).await {
            Ok(l) => l,
            Err(e) => {
                eprintln!("--metrics-listen {}: {e}", args.metrics_listen);
                return ExitCode::FAILURE;
            }
        };
        let ctx = Arc::new(Context::new(
            client,
            PodDefaults {
                image: args.image.clone(),
                service_account: args.member_service_account.clone(),
            },
            Reporter {
                controller: "rdg-controller".to_string(),
                instance: args.instance.clone(),
            },
        ));
        tokio::spawn(rdg_operator::http::serve(listener, Arc::clone(&ctx)));
        tracing::info!(
            namespace = args.namespace.as_deref().unwrap_or("(all)"),
            image = %args.image,
            metrics = %args.metrics_listen,
            "controller started"
        );
        controller::run(ctx, args.namespace.clone(), super::stop_signal()).await;
        tracing::info!("controller stopped");
        ExitCode::SUCCESS
    })
}

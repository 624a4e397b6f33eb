//! `rdg switchover --config FILE --to MEMBER`: asks the local agent (the hot member) for a
//! planned hand-over to MEMBER, with the member's token (`status.tokenFile`, readable by root
//! only). Exit 0 when the agent accepted it, 1 when it refused or could not be reached, 2 for a
//! configuration or token problem.

use rdg_agent::switchover_token;
use rdg_operator::reporter::agent_client::{AgentCallError, AgentClient};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

/// How long the agent may take to accept or refuse.
const TIMEOUT: Duration = Duration::from_secs(3);

/// Arguments of `rdg switchover`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The group configuration (YAML), as the local agent runs it.
    #[arg(long)]
    config: PathBuf,
    /// The member to hand the role to.
    #[arg(long)]
    to: String,
    /// The agent's role file, when it runs with `--role-file` (the token lives beside it).
    #[arg(long)]
    role_file: Option<PathBuf>,
    /// The token file, instead of `status.tokenFile` or the one beside the role file.
    #[arg(long)]
    token_file: Option<PathBuf>,
    /// The agent's status endpoint, when it runs with `--status-listen`.
    #[arg(long)]
    status_listen: Option<SocketAddr>,
}

/// Sends the request and prints the agent's answer.
pub fn run(args: &Args) -> ExitCode {
    let Some(cfg) = super::load_config(&args.config) else {
        return ExitCode::from(2);
    };
    let role_file = args
        .role_file
        .clone()
        .unwrap_or_else(|| cfg.role_file_path().into());
    let token_path = args.token_file.clone().unwrap_or_else(|| {
        switchover_token::path_for(cfg.status.token_file.as_deref(), &role_file)
    });
    let token = match switchover_token::read(&token_path) {
        Ok(t) => t,
        Err(e) => {
            eprintln!("rdg switchover: {e}");
            return ExitCode::from(2);
        }
    };
    let client = AgentClient::new(args.status_listen.unwrap_or(cfg.status.listen), TIMEOUT)
        .with_token(token);
    let rt = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("rdg switchover: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match rt.block_on(client.switchover(&args.to)) {
        Ok(answer) => {
            println!("{answer}");
            ExitCode::SUCCESS
        }
        Err(AgentCallError::Status { code, body, .. }) => {
            eprintln!("rdg switchover: refused by the agent (HTTP {code}): {body}");
            ExitCode::FAILURE
        }
        Err(e) => {
            eprintln!("rdg switchover: {e}");
            ExitCode::FAILURE
        }
    }
}

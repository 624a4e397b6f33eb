//! `rdg status --config FILE [--json]`: ask the group over the network which member is hot
//! (see `rdg_agent::query`); no Kubernetes, no status endpoint needed. Exit 0 when a hot
//! member answered, 1 when none did (or two did), 2 for a configuration problem.

use rdg_agent::query::{GroupStatus, query};
use rdg_core::Dur;
use std::path::PathBuf;
use std::process::ExitCode;

/// Arguments of `rdg status`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The group configuration (YAML).
    #[arg(long)]
    config: PathBuf,
    /// Print JSON (`{"group", "hot", "epoch", "members": [...]}`) instead of a table.
    #[arg(long)]
    json: bool,
    /// How long to gather answers (stops early when every member answered).
    #[arg(long, default_value = "500ms")]
    wait: Dur,
}

/// Asks the group and prints the answer.
pub fn run(args: &Args) -> ExitCode {
    let Some(cfg) = super::load_config(&args.config) else {
        return ExitCode::from(2);
    };
    let status = match query(&cfg, args.wait.get()) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("rdg status: {e}");
            return ExitCode::from(2);
        }
    };
    if args.json {
        println!(
            "{}",
            serde_json::to_string(&status).expect("status serializes")
        );
    } else {
        print!("{}", table(&status));
    }
    if status.hot.is_some() && !status.split_brain {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

fn table(s: &GroupStatus) -> String {
    let mut out = format!(
        "group {}: hot {}, epoch {}{}\n",
        s.group,
        s.hot.as_deref().unwrap_or("NONE"),
        s.epoch,
        if s.split_brain {
            " — SPLIT BRAIN: more than one member answered as HS"
        } else {
            ""
        }
    );
    let content = s.members.iter().any(|m| m.content.is_some());
    out.push_str(&format!(
        "{:<20} {:<5} {:<28} {:>8} {:>6} {:<9} {}\n",
        "MEMBER",
        "STATE",
        "TEMPORAL",
        "PRIORITY",
        "EPOCH",
        "NETCHECK",
        if content {
            format!("{:<15} CAROUSEL", "ADDRESS")
        } else {
            "ADDRESS".to_string()
        }
    ));
    for m in &s.members {
        let carousel = match (&m.content, m.content_differs.is_empty()) {
            (None, _) if content => " ?".to_string(),
            (None, _) => String::new(),
            (Some(d), true) => format!(" {d}"),
            (Some(d), false) => format!(" {d} DIFFERS: {}", m.content_differs.join(", ")),
        };
        out.push_str(&format!(
            "{:<20} {:<5} {:<28} {:>8} {:>6} {:<9} {}\n",
            m.name,
            m.state.as_str(),
            m.temporal,
            m.priority,
            m.epoch,
            if m.net_check_ok { "ok" } else { "FAILING" },
            if content {
                format!("{:<15}{carousel}", m.address.to_string())
            } else {
                m.address.to_string()
            }
        ));
    }
    for name in &s.missing {
        out.push_str(&format!("{name:<20} (no answer)\n"));
    }
    out
}

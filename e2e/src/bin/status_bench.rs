//! How soon `kubectl get rdg` tells the truth after the hot member's host dies, against a real
//! API server: real agents in network namespaces report to it in Kubernetes mode, a stand-in
//! controller applies the real controller's aggregate (the server serves no pods; every
//! member's pod counts as Running, as a dead node's pods do for about 40 s), and kubectl is
//! read continuously. Each trial kills the current hot member's host, then brings it back as
//! a standby. Prints JSON: the time from the death to the new HOT on screen, and how long a
//! wrong status (SplitBrain, no HOT, the dead member still HOT) was visible. Needs root.
//!
//! `status_bench [--trials 10] [--observe-ms 5000]`

use clap::Parser;
use rdg_e2e::kube_lab::KubeLab;
use rdg_e2e::stats::{ms, summary};
use rdg_e2e::{GroupConfig, Net};
use serde_json::json;
use std::time::Duration;

#[derive(Parser)]
#[command(
    about = "Time from a host's death to a true `kubectl get rdg`, against a real API server"
)]
struct Args {
    /// Host deaths to measure.
    #[arg(long, default_value_t = 10)]
    trials: usize,
    /// How long `kubectl get rdg` is read after each death.
    #[arg(long, default_value_t = 5000)]
    observe_ms: u64,
}

const SETTLE: Duration = Duration::from_secs(10);

fn main() {
    let args = Args::parse();
    rdg_e2e::bench::require_root("status_bench", "network namespaces");
    let members = [("ics-a", 100), ("ics-b", 50), ("ics-c", 10)];
    let Some(kl) = KubeLab::new("status_bench", GroupConfig::with_members(&members)) else {
        std::process::exit(2);
    };
    let server_start_ms = ms(kl.server.started_in());
    for (m, _) in &members {
        kl.start(m);
        kl.lab
            .wait_role(m, if *m == "ics-a" { "HS" } else { "SBS" }, SETTLE);
    }
    let mut trials = Vec::new();
    let mut errors = Vec::new();
    for n in 0..args.trials {
        let all_ready = kl.wait_row(SETTLE, |r| {
            r.hot.is_some()
                && r.ready.as_deref() == Some("3/3")
                && r.phase.as_deref() == Some("Healthy")
        });
        let Some(victim) = kl
            .lab
            .hot_members()
            .first()
            .cloned()
            .filter(|_| all_ready.is_some())
        else {
            errors.push(format!(
                "trial {n}: the group did not settle: {:?}",
                kl.rdg_row()
            ));
            break;
        };
        let trial = kl.host_death_trial(&victim, Duration::from_millis(args.observe_ms));
        eprintln!(
            "trial {n}: {victim} died, {} hot; kubectl showed it after {:?}; wrong after: {}",
            trial.new_hot,
            trial.to_new_hot,
            trial.wrong_after_new_hot.len()
        );
        if trial.to_new_hot.is_none() || !trial.wrong_after_new_hot.is_empty() {
            // What the aggregation saw, to explain the trial.
            eprintln!("trial {n}: status: {}", kl.status_text());
            errors.push(format!(
                "trial {n}: kubectl get rdg did not show {} as HOT and stay right",
                trial.new_hot
            ));
        }
        trials.push(trial);
        // The host comes back: cables in, agent restarted; it joins as a standby.
        for net in Net::BOTH {
            kl.lab.link_up(&victim, net);
        }
        kl.start(&victim);
        kl.lab.wait_role(&victim, "SBS", SETTLE);
    }
    let to_new_hot: Vec<f64> = trials.iter().filter_map(|t| t.to_new_hot.map(ms)).collect();
    let wrong = |f: fn(&rdg_e2e::kube_lab::DeathTrial) -> Duration| {
        summary(&trials.iter().map(|t| ms(f(t))).collect::<Vec<_>>())
    };
    drop(kl);
    let report = json!({
        "trials": args.trials,
        "completed_trials": trials.len(),
        "never_shown": trials.iter().filter(|t| t.to_new_hot.is_none()).count(),
        "death_to_new_hot_ms": summary(&to_new_hot),
        "wrong_visible_ms": {
            "split_brain": wrong(|t| t.split_brain),
            "empty_hot": wrong(|t| t.empty_hot),
            "old_hot": wrong(|t| t.old_hot),
        },
        "wrong_rows_after_new_hot": trials.iter().map(|t| t.wrong_after_new_hot.len()).sum::<usize>(),
        "kubectl_reads_per_trial": summary(&trials.iter().map(|t| t.reads as f64).collect::<Vec<_>>()),
        "api_server_start_ms": server_start_ms,
        "errors": errors,
    });
    rdg_e2e::bench::finish(&report);
}

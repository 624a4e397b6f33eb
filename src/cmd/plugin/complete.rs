//! `kubectl_complete-rdg`: what kubectl (1.26 and later) runs to complete `kubectl rdg ...`.
//! It gets the words after `rdg`, the last being the one to complete (maybe empty), and
//! prints candidates one per line, then cobra's directive line (`:4`: no file names).
//! Subcommands and flags come from the plugin's own command line; group and member names
//! from the cluster (quietly nothing when it cannot be reached).

use super::{Kube, KubeArgs, PluginCli};
use clap::{CommandFactory, FromArgMatches};
use kube::api::ListParams;
use rdg_operator::RedundantGroup;
use std::process::ExitCode;

/// cobra's ShellCompDirectiveNoFileComp.
const NO_FILES: &str = ":4";

/// Prints the candidates for the process's arguments.
pub fn main() -> ExitCode {
    let words: Vec<String> = std::env::args().skip(1).collect();
    let mut out = candidates(&words);
    let current = words.last().cloned().unwrap_or_default();
    out.retain(|c| c.starts_with(&current));
    if out.iter().all(|c| c.starts_with('-')) && !current.starts_with('-') && needs_names(&words) {
        out.extend(
            remote_names(&words)
                .into_iter()
                .filter(|n| n.starts_with(&current)),
        );
    }
    for c in out {
        println!("{c}");
    }
    println!("{NO_FILES}");
    ExitCode::SUCCESS
}

/// Subcommand names, or the flags of the chosen subcommand, or `-o`'s values.
pub(super) fn candidates(words: &[String]) -> Vec<String> {
    let cli = PluginCli::command();
    let done = &words[..words.len().saturating_sub(1)];
    if matches!(done.last().map(String::as_str), Some("-o" | "--output")) {
        return ["json", "yaml"].map(String::from).to_vec();
    }
    let sub = done
        .iter()
        .find_map(|w| cli.get_subcommands().find(|s| s.get_name() == w));
    let current = words.last().map(String::as_str).unwrap_or("");
    match sub {
        None if !current.starts_with('-') => cli
            .get_subcommands()
            .filter(|s| !s.is_hide_set())
            .map(|s| s.get_name().to_string())
            .collect(),
        None => flags(&cli),
        Some(s) => {
            let mut f = flags(s);
            f.extend(flags(&cli));
            if current.starts_with('-') {
                f
            } else {
                Vec::new()
            }
        }
    }
}

fn flags(cmd: &clap::Command) -> Vec<String> {
    cmd.get_arguments()
        .filter_map(|a| a.get_long().map(|l| format!("--{l}")))
        .collect()
}

/// Whether the word being completed is a group or member name (the first or second
/// positional word after a subcommand that takes them).
fn needs_names(words: &[String]) -> bool {
    positional(words).is_some_and(|(sub, given)| {
        let i = given.len();
        sub != "completion" && (i == 0 || (i == 1 && sub != "status" && sub != "report"))
    })
}

/// The subcommand and the positional words given after it, before the one being completed.
fn positional(words: &[String]) -> Option<(String, Vec<String>)> {
    let done = &words[..words.len().saturating_sub(1)];
    let mut sub = None;
    let mut given = Vec::new();
    let mut skip = false;
    for w in done {
        if skip {
            skip = false;
        } else if w.starts_with('-') {
            // Flags that take a value as the next word.
            skip = !w.contains('=')
                && [
                    "-n",
                    "--namespace",
                    "--context",
                    "--kubeconfig",
                    "-o",
                    "--output",
                    "--timeout",
                ]
                .contains(&w.as_str());
        } else if sub.is_none() {
            sub = Some(w.clone());
        } else {
            given.push(w.clone());
        }
    }
    sub.map(|s| (s, given))
}

/// Group names, or the members of the named group, from the cluster.
fn remote_names(words: &[String]) -> Vec<String> {
    let Some((_, given)) = positional(words) else {
        return Vec::new();
    };
    let group = given.first().cloned();
    // The connection flags as given so far, parsed by the real command line.
    let mut args = vec!["kubectl-rdg".to_string()];
    args.extend(words[..words.len() - 1].iter().cloned());
    let Ok(m) = PluginCli::command()
        .ignore_errors(true)
        .try_get_matches_from(&args)
    else {
        return Vec::new();
    };
    let Ok(kube_args) = KubeArgs::from_arg_matches(&m) else {
        return Vec::new();
    };
    let Ok(rt) = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    else {
        return Vec::new();
    };
    rt.block_on(async {
        let Ok(k) = Kube::connect(&kube_args).await else {
            return Vec::new();
        };
        let api = k.api::<RedundantGroup>();
        match (given.len(), group) {
            (0, _) => api
                .list(&ListParams::default())
                .await
                .map(|l| {
                    l.items
                        .into_iter()
                        .map(|g| kube::ResourceExt::name_any(&g))
                        .collect()
                })
                .unwrap_or_default(),
            (_, Some(g)) => api
                .get(&g)
                .await
                .map(|g| g.spec.members.into_iter().map(|m| m.name).collect())
                .unwrap_or_default(),
            _ => Vec::new(),
        }
    })
}

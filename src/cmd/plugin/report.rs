//! `kubectl rdg report GROUP [-o FILE]`: a support bundle, a tar.gz of what the API server
//! knows about the group: spec, status, Events, each member pod (as YAML) and its logs, and
//! each agent's `/status` and `/metrics` as its reporter last kept them in its agent-report
//! ConfigMap. What cannot be read is recorded as a `.error.txt` file beside where it would be
//! (a `MISSING.txt` for an agent report), never fatal.
//! Secrets are never read, and every field named like a key, token or password is replaced by
//! `<redacted>` (as is the value of an environment variable so named).

use super::{Kube, api_error_text, not_served};
use flate2::Compression;
use flate2::write::GzEncoder;
use k8s_openapi::api::core::v1::{ConfigMap, Pod};
use k8s_openapi::jiff::Timestamp;
use kube::api::LogParams;
use rdg_operator::RedundantGroup;
use rdg_operator::children::{agent_report_name, pod_name};
use rdg_operator::reporter::snapshot::{METRICS_KEY, POD_KEY, STATUS_KEY, TAKEN_AT_KEY};
use serde_json::Value;
use std::path::PathBuf;
use std::process::ExitCode;

/// Lines of each container's log kept.
const LOG_LINES: i64 = 5000;
/// What replaces a secret-looking value.
pub const REDACTED: &str = "<redacted>";

/// Whether a field name looks like it holds a secret.
fn secret_name(name: &str) -> bool {
    let n = name.to_ascii_lowercase();
    n.contains("key") || n.contains("token") || n.contains("password") || n.contains("passwd")
}

/// Replaces secret-looking values in `v` (recursively), drops managed fields and the
/// last-applied annotation (a copy of the spec as one string).
pub fn redact(v: &mut Value) {
    match v {
        Value::Object(o) => {
            if let Some(Value::Object(meta)) = o.get_mut("metadata") {
                meta.remove("managedFields");
                if let Some(Value::Object(a)) = meta.get_mut("annotations") {
                    a.remove("kubectl.kubernetes.io/last-applied-configuration");
                }
            }
            // An environment variable (or any name/value pair) named like a secret.
            let named_secret = o
                .get("name")
                .and_then(Value::as_str)
                .is_some_and(secret_name);
            for (k, val) in o.iter_mut() {
                if secret_name(k) || (named_secret && (k == "value" || k == "valueFrom")) {
                    *val = Value::String(REDACTED.into());
                } else {
                    redact(val);
                }
            }
        }
        Value::Array(a) => a.iter_mut().for_each(redact),
        _ => {}
    }
}

/// `v` redacted, as YAML.
fn yaml(mut v: Value) -> String {
    redact(&mut v);
    serde_yaml_ng::to_string(&v).unwrap_or_else(|e| format!("# cannot write YAML: {e}\n"))
}

/// The bundle's files, in order: path inside the archive and contents.
type Files = Vec<(String, String)>;

/// Gathers everything and writes the archive.
pub async fn run(k: &Kube, name: &str, output: Option<PathBuf>) -> Result<ExitCode, String> {
    let group = k.group(name).await?;
    let stamp = Timestamp::now().strftime("%Y%m%dT%H%M%SZ").to_string();
    let top = format!("rdg-report-{name}-{stamp}");
    let path = output.unwrap_or_else(|| PathBuf::from(format!("{top}.tar.gz")));
    let files = gather(k, &group).await;
    write(&path, &top, &files).map_err(|e| format!("cannot write {}: {e}", path.display()))?;
    println!("wrote {} ({} files):", path.display(), files.len());
    for (f, _) in &files {
        println!("  {top}/{f}");
    }
    Ok(ExitCode::SUCCESS)
}

/// The files of the bundle.
async fn gather(k: &Kube, group: &RedundantGroup) -> Files {
    use kube::ResourceExt;
    let name = group.name_any();
    let mut files: Files = Vec::new();
    let mut notes = vec![
        format!("RedundantGroup {}/{name}", k.namespace),
        format!(
            "collected {} by kubectl-rdg {}",
            Timestamp::now(),
            env!("CARGO_PKG_VERSION")
        ),
        "Secrets are never read; fields named like a key, token or password read <redacted>."
            .to_string(),
    ];
    let mut object = serde_json::to_value(group).unwrap_or(Value::Null);
    let status = object
        .as_object_mut()
        .and_then(|o| o.remove("status"))
        .unwrap_or(Value::Null);
    files.push(("spec.yaml".into(), yaml(object)));
    files.push(("status.yaml".into(), yaml(status)));
    match super::status::group_events(k, &name).await {
        Ok(events) => files.push((
            "events.yaml".into(),
            yaml(serde_json::to_value(&events).unwrap_or(Value::Null)),
        )),
        Err(e) => files.push(("events.error.txt".into(), format!("{e}\n"))),
    }
    let status = group.status.clone().unwrap_or_default();
    let pods = k.api::<Pod>();
    for m in &group.spec.members {
        let pod = status
            .member(&m.name)
            .and_then(|e| e.pod.clone())
            .unwrap_or_else(|| pod_name(&name, &m.name));
        let containers = match pods.get(&pod).await {
            Ok(p) => {
                let spec = p.spec.clone().unwrap_or_default();
                let names: Vec<String> = spec
                    .init_containers
                    .unwrap_or_default()
                    .into_iter()
                    .chain(spec.containers)
                    .map(|c| c.name)
                    .collect();
                files.push((
                    format!("pods/{pod}.yaml"),
                    yaml(serde_json::to_value(&p).unwrap_or(Value::Null)),
                ));
                names.into_iter().map(Some).collect()
            }
            Err(e) => {
                files.push((
                    format!("pods/{pod}.error.txt"),
                    format!("member {}: GET pod {pod}: {}\n", m.name, api_error_text(&e)),
                ));
                vec![None]
            }
        };
        for c in containers {
            let lp = LogParams {
                container: c.clone(),
                tail_lines: Some(LOG_LINES),
                timestamps: true,
                ..LogParams::default()
            };
            let file = match &c {
                Some(c) => format!("logs/{pod}/{c}"),
                None => format!("logs/{pod}"),
            };
            match pods.logs(&pod, &lp).await {
                Ok(text) => files.push((format!("{file}.log"), text)),
                Err(e) => files.push((
                    format!("{file}.error.txt"),
                    format!("GET pods/{pod}/log: {}\n", api_error_text(&e)),
                )),
            }
        }
    }
    let config_maps = k.api::<ConfigMap>();
    for m in &group.spec.members {
        let cm_name = agent_report_name(&name, &m.name);
        let dir = format!("agents/{}", m.name);
        let why = match config_maps.get(&cm_name).await {
            Ok(cm) => match agent_files(&dir, &cm) {
                Ok((mut agent, line)) => {
                    notes.push(format!("{dir}: {line}"));
                    files.append(&mut agent);
                    continue;
                }
                Err(why) => format!("ConfigMap {}/{cm_name} {why}", k.namespace),
            },
            Err(e) if is_missing(&e) => format!(
                "no ConfigMap {}/{cm_name}: member {}'s reporter has not written its agent's \
                 /status and /metrics yet (its pod is not running, its agent has not answered \
                 yet, or the member pods' Role lacks create/patch on configmaps)",
                k.namespace, m.name
            ),
            Err(e) => format!("GET configmap {cm_name}: {}", api_error_text(&e)),
        };
        files.push((format!("{dir}/MISSING.txt"), format!("{why}\n")));
    }
    notes.push(format!("{} files besides this one", files.len()));
    files.insert(0, ("README.txt".into(), notes.join("\n") + "\n"));
    files
}

/// Whether `e` says the object does not exist (on a server that serves its kind).
fn is_missing(e: &kube::Error) -> bool {
    matches!(e, kube::Error::Api(r) if r.code == 404) && !not_served(e)
}

/// The files of one agent report ConfigMap under `dir` (its `/status` redacted and indented,
/// its `/metrics` as is) and a line for the README; or why it holds no report.
pub fn agent_files(dir: &str, cm: &ConfigMap) -> Result<(Files, String), String> {
    let data = cm.data.clone().unwrap_or_default();
    let status = data
        .get(STATUS_KEY)
        .ok_or_else(|| format!("has no {STATUS_KEY}"))?;
    let status = match serde_json::from_str::<Value>(status) {
        Ok(mut v) => {
            redact(&mut v);
            serde_json::to_string_pretty(&v).unwrap_or_default() + "\n"
        }
        // Cut by the reporter (too large): kept as it is.
        Err(_) => status.clone(),
    };
    let taken = data
        .get(TAKEN_AT_KEY)
        .map_or("an unknown time", String::as_str);
    let age = taken
        .parse::<Timestamp>()
        .ok()
        .map(|t| {
            format!(
                " ({} s before this bundle)",
                (Timestamp::now() - t).get_seconds()
            )
        })
        .unwrap_or_default();
    let pod = data.get(POD_KEY).map_or("an unknown pod", String::as_str);
    let line = format!(
        "agent /status and /metrics as read by the reporter of {pod} at {taken}{age}, from \
         ConfigMap {}",
        cm.metadata.name.as_deref().unwrap_or_default()
    );
    let mut files = vec![(format!("{dir}/status.json"), status)];
    match data.get(METRICS_KEY) {
        Some(m) => files.push((format!("{dir}/metrics.txt"), m.clone())),
        None => files.push((
            format!("{dir}/metrics.error.txt"),
            format!("the ConfigMap has no {METRICS_KEY}\n"),
        )),
    }
    files.push((format!("{dir}/SNAPSHOT.txt"), format!("{line}\n")));
    Ok((files, line))
}

/// Writes `files` under the directory `top` into a gzip-compressed tar at `path`.
fn write(path: &std::path::Path, top: &str, files: &Files) -> std::io::Result<()> {
    let out = std::fs::File::create(path)?;
    let mut tar = tar::Builder::new(GzEncoder::new(out, Compression::default()));
    let mtime = Timestamp::now().as_second().max(0) as u64;
    for (name, text) in files {
        let mut h = tar::Header::new_gnu();
        h.set_size(text.len() as u64);
        h.set_mode(0o644);
        h.set_mtime(mtime);
        h.set_cksum();
        tar.append_data(&mut h, format!("{top}/{name}"), text.as_bytes())?;
    }
    tar.into_inner()?.finish()?.sync_all()
}

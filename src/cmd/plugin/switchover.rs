//! `kubectl rdg switchover GROUP MEMBER [--wait]`: asks the controller for a planned hand-over
//! the way an operator would by hand (the `rdg.infocast.io/switchover-to` annotation, which
//! the controller takes up and removes), after checking from the group's status that MEMBER
//! can take the role; `--wait` polls the status until MEMBER is hot.

use super::{Kube, not_served, refuse};
use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::jiff::Timestamp;
use kube::api::{Patch, PatchParams};
use rdg_core::State;
use rdg_operator::RedundantGroup;
use rdg_operator::aggregate::STALE_AFTER_SECS;
use rdg_operator::controller::SWITCHOVER_ANNOTATION;
use rdg_operator::status::SwitchoverPhase;
use std::process::ExitCode;
use std::time::{Duration, Instant};

/// How often `--wait` reads the status.
const POLL: Duration = Duration::from_millis(200);

/// Why `member` cannot take the hot role now, if it cannot (None: go ahead).
pub fn refusal(group: &RedundantGroup, member: &str, now: Timestamp) -> Option<String> {
    let spec = &group.spec;
    let status = group.status.clone().unwrap_or_default();
    let Some(m) = spec.member(member) else {
        let names: Vec<&str> = spec.members.iter().map(|m| m.name.as_str()).collect();
        return Some(format!(
            "{member} is not a member of this group (members: {})",
            names.join(", ")
        ));
    };
    if m.fenced {
        return Some(format!(
            "{member} is fenced; `kubectl rdg unfence` it first"
        ));
    }
    if status.hot.as_deref() == Some(member) {
        return Some(format!("{member} is already hot"));
    }
    let Some(entry) = status.member(member) else {
        return Some(format!(
            "{member} has no status entry: its agent has not reported (no pod running?)"
        ));
    };
    if entry.pod.is_none() {
        return Some(format!("{member} reports no pod"));
    }
    match &entry.last_seen {
        Some(seen) if now.as_second() - seen.0.as_second() <= STALE_AFTER_SECS => {}
        Some(seen) => {
            return Some(format!(
                "{member}'s agent last reported {} s ago: its pod is gone or cut off",
                now.as_second() - seen.0.as_second()
            ));
        }
        None => return Some(format!("{member}'s entry has no report time")),
    }
    if entry.state == Some(State::CS) || entry.net_check_ok == Some(false) {
        return Some(format!(
            "{member} is isolated (state {}, net check {}): it would not reach the network",
            entry.state.map_or("?", |s| s.as_str()),
            match entry.net_check_ok {
                Some(false) => "failing",
                Some(true) => "ok",
                None => "not run",
            }
        ));
    }
    if entry.state != Some(State::SBS) {
        return Some(format!(
            "{member} is not standing by (state {})",
            entry.state.map_or("unknown", |s| s.as_str())
        ));
    }
    if status.hot.is_none() {
        return Some("no member is hot: there is nothing to hand over".to_string());
    }
    if let Some(s) = &status.switchover
        && s.phase == SwitchoverPhase::Pending
    {
        return Some(format!(
            "a hand-over to {} ({}) is under way; wait for it to end",
            s.to, s.reason
        ));
    }
    None
}

/// Checks, asks, and with `wait` waits until `member` is hot.
pub async fn run(
    k: &Kube,
    name: &str,
    member: &str,
    wait: Option<Duration>,
) -> Result<ExitCode, String> {
    let group = k.group(name).await?;
    if let Some(why) = refusal(&group, member, Timestamp::now()) {
        return refuse(why);
    }
    // The pod itself, where the API server serves pods: a deleted pod's agent may have
    // reported a moment ago.
    let pod = group
        .status
        .as_ref()
        .and_then(|s| s.member(member))
        .and_then(|e| e.pod.clone())
        .unwrap_or_default();
    match k.api::<Pod>().get(&pod).await {
        Ok(p) if p.metadata.deletion_timestamp.is_some() => {
            return refuse(format!("{member}'s pod {pod} is being deleted"));
        }
        Ok(_) => {}
        Err(e) if not_served(&e) => {}
        Err(kube::Error::Api(e)) if e.code == 404 => {
            return refuse(format!("{member}'s pod {pod} does not exist"));
        }
        Err(e) => return Err(format!("cannot read pod {pod}: {e}")),
    }
    let from = group
        .status
        .as_ref()
        .and_then(|s| s.hot.clone())
        .unwrap_or_default();
    let body = serde_json::json!({"metadata": {"annotations": {SWITCHOVER_ANNOTATION: member}}});
    let asked = Instant::now();
    let asked_at = Timestamp::now();
    k.api::<RedundantGroup>()
        .patch(name, &PatchParams::default(), &Patch::Merge(&body))
        .await
        .map_err(|e| format!("cannot annotate RedundantGroup {name}: {e}"))?;
    println!(
        "asked for a planned hand-over of {name} from {from} to {member} ({SWITCHOVER_ANNOTATION}={member})"
    );
    let Some(timeout) = wait else {
        println!("the controller carries it out; see `kubectl rdg status {name}`");
        return Ok(ExitCode::SUCCESS);
    };
    loop {
        let g = k.group(name).await?;
        let st = g.status.unwrap_or_default();
        if st.hot.as_deref() == Some(member) {
            println!(
                "{member} is hot after {:.1} s (epoch {})",
                asked.elapsed().as_secs_f64(),
                st.epoch.map_or("?".to_string(), |e| e.to_string())
            );
            return Ok(ExitCode::SUCCESS);
        }
        if let Some(s) = &st.switchover
            && s.to == member
            && s.phase == SwitchoverPhase::Failed
            && s.requested.0.as_second() >= asked_at.as_second()
        {
            eprintln!(
                "kubectl rdg: the hand-over to {member} failed: {}",
                s.message.as_deref().unwrap_or("no reason given")
            );
            return Ok(ExitCode::FAILURE);
        }
        if asked.elapsed() >= timeout {
            eprintln!(
                "kubectl rdg: {member} is not hot after {} s (hot: {}, hand-over: {})",
                timeout.as_secs(),
                st.hot.as_deref().unwrap_or("none"),
                st.switchover
                    .map(|s| format!("{:?} to {}", s.phase, s.to))
                    .unwrap_or_else(|| "not taken up".into())
            );
            return Ok(ExitCode::FAILURE);
        }
        tokio::time::sleep(POLL).await;
    }
}

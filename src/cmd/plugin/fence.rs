//! `kubectl rdg fence|unfence GROUP MEMBER`: sets or removes `spec.members[i].fenced` with a
//! JSON patch guarded by a test of the member's name, so a member list changed meanwhile makes
//! the patch fail rather than fence another member. The controller does the rest: it renders
//! the member with priority 0 and rolls the pods (a hot member hands over first).

use super::{Kube, refuse};
use kube::api::{Patch, PatchParams};
use rdg_operator::RedundantGroup;
use std::process::ExitCode;

/// Fences (`fence` true) or unfences `member`.
pub async fn run(k: &Kube, name: &str, member: &str, fence: bool) -> Result<ExitCode, String> {
    let group = k.group(name).await?;
    let spec = &group.spec;
    let Some(i) = spec.members.iter().position(|m| m.name == member) else {
        let names: Vec<&str> = spec.members.iter().map(|m| m.name.as_str()).collect();
        return refuse(format!(
            "{member} is not a member of {name} (members: {})",
            names.join(", ")
        ));
    };
    let m = &spec.members[i];
    if m.fenced == fence {
        println!(
            "{member} is already {}",
            if fence { "fenced" } else { "not fenced" }
        );
        return Ok(ExitCode::SUCCESS);
    }
    if fence
        && !spec
            .members
            .iter()
            .any(|o| o.name != member && o.effective_priority() > 0)
    {
        return refuse(format!(
            "fencing {member} would leave no member of {name} that can become hot"
        ));
    }
    let at = format!("/spec/members/{i}");
    let ops = if fence {
        serde_json::json!([
            {"op": "test", "path": format!("{at}/name"), "value": member},
            {"op": "add", "path": format!("{at}/fenced"), "value": true},
        ])
    } else {
        serde_json::json!([
            {"op": "test", "path": format!("{at}/name"), "value": member},
            {"op": "remove", "path": format!("{at}/fenced")},
        ])
    };
    let patch: json_patch::Patch = serde_json::from_value(ops).map_err(|e| e.to_string())?;
    k.api::<RedundantGroup>()
        .patch(name, &PatchParams::default(), &Patch::Json::<()>(patch))
        .await
        .map_err(|e| format!("cannot patch RedundantGroup {name}: {e}"))?;
    let hot = group.status.as_ref().and_then(|s| s.hot.as_deref());
    if fence {
        println!(
            "{member} fenced: the controller renders it with priority 0, so it is never elected hot"
        );
        if hot == Some(member) {
            println!(
                "{member} is hot: the pods are rolled standbys first, then {member} hands over to the best standby"
            );
        } else {
            println!(
                "the pods are rolled one at a time, standbys first (at most one planned hand-over)"
            );
        }
        println!("it stays fenced, across restarts, until `kubectl rdg unfence {name} {member}`");
    } else {
        println!(
            "{member} unfenced: it runs with priority {} again once the pods are rolled",
            m.priority
        );
    }
    Ok(ExitCode::SUCCESS)
}

//! `kubectl rdg status GROUP`: the group on one screen, from its status (the members' own
//! entries and the controller's aggregate), its spec and its Events. Coloured on a terminal
//! (anstream strips the colours when stdout is not one, or with NO_COLOR).

use super::{Format, Kube, api_error_text, not_served};
use anstyle::{AnsiColor, Style};
use k8s_openapi::api::core::v1::Event;
use k8s_openapi::jiff::Timestamp;
use kube::api::ListParams;
use rdg_core::State;
use rdg_operator::RedundantGroup;
use rdg_operator::aggregate::STALE_AFTER_SECS;
use rdg_operator::status::{MemberEntry, Phase, RedundantGroupStatus};
use std::fmt::Write as _;
use std::process::ExitCode;

/// Most recent Events shown.
const EVENTS_SHOWN: usize = 10;

const BOLD: Style = Style::new().bold();
const GOOD: Style = AnsiColor::Green.on_default();
const WARN: Style = AnsiColor::Yellow.on_default();
const BAD: Style = AnsiColor::Red.on_default().bold();
const DIM: Style = Style::new().dimmed();

/// `text` in `style` (escape codes; stripped later when not on a terminal).
fn paint(style: Style, text: impl std::fmt::Display) -> String {
    format!("{style}{text}{style:#}")
}

/// Prints the screen (or the status as data); exit 0 when shown, whatever the phase.
pub async fn run(k: &Kube, name: &str, output: Option<Format>) -> Result<ExitCode, String> {
    let group = k.group(name).await?;
    if let Some(format) = output {
        let status = group.status.clone().unwrap_or_default();
        let text = match format {
            Format::Json => serde_json::to_string_pretty(&status).map_err(|e| e.to_string())?,
            Format::Yaml => serde_yaml_ng::to_string(&status).map_err(|e| e.to_string())?,
        };
        println!("{}", text.trim_end());
        return Ok(ExitCode::SUCCESS);
    }
    let events = group_events(k, name).await;
    let screen = render(&group, &events, Timestamp::now());
    use std::io::Write;
    let mut out = anstream::stdout();
    out.write_all(screen.as_bytes())
        .and_then(|()| out.flush())
        .map_err(|e| format!("cannot write: {e}"))?;
    Ok(ExitCode::SUCCESS)
}

/// The group's Events (core/v1, involvedObject = the group), newest last; Err with a note
/// when they cannot be read (the apiextensions-apiserver, for one, serves none).
pub async fn group_events(k: &Kube, name: &str) -> Result<Vec<Event>, String> {
    let lp = ListParams::default().fields(&format!(
        "involvedObject.kind=RedundantGroup,involvedObject.name={name}"
    ));
    match k.api::<Event>().list(&lp).await {
        Ok(list) => {
            let mut events = list.items;
            events.sort_by_key(event_time);
            Ok(events)
        }
        Err(e) if not_served(&e) => {
            Err("this API server does not serve core/v1 Events".to_string())
        }
        Err(e) => Err(format!("cannot list Events: {}", api_error_text(&e))),
    }
}

/// When an Event last happened, as best known.
fn event_time(e: &Event) -> Option<Timestamp> {
    e.last_timestamp
        .as_ref()
        .map(|t| t.0)
        .or(e.event_time.as_ref().map(|t| t.0))
        .or(e.first_timestamp.as_ref().map(|t| t.0))
        .or(e.metadata.creation_timestamp.as_ref().map(|t| t.0))
}

/// A duration in seconds as kubectl shows ages: `42s`, `3m12s`, `5h3m`, `2d4h`.
pub fn age(secs: i64) -> String {
    let s = secs.max(0);
    match s {
        0..60 => format!("{s}s"),
        60..3600 => format!("{}m{}s", s / 60, s % 60),
        3600..86400 => format!("{}h{}m", s / 3600, (s % 3600) / 60),
        _ => format!("{}d{}h", s / 86400, (s % 86400) / 3600),
    }
}

fn phase_style(p: Option<Phase>) -> Style {
    match p {
        Some(Phase::Healthy) => GOOD,
        Some(Phase::Degraded) => WARN,
        _ => BAD,
    }
}

/// The role of a member as one word: its state, or why it has none.
fn role(entry: Option<&MemberEntry>, hot: Option<&str>, now: Timestamp) -> (String, Style) {
    let Some(e) = entry else {
        return ("no report".into(), BAD);
    };
    if let Some(seen) = &e.last_seen
        && now.as_second() - seen.0.as_second() > STALE_AFTER_SECS
    {
        return ("stale".into(), BAD);
    }
    match e.state {
        Some(State::HS) if hot == Some(e.name.as_str()) => ("HOT".into(), GOOD.bold()),
        Some(State::HS) => ("HS (claim)".into(), BAD),
        Some(State::SBS) => ("standby".into(), GOOD),
        Some(State::CS) => ("CS isolated".into(), BAD),
        Some(s) => (s.as_str().to_string(), WARN),
        None => ("unknown".into(), WARN),
    }
}

/// The whole screen as text with colour escapes.
pub fn render(
    group: &RedundantGroup,
    events: &Result<Vec<Event>, String>,
    now: Timestamp,
) -> String {
    use kube::ResourceExt;
    let st: RedundantGroupStatus = group.status.clone().unwrap_or_default();
    let spec = &group.spec;
    let mut o = String::new();
    let hot = st.hot.as_deref();
    let _ = writeln!(
        o,
        "{} {}/{}   phase {}   hot {}   epoch {}",
        paint(BOLD, "RedundantGroup"),
        group.namespace().unwrap_or_default(),
        paint(BOLD, group.name_any()),
        paint(
            phase_style(st.phase),
            st.phase.map_or("Unknown".to_string(), |p| p.to_string())
        ),
        match hot {
            Some(h) => paint(GOOD.bold(), h),
            None => paint(BAD, "NONE"),
        },
        st.epoch.map_or("-".to_string(), |e| e.to_string()),
    );
    let hb = &spec.heartbeat;
    let lease = (hb.interval.get() + hb.timeout.get()) / 2;
    let _ = writeln!(
        o,
        "  ready {}   heartbeat every {} (lost after {}), lease {:?}{}",
        st.ready.as_deref().unwrap_or("-"),
        hb.interval,
        hb.timeout,
        lease,
        match st.observed_generation {
            Some(g) if group.metadata.generation.is_some_and(|cur| cur != g) => paint(
                WARN,
                format!("   (status of generation {g}, spec is newer)")
            ),
            _ => String::new(),
        }
    );
    if !st.conditions.is_empty() {
        let _ = writeln!(o, "{}", paint(BOLD, "Conditions"));
        let width = st
            .conditions
            .iter()
            .map(|c| c.type_.len())
            .max()
            .unwrap_or(0);
        for c in &st.conditions {
            // Degraded and SplitBrain are bad when True; the others when False; Unknown is
            // neither (e.g. ContentConsistent without a carousel).
            let good =
                (c.status == "True") != matches!(c.type_.as_str(), "Degraded" | "SplitBrain");
            let status = format!("{:<7}", c.status);
            let status = if c.status == "Unknown" {
                status
            } else {
                paint(if good { GOOD } else { BAD }, status)
            };
            let _ = writeln!(
                o,
                "  {:<width$} {status} {:<14} {}",
                c.type_, c.reason, c.message
            );
        }
    }
    let hot_entry = hot.and_then(|h| st.member(h));
    if !spec.vips.is_empty() {
        let _ = writeln!(o, "{}", paint(BOLD, "VIPs"));
        for v in &spec.vips {
            let holder = match (hot, hot_entry.and_then(|e| e.vips_ok)) {
                (Some(h), Some(true)) => paint(GOOD, format!("held by {h}")),
                (Some(h), Some(false)) => paint(BAD, format!("NOT all held by hot member {h}")),
                (Some(h), None) => format!("hot member {h} (not reported)"),
                (None, _) => paint(BAD, "no hot member"),
            };
            let _ = writeln!(o, "  {:<20} on {:<10} {holder}", v.address, v.network);
        }
        for e in st.members.iter().filter(|e| Some(e.name.as_str()) != hot) {
            if e.vips_ok == Some(false) {
                let _ = writeln!(
                    o,
                    "  {}",
                    paint(BAD, format!("{} is not hot but still holds a VIP", e.name))
                );
            }
        }
    }
    let _ = writeln!(o, "{}", paint(BOLD, "Members"));
    let _ = writeln!(
        o,
        "  {:<14} {:<12} {:>6}  {:<16} {:<22} {:<26} {:<8} {:<9} FENCED",
        "NAME", "ROLE", "PRIO", "NODE", "POD", "HEARTBEAT", "NETCHECK", "REPORTED"
    );
    for m in &spec.members {
        let entry = st.member(&m.name);
        let (role, style) = role(entry, hot, now);
        let node = m
            .node_name
            .clone()
            .or_else(|| entry.and_then(|e| e.node.clone()))
            .unwrap_or_else(|| "-".into());
        let pod = entry
            .and_then(|e| e.pod.clone())
            .unwrap_or_else(|| "-".into());
        let heartbeat = entry
            .map(|e| {
                e.networks
                    .iter()
                    .map(|n| {
                        if n.healthy {
                            format!("{} ok", n.name)
                        } else if n.silent.is_empty() {
                            format!("{} BAD", n.name)
                        } else {
                            format!("{} silent:{}", n.name, n.silent.join("+"))
                        }
                    })
                    .collect::<Vec<_>>()
                    .join(", ")
            })
            .filter(|s| !s.is_empty())
            .unwrap_or_else(|| "-".into());
        let hb_style = if entry.is_some_and(|e| e.networks.iter().all(|n| n.healthy)) {
            Style::new()
        } else {
            WARN
        };
        let (net, net_style) = match entry.and_then(|e| e.net_check_ok) {
            Some(true) => ("ok", Style::new()),
            Some(false) => ("FAILING", BAD),
            None => ("-", Style::new()),
        };
        let reported = entry
            .and_then(|e| e.last_seen.as_ref())
            .map(|t| format!("{} ago", age(now.as_second() - t.0.as_second())))
            .unwrap_or_else(|| "never".into());
        let fenced = if m.fenced {
            paint(WARN, "FENCED")
        } else {
            "-".into()
        };
        let prio = if m.fenced {
            format!("{}→0", m.priority)
        } else {
            m.priority.to_string()
        };
        let _ = writeln!(
            o,
            "  {:<14} {} {:>6}  {:<16} {:<22} {} {} {:<9} {}",
            m.name,
            paint(style, format!("{role:<12}")),
            prio,
            node,
            pod,
            paint(hb_style, format!("{heartbeat:<26}")),
            paint(net_style, format!("{net:<8}")),
            reported,
            fenced
        );
    }
    if let Some(f) = &st.last_failover {
        let _ = writeln!(
            o,
            "{} {} → {} ({}){}, {} ago{}",
            paint(BOLD, "Last failover"),
            f.from.as_deref().unwrap_or("nobody"),
            f.to,
            f.reason,
            f.detection_ms
                .map(|d| format!(", detected after {d} ms"))
                .unwrap_or_default(),
            age(now.as_second() - f.time.0.as_second()),
            f.epoch.map(|e| format!(", epoch {e}")).unwrap_or_default()
        );
    } else {
        let _ = writeln!(o, "{} none recorded", paint(BOLD, "Last failover"));
    }
    if let Some(s) = &st.switchover {
        let _ = writeln!(
            o,
            "{} to {} ({}): {:?}, asked {} ago{}",
            paint(BOLD, "Switchover"),
            s.to,
            s.reason,
            s.phase,
            age(now.as_second() - s.requested.0.as_second()),
            s.message
                .as_ref()
                .map(|m| format!(": {m}"))
                .unwrap_or_default()
        );
    }
    let _ = writeln!(o, "{}", paint(BOLD, "Events"));
    match events {
        Err(note) => {
            let _ = writeln!(o, "  {}", paint(DIM, format!("(none shown: {note})")));
        }
        Ok(list) if list.is_empty() => {
            let _ = writeln!(o, "  (none)");
        }
        Ok(list) => {
            for e in list.iter().rev().take(EVENTS_SHOWN).rev() {
                let kind = e.type_.as_deref().unwrap_or("");
                let when = event_time(e)
                    .map(|t| format!("{} ago", age(now.as_second() - t.as_second())))
                    .unwrap_or_default();
                let _ = writeln!(
                    o,
                    "  {:<9} {} {:<20} {}",
                    when,
                    paint(
                        if kind == "Warning" {
                            WARN
                        } else {
                            Style::new()
                        },
                        format!("{kind:<8}")
                    ),
                    e.reason.as_deref().unwrap_or(""),
                    e.message.as_deref().unwrap_or("")
                );
            }
        }
    }
    o
}

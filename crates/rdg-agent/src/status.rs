//! The local status endpoint: `GET /status` (JSON: this member, its view of every member, the
//! hot member, epoch, per-network heartbeat health, net check), `GET /healthz` (200 while the
//! agent loop answers), `GET /metrics` (Prometheus text) and `POST /switchover?to=MEMBER` (an
//! operator's planned hand-over, only with the member's token as `Authorization: Bearer`; see
//! [`crate::switchover_token`]). Requests that need the agent's state are answered by the
//! agent loop itself over a channel, so a report is never stale and costs nothing unless asked.

use crate::metrics::Metrics;
use crate::switchover_token::Token;
use axum::Router;
use axum::extract::{ConnectInfo, Query, State as AxState};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Json, Response};
use axum::routing::{get, post};
use rdg_core::State;
use serde::{Deserialize, Serialize};
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{mpsc, oneshot};

/// How long an HTTP request waits for the agent loop before answering 503.
const LOOP_TIMEOUT: Duration = Duration::from_secs(1);

/// `/status` body. Its top level is a superset of `rdg status --json` (group, hot, epoch,
/// members with name, state and priority).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StatusReport {
    /// Group name ("" when standalone).
    pub group: String,
    /// This member.
    pub member: String,
    /// This member's state.
    pub state: State,
    /// This member's temporal state (D2000 name, e.g. `iNone`).
    pub temporal: String,
    /// Epoch this member knows (its own when hot).
    pub epoch: u64,
    /// The hot member this member believes in.
    pub hot: Option<String>,
    /// This member's priority.
    pub priority: u16,
    /// Time left on the hot lease (hot only).
    pub lease_remaining_ms: Option<u64>,
    /// Net-check state.
    pub net_check: NetCheckStatus,
    /// This member's networks.
    pub networks: Vec<NetworkStatus>,
    /// Every member of the group, this one included, in configuration order.
    pub members: Vec<MemberStatus>,
    /// The group's virtual IPs on this member.
    pub vips: Vec<VipStatus>,
    /// When and why this member last became hot (None: not since the agent started). The
    /// Kubernetes reporter turns an unplanned one into the member's `lastTakeover`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_became_hot: Option<LastBecameHot>,
    /// This member's carousel and how it compares with the hot member's (None: no
    /// transmitter configured, or not read yet).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub content: Option<ContentStatus>,
}

/// This member's carousel as `/status` reports it (`content`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ContentStatus {
    /// Digest of the whole carousel (16 hex digits); equal digests mean the same carousel.
    pub digest: String,
    /// Every object: `address:port/name`, its size and the first 8 hex digits of its hash
    /// (None when its file was never readable).
    pub objects: Vec<ContentObject>,
    /// The hot member last compared with (None: no comparison yet, or this member is hot).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub compared_with: Option<String>,
    /// Same carousel as `comparedWith` (None: not compared).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub consistent: Option<bool>,
    /// Objects of this member whose content differs from the hot member's, or that it does
    /// not send (`address:port/name`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub differing: Vec<String>,
    /// The difference in words.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub difference: Option<String>,
}

/// One carousel object in [`ContentStatus`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ContentObject {
    /// `address:port/name`.
    pub key: String,
    /// Bytes.
    pub size: u64,
    /// First 8 hex digits of the object's hash.
    pub version: Option<String>,
}

/// When and why a member last became hot, as `/status` reports it (`lastBecameHot`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LastBecameHot {
    /// The member that was hot before (None: none was known).
    pub from: Option<String>,
    /// `election`, `takeover`, `handover` or `standalone`.
    pub reason: String,
    /// True for a planned hand-over (operator switchover, preemption, graceful stop).
    pub planned: bool,
    /// Epoch of the new term.
    pub epoch: u64,
    /// Wall-clock time it became hot, in milliseconds since the Unix epoch.
    pub unix_ms: u64,
    /// How long after the old hot member's last heartbeat its loss was detected, in ms (None:
    /// no member was lost, e.g. a start-up election, a hand-over or a graceful leave).
    pub detection_ms: Option<u64>,
}

/// Remembers the last loss of the hot member and the last time this member became hot, fed by
/// the election core's `HotLost` and `BecameHot` events, so `/status` can say when and why.
#[derive(Debug, Default)]
pub struct HotHistory {
    /// The hot member lost most recently, and its detection time (None when it left).
    lost: Option<(String, Option<u64>)>,
    last: Option<LastBecameHot>,
}

impl HotHistory {
    /// Notes that `member`, the hot member, was lost `silent_for` after its last heartbeat
    /// (`left`: it announced a graceful stop, so there was nothing to detect).
    pub fn hot_lost(&mut self, member: &str, silent_for: Duration, left: bool) {
        let ms = (!left).then_some(silent_for.as_millis() as u64);
        self.lost = Some((member.to_string(), ms));
    }

    /// Notes that this member became hot now.
    pub fn became_hot(
        &mut self,
        epoch: u64,
        reason: rdg_core::election::HotReason,
        previous: Option<&str>,
    ) {
        use rdg_core::election::HotReason;
        let detection_ms = self
            .lost
            .take()
            .filter(|(m, _)| Some(m.as_str()) == previous)
            .and_then(|(_, ms)| ms);
        let unix_ms = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as u64);
        self.last = Some(LastBecameHot {
            from: previous.map(str::to_string),
            reason: reason.as_str().to_string(),
            planned: reason == HotReason::Handover,
            epoch,
            unix_ms,
            detection_ms: (reason == HotReason::Takeover)
                .then_some(detection_ms)
                .flatten(),
        });
    }

    /// The last time this member became hot, if it did.
    pub fn last(&self) -> Option<&LastBecameHot> {
        self.last.as_ref()
    }
}

/// One VIP on this member.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct VipStatus {
    /// The VIP as configured.
    pub address: String,
    /// The interface it goes on.
    pub interface: String,
    /// Whether it is on this host.
    pub held: bool,
    /// Why it could not be added (hot, but missing).
    pub error: Option<String>,
}

/// Net-check part of [`StatusReport`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct NetCheckStatus {
    /// Whether targets are configured.
    pub enabled: bool,
    /// Last round's verdict (None before the first round or when disabled).
    pub ok: Option<bool>,
    /// The targets pinged.
    pub targets: Vec<IpAddr>,
}

/// One network of this member.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct NetworkStatus {
    /// Network name.
    pub name: String,
    /// This member's address on it.
    pub address: Option<IpAddr>,
    /// Multicast group, or None for unicast.
    pub multicast: Option<IpAddr>,
}

/// One member as this member sees it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MemberStatus {
    /// Member name.
    pub name: String,
    /// True for the member answering.
    #[serde(rename = "self")]
    pub is_self: bool,
    /// Last reported state (None: never heard).
    pub state: Option<State>,
    /// Last reported temporal state.
    pub temporal: Option<String>,
    /// Configured priority.
    pub priority: u16,
    /// Last reported epoch.
    pub epoch: Option<u64>,
    /// Whether it reports a passing net check.
    pub net_check_ok: Option<bool>,
    /// Heard on any network within the heartbeat timeout (always true for itself).
    pub alive: bool,
    /// Per-network heartbeat health (empty for itself).
    pub networks: Vec<PeerNetworkStatus>,
}

/// Heartbeat health of one member on one network.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PeerNetworkStatus {
    /// Network name.
    pub name: String,
    /// Heard on this network within the heartbeat timeout.
    pub healthy: bool,
    /// Time since the last heartbeat on this network.
    pub last_heard_ms_ago: Option<u64>,
    /// Silent on this network while heard on another: reported as a network anomaly.
    pub anomaly: bool,
    /// Where its datagrams come from on this network.
    pub address: Option<SocketAddr>,
}

/// A request from the HTTP side to the agent loop.
#[derive(Debug)]
pub enum Request {
    /// Build a status report.
    Status(oneshot::Sender<StatusReport>),
    /// Prove the loop runs; the answer is why the member is unhealthy, if it is.
    Health(oneshot::Sender<Option<String>>),
    /// Start a planned hand-over to this member.
    Switchover(String, oneshot::Sender<Result<(), String>>),
}

#[derive(Clone)]
struct Shared {
    tx: mpsc::Sender<Request>,
    metrics: Arc<Metrics>,
    token: Arc<Token>,
}

/// Serves the endpoint on an already bound listener until the process ends; `token` is the
/// credential a switchover request must carry.
pub async fn serve(
    listener: tokio::net::TcpListener,
    tx: mpsc::Sender<Request>,
    metrics: Arc<Metrics>,
    token: Token,
) {
    let app = Router::new()
        .route("/status", get(status))
        .route("/healthz", get(healthz))
        .route("/metrics", get(metrics_text))
        .route("/switchover", post(switchover))
        .with_state(Shared {
            tx,
            metrics,
            token: Arc::new(token),
        });
    let app = app.into_make_service_with_connect_info::<SocketAddr>();
    if let Err(e) = axum::serve(listener, app).await {
        tracing::error!(error = %e, "status endpoint stopped");
    }
}

async fn ask<T>(
    s: &Shared,
    make: impl FnOnce(oneshot::Sender<T>) -> Request,
) -> Result<T, Response> {
    let (tx, rx) = oneshot::channel();
    let unavailable = || {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            "the agent loop is not answering\n",
        )
            .into_response()
    };
    if s.tx.send(make(tx)).await.is_err() {
        return Err(unavailable());
    }
    match tokio::time::timeout(LOOP_TIMEOUT, rx).await {
        Ok(Ok(v)) => Ok(v),
        _ => Err(unavailable()),
    }
}

async fn status(AxState(s): AxState<Shared>) -> Response {
    match ask(&s, Request::Status).await {
        Ok(report) => Json(report).into_response(),
        Err(r) => r,
    }
}

async fn healthz(AxState(s): AxState<Shared>) -> Response {
    match ask(&s, Request::Health).await {
        Ok(None) => (StatusCode::OK, "ok\n").into_response(),
        Ok(Some(why)) => (StatusCode::SERVICE_UNAVAILABLE, format!("{why}\n")).into_response(),
        Err(r) => r,
    }
}

async fn metrics_text(AxState(s): AxState<Shared>) -> Response {
    metrics_response(s.metrics.encode())
}

fn metrics_response(text: String) -> Response {
    (
        [(
            axum::http::header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        text,
    )
        .into_response()
}

/// Serves `GET /metrics` (Prometheus text of `registry`) alone on an already bound listener
/// until the process ends: the endpoint of a process without an agent (`rdg transmit`).
pub async fn serve_metrics(
    listener: tokio::net::TcpListener,
    registry: Arc<prometheus_client::registry::Registry>,
) {
    let app = Router::new().route(
        "/metrics",
        get(move || {
            let registry = Arc::clone(&registry);
            async move { metrics_response(crate::metrics::encode(&registry)) }
        }),
    );
    if let Err(e) = axum::serve(listener, app).await {
        tracing::error!(error = %e, "metrics endpoint stopped");
    }
}

#[derive(Deserialize)]
struct SwitchoverQuery {
    /// Absent: refused after the credential check, so an unauthorised caller learns nothing.
    to: Option<String>,
}

async fn switchover(
    AxState(s): AxState<Shared>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    Query(q): Query<SwitchoverQuery>,
) -> Response {
    let presented = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok());
    if !s.token.accepts_header(presented) {
        s.metrics.switchover_unauthorized.inc();
        tracing::warn!(
            %peer,
            to = q.to.as_deref().unwrap_or(""),
            credential = if presented.is_some() { "wrong" } else { "missing" },
            "switchover refused: the request does not carry this member's token"
        );
        return (
            StatusCode::UNAUTHORIZED,
            [(header::WWW_AUTHENTICATE, "Bearer realm=\"rdg\"")],
            "switchover needs the member's token (Authorization: Bearer, see status.tokenFile)\n",
        )
            .into_response();
    }
    let Some(to) = q.to else {
        return (StatusCode::BAD_REQUEST, "missing ?to=MEMBER\n").into_response();
    };
    match ask(&s, |tx| Request::Switchover(to.clone(), tx)).await {
        Ok(Ok(())) => (
            StatusCode::ACCEPTED,
            format!("switchover to {to} requested\n"),
        )
            .into_response(),
        Ok(Err(why)) => (StatusCode::BAD_REQUEST, format!("{why}\n")).into_response(),
        Err(r) => r,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rdg_core::election::HotReason;

    #[test]
    fn a_takeover_carries_the_detection_time_of_the_lost_member() {
        let mut h = HotHistory::default();
        assert_eq!(h.last(), None);
        h.hot_lost("ics-a", Duration::from_millis(510), false);
        h.became_hot(3, HotReason::Takeover, Some("ics-a"));
        let last = h.last().unwrap();
        assert_eq!(last.from.as_deref(), Some("ics-a"));
        assert_eq!(last.reason, "takeover");
        assert!(!last.planned);
        assert_eq!(last.epoch, 3);
        assert_eq!(last.detection_ms, Some(510));
        assert!(last.unix_ms > 1_700_000_000_000);
    }

    #[test]
    fn a_hand_over_is_planned_and_a_graceful_leave_has_no_detection_time() {
        let mut h = HotHistory::default();
        h.became_hot(2, HotReason::Handover, Some("ics-a"));
        assert!(h.last().unwrap().planned);
        assert_eq!(h.last().unwrap().detection_ms, None);
        h.hot_lost("ics-c", Duration::from_millis(20), true);
        h.became_hot(4, HotReason::Takeover, Some("ics-c"));
        assert_eq!(h.last().unwrap().detection_ms, None);
        assert!(!h.last().unwrap().planned);
    }

    #[test]
    fn reports_without_the_new_field_still_parse() {
        let mut v = serde_json::json!({
            "group": "g", "member": "a", "state": "SBS", "temporal": "iNone", "epoch": 1,
            "hot": null, "priority": 1, "leaseRemainingMs": null,
            "netCheck": {"enabled": false, "ok": null, "targets": []},
            "networks": [], "members": [], "vips": []
        });
        let r: StatusReport = serde_json::from_value(v.clone()).unwrap();
        assert_eq!(r.last_became_hot, None);
        assert!(
            serde_json::to_value(&r)
                .unwrap()
                .get("lastBecameHot")
                .is_none()
        );
        v["lastBecameHot"] = serde_json::json!({"from": null, "reason": "election",
            "planned": false, "epoch": 1, "unixMs": 5, "detectionMs": null});
        let r: StatusReport = serde_json::from_value(v).unwrap();
        assert_eq!(r.last_became_hot.unwrap().reason, "election");
    }
}

//! The local status endpoint: `GET /status` (JSON: this member, its view of every member, the
//! hot member, epoch, per-network heartbeat health, net check), `GET /healthz` (200 while the
//! agent loop answers), `GET /metrics` (Prometheus text) and `POST /switchover?to=MEMBER` (an
//! operator's planned hand-over). Requests that need the agent's state are answered by the
//! agent loop itself over a channel, so a report is never stale and costs nothing unless asked.

use crate::metrics::Metrics;
use axum::Router;
use axum::extract::{Query, State as AxState};
use axum::http::StatusCode;
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
}

/// Serves the endpoint on an already bound listener until the process ends.
pub async fn serve(
    listener: tokio::net::TcpListener,
    tx: mpsc::Sender<Request>,
    metrics: Arc<Metrics>,
) {
    let app = Router::new()
        .route("/status", get(status))
        .route("/healthz", get(healthz))
        .route("/metrics", get(metrics_text))
        .route("/switchover", post(switchover))
        .with_state(Shared { tx, metrics });
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
    (
        [(
            axum::http::header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        s.metrics.encode(),
    )
        .into_response()
}

#[derive(Deserialize)]
struct SwitchoverQuery {
    to: String,
}

async fn switchover(AxState(s): AxState<Shared>, Query(q): Query<SwitchoverQuery>) -> Response {
    match ask(&s, |tx| Request::Switchover(q.to.clone(), tx)).await {
        Ok(Ok(())) => (
            StatusCode::ACCEPTED,
            format!("switchover to {} requested\n", q.to),
        )
            .into_response(),
        Ok(Err(why)) => (StatusCode::BAD_REQUEST, format!("{why}\n")).into_response(),
        Err(r) => r,
    }
}

//! The agent's Prometheus metrics (served at `/metrics`): role, epoch, transitions, datagrams
//! sent/received/rejected per network and reason, net-check rounds, failover detection time.
//! Counters are atomics, so the status server reads them without asking the agent loop.
//! [`CarouselMetrics`] are the transmitter's, registered here when the agent runs the carousel
//! and served alone by `rdg transmit --metrics-listen`.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;
use rdg_core::State;

/// Label set: one network.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct NetLabels {
    /// Network name from the configuration.
    pub network: String,
}

/// Label set: one network and a reason.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RejectLabels {
    /// Network name from the configuration.
    pub network: String,
    /// Short reason label (`bad_mac`, `wrong_group`, `replayed`, ...).
    pub reason: String,
}

/// Label set: one reason or kind.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ReasonLabels {
    /// Short reason label.
    pub reason: String,
}

/// Label set: one VIP.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct VipLabels {
    /// The VIP as configured (`10.0.0.100/24`).
    pub vip: String,
}

/// Label set: one VIP and an ARP probe's verdict.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct VipProbeLabels {
    /// The VIP as configured (`10.0.0.100/24`).
    pub vip: String,
    /// `free`, `member_leftover`, `foreign` or `error` (the probe could not run).
    pub verdict: String,
}

/// Label set: one member state.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct StateLabels {
    /// `HS`, `SBS`, `CS`, `SS`, `FS` or `TS`.
    pub state: String,
}

/// Label set: one net-check outcome.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ResultLabels {
    /// `ok` or `failed`.
    pub result: String,
}

/// Label set: one carousel channel.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ChannelLabels {
    /// The channel's destination, `address:port`.
    pub channel: String,
}

/// The carousel transmitter's metrics, per channel. Clones share the values: the transmitter
/// counts into the same atomics the registry encodes, so the send path copies nothing.
#[derive(Clone, Debug, Default)]
pub struct CarouselMetrics {
    /// UDP payload bytes sent (frame header included).
    pub bytes_sent: Family<ChannelLabels, Counter>,
    /// Datagrams sent.
    pub datagrams_sent: Family<ChannelLabels, Counter>,
    /// Sends that failed (network down, no route, ...).
    pub send_errors: Family<ChannelLabels, Counter>,
    /// Completed passes over the channel's objects.
    pub cycles: Family<ChannelLabels, Counter>,
    /// 1 while the gate lets the channel send, 0 while it is gated off.
    pub sending: Family<ChannelLabels, Gauge>,
}

impl CarouselMetrics {
    /// Registers every carousel metric into `registry` (names get its prefix, `rdg`).
    pub fn register(&self, registry: &mut Registry) {
        registry.register(
            "carousel_bytes_sent",
            "Carousel bytes sent (UDP payload, frame header included), per channel",
            self.bytes_sent.clone(),
        );
        registry.register(
            "carousel_datagrams_sent",
            "Carousel datagrams sent, per channel",
            self.datagrams_sent.clone(),
        );
        registry.register(
            "carousel_send_errors",
            "Carousel datagrams that could not be sent, per channel",
            self.send_errors.clone(),
        );
        registry.register(
            "carousel_cycles",
            "Completed passes over the channel's objects, per channel",
            self.cycles.clone(),
        );
        registry.register(
            "carousel_sending",
            "1 while the gate lets the channel send, 0 while it is gated off",
            self.sending.clone(),
        );
    }

    /// A registry (prefix `rdg`) of the carousel metrics alone, as `rdg transmit` serves them.
    pub fn registry(&self) -> Registry {
        let mut registry = Registry::with_prefix("rdg");
        self.register(&mut registry);
        registry
    }
}

/// `registry` in the Prometheus text format.
pub fn encode(registry: &Registry) -> String {
    let mut out = String::new();
    // Writing into a String cannot fail.
    let _ = prometheus_client::encoding::text::encode(&mut out, registry);
    out
}

/// Every metric the agent exports.
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    /// 1 for the current state, 0 for the others.
    pub state: Family<StateLabels, Gauge>,
    /// Epoch this member knows (its own term when hot).
    pub epoch: Gauge,
    /// State changes, by the state entered.
    pub transitions: Family<StateLabels, Counter>,
    /// Heartbeats sent, per network.
    pub heartbeats_sent: Family<NetLabels, Counter>,
    /// Heartbeats received and accepted, per network.
    pub heartbeats_received: Family<NetLabels, Counter>,
    /// Datagrams dropped before the state machine (malformed, foreign, forged, replayed).
    pub rejected: Family<RejectLabels, Counter>,
    /// Datagrams the state machine decoded but ignored (unknown member, stale, ...).
    pub ignored: Family<ReasonLabels, Counter>,
    /// Datagrams that could not be sent, per network.
    pub send_errors: Family<NetLabels, Counter>,
    /// Net-check rounds by result.
    pub net_check_rounds: Family<ResultLabels, Counter>,
    /// Time from the hot member's last heartbeat to this member declaring it lost.
    pub detection: Histogram,
    /// Network anomalies reported (a member silent on one network only; recurrences within a
    /// minute count only once held down, see `Params::anomaly_hold_down`).
    pub anomalies: Family<NetLabels, Counter>,
    /// Notify command runs that failed or timed out.
    pub notify_failures: Counter,
    /// Notification mails the SMTP server accepted.
    pub notify_emails_sent: Counter,
    /// Notification mails that failed (refused, server unreachable, timed out).
    pub notify_email_failures: Counter,
    /// `POST /switchover` requests refused for a missing or wrong credential.
    pub switchover_unauthorized: Counter,
    /// HMAC keys heartbeats are accepted with (0: no authentication).
    pub auth_keys: Gauge,
    /// Times this member stopped being hot, by reason (`lease-expired`: its lease lapsed).
    pub releases: Family<ReasonLabels, Counter>,
    /// 1 while this member's carousel differs from the hot member's.
    pub content_differs: Gauge,
    /// Times this member found its carousel different from the hot member's.
    pub content_mismatches: Counter,
    /// Configuration re-reads on SIGHUP, by result.
    pub reloads: Family<ResultLabels, Counter>,
    /// 1 while the VIP is on this host.
    pub vip_held: Family<VipLabels, Gauge>,
    /// Gratuitous ARP / unsolicited NA packets sent, per VIP.
    pub garp_sent: Family<VipLabels, Counter>,
    /// ARP probes of an IPv4 VIP, per VIP and verdict.
    pub arp_probes: Family<VipProbeLabels, Counter>,
}

impl Metrics {
    /// Creates and registers every metric.
    pub fn new() -> Metrics {
        Metrics::with_carousel(None)
    }

    /// Creates and registers every metric, and the carousel's when the agent runs it.
    pub fn with_carousel(carousel: Option<&CarouselMetrics>) -> Metrics {
        let mut registry = Registry::with_prefix("rdg");
        if let Some(c) = carousel {
            c.register(&mut registry);
        }
        let m = Metrics {
            state: Family::default(),
            epoch: Gauge::default(),
            transitions: Family::default(),
            heartbeats_sent: Family::default(),
            heartbeats_received: Family::default(),
            rejected: Family::default(),
            ignored: Family::default(),
            send_errors: Family::default(),
            net_check_rounds: Family::default(),
            detection: Histogram::new([
                0.05, 0.1, 0.15, 0.2, 0.25, 0.3, 0.4, 0.5, 0.75, 1.0, 1.5, 2.0, 5.0,
            ]),
            anomalies: Family::default(),
            notify_failures: Counter::default(),
            notify_emails_sent: Counter::default(),
            notify_email_failures: Counter::default(),
            switchover_unauthorized: Counter::default(),
            auth_keys: Gauge::default(),
            releases: Family::default(),
            content_differs: Gauge::default(),
            content_mismatches: Counter::default(),
            reloads: Family::default(),
            vip_held: Family::default(),
            garp_sent: Family::default(),
            arp_probes: Family::default(),
            registry: Registry::default(),
        };
        registry.register(
            "state",
            "1 for this member's current state",
            m.state.clone(),
        );
        registry.register("epoch", "Epoch this member knows", m.epoch.clone());
        registry.register(
            "state_transitions",
            "State changes, by the state entered",
            m.transitions.clone(),
        );
        registry.register(
            "heartbeats_sent",
            "Heartbeats sent, per network",
            m.heartbeats_sent.clone(),
        );
        registry.register(
            "heartbeats_received",
            "Heartbeats received and accepted, per network",
            m.heartbeats_received.clone(),
        );
        registry.register(
            "datagrams_rejected",
            "Datagrams dropped before the state machine, per network and reason",
            m.rejected.clone(),
        );
        registry.register(
            "datagrams_ignored",
            "Datagrams the state machine ignored, by reason",
            m.ignored.clone(),
        );
        registry.register(
            "send_errors",
            "Datagrams that could not be sent, per network",
            m.send_errors.clone(),
        );
        registry.register(
            "net_check_rounds",
            "Net-check rounds, by result",
            m.net_check_rounds.clone(),
        );
        registry.register(
            "failover_detection_seconds",
            "Silence of the hot member before this member declared it lost",
            m.detection.clone(),
        );
        registry.register(
            "network_anomalies",
            "Members silent on one network only, per network",
            m.anomalies.clone(),
        );
        registry.register(
            "notify_failures",
            "Notify command runs that failed or timed out",
            m.notify_failures.clone(),
        );
        registry.register(
            "notify_emails_sent",
            "Notification mails the SMTP server accepted",
            m.notify_emails_sent.clone(),
        );
        registry.register(
            "notify_email_failures",
            "Notification mails that failed (refused, server unreachable, timed out)",
            m.notify_email_failures.clone(),
        );
        registry.register(
            "switchover_unauthorized",
            "Switchover requests refused for a missing or wrong credential",
            m.switchover_unauthorized.clone(),
        );
        registry.register(
            "hot_releases",
            "Times this member stopped being hot, by reason (lease-expired, net-check-failed, conflict, handover, shutdown)",
            m.releases.clone(),
        );
        registry.register(
            "content_differs",
            "1 while this member's carousel differs from the hot member's",
            m.content_differs.clone(),
        );
        registry.register(
            "content_mismatches",
            "Times this member found its carousel different from the hot member's",
            m.content_mismatches.clone(),
        );
        registry.register(
            "auth_keys",
            "HMAC keys heartbeats are accepted with (0: no authentication)",
            m.auth_keys.clone(),
        );
        registry.register(
            "config_reloads",
            "Configuration re-reads on SIGHUP (new auth keys), by result",
            m.reloads.clone(),
        );
        registry.register(
            "vip_held",
            "1 while the VIP is on this host",
            m.vip_held.clone(),
        );
        registry.register(
            "garp_sent",
            "Gratuitous ARP / unsolicited NA packets sent, per VIP",
            m.garp_sent.clone(),
        );
        registry.register(
            "arp_probes",
            "ARP probes of an IPv4 VIP for another holder, per VIP and verdict",
            m.arp_probes.clone(),
        );
        Metrics { registry, ..m }
    }

    /// Sets the one-hot state gauge.
    pub fn set_state(&self, state: State) {
        for s in State::ALL {
            let v = i64::from(s == state);
            self.state
                .get_or_create(&StateLabels {
                    state: s.as_str().to_string(),
                })
                .set(v);
        }
    }

    /// The metrics in the Prometheus text format.
    pub fn encode(&self) -> String {
        encode(&self.registry)
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics::new()
    }
}

/// Shorthand for a network label.
pub fn net(name: &str) -> NetLabels {
    NetLabels {
        network: name.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encodes_counters_with_labels_and_one_hot_state() {
        let m = Metrics::new();
        m.rejected
            .get_or_create(&RejectLabels {
                network: "primary".into(),
                reason: "bad_mac".into(),
            })
            .inc();
        m.set_state(State::SBS);
        m.detection.observe(0.3);
        let text = m.encode();
        assert!(
            text.contains("rdg_datagrams_rejected_total{network=\"primary\",reason=\"bad_mac\"} 1"),
            "{text}"
        );
        assert!(text.contains("rdg_state{state=\"SBS\"} 1"), "{text}");
        assert!(text.contains("rdg_state{state=\"HS\"} 0"), "{text}");
        assert!(
            text.contains("rdg_failover_detection_seconds_count 1"),
            "{text}"
        );
        assert!(!text.contains("rdg_carousel"), "{text}");
    }

    #[test]
    fn carousel_metrics_share_values_with_the_registry() {
        let c = CarouselMetrics::default();
        let m = Metrics::with_carousel(Some(&c));
        let ch = ChannelLabels {
            channel: "239.1.1.1:5000".into(),
        };
        // A clone taken once, as the transmitter holds it, counts into the registered family.
        let bytes = c.bytes_sent.get_or_create(&ch).clone();
        bytes.inc_by(1316);
        c.sending.get_or_create(&ch).set(1);
        let text = m.encode();
        assert!(
            text.contains("rdg_carousel_bytes_sent_total{channel=\"239.1.1.1:5000\"} 1316"),
            "{text}"
        );
        assert!(
            text.contains("rdg_carousel_sending{channel=\"239.1.1.1:5000\"} 1"),
            "{text}"
        );
        assert_eq!(
            encode(&c.registry()).matches("rdg_carousel_").count(),
            m.encode().matches("rdg_carousel_").count()
        );
    }
}

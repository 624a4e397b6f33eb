//! Datagrams in and out: decoding, authentication and de-duplication before the node sees a
//! datagram, encoding and signing after it sends one, and the counters of both.

use super::Agent;
use crate::clock::monotonic;
use crate::metrics::{RejectLabels, net};
use crate::transport::Datagram;
use rdg_core::election::{Destination, Input};
use rdg_core::wire::{self, MessageType};

impl Agent {
    /// The configured name of network `network` ("?" for an index out of range).
    pub(super) fn network_name(&self, network: u8) -> &str {
        self.cfg
            .networks
            .get(usize::from(network))
            .map_or("?", |n| n.name.as_str())
    }

    fn reject(&self, network: u8, reason: &str) {
        self.metrics
            .rejected
            .get_or_create(&RejectLabels {
                network: self.network_name(network).to_string(),
                reason: reason.to_string(),
            })
            .inc();
    }

    /// Decodes, authenticates and de-duplicates one datagram, then feeds it to the node.
    pub(super) async fn on_datagram(&mut self, d: Datagram) {
        let now = monotonic();
        let msg = match self.keys.decode(&d.bytes, &self.cfg.name) {
            Ok(m) => m,
            Err(e) => {
                self.reject(d.network, e.reason());
                tracing::debug!(from = %d.from, network = self.network_name(d.network), error = %e, "datagram rejected");
                return;
            }
        };
        if msg.network != d.network {
            // Sent for another network (cross-wired networks, or a replay from one to the other).
            self.reject(d.network, "wrong_network");
            return;
        }
        if let Err(e) = self.replay.check(&msg, now) {
            self.reject(d.network, e.reason());
            tracing::debug!(from = %d.from, member = %msg.member, error = %e, "datagram rejected");
            return;
        }
        if msg.kind == MessageType::Heartbeat {
            self.metrics
                .heartbeats_received
                .get_or_create(&net(self.network_name(d.network)))
                .inc();
        }
        self.step(
            now,
            Input::Received {
                network: d.network,
                from: d.from,
                message: msg,
            },
        )
        .await;
    }

    /// Encodes, signs and sends one datagram of the node.
    pub(super) fn send(&self, network: u8, to: Destination, message: &wire::Message) {
        let Some(t) = &self.transport else { return };
        let bytes = match self.keys.encode(message) {
            Ok(b) => b,
            Err(e) => {
                tracing::error!(error = %e, "cannot encode a datagram");
                return;
            }
        };
        if t.send(network, to, &bytes, &self.metrics) && message.kind == MessageType::Heartbeat {
            self.metrics
                .heartbeats_sent
                .get_or_create(&net(self.network_name(network)))
                .inc();
        }
    }
}

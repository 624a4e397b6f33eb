//! What each event of the node does on a real host: a log line, a metric, a notification.
//!
//! The log line is the event's own text (`Display`, the words of the simulator's timeline)
//! except where tools read the agent's words: the release (`reason=`, read by tests), the loss
//! of the hot member (`silent_ms=`, read by the failover bench) and this member as
//! `Primary/coordinator: <member>@<address>` (Infocast's line).

use super::Agent;
use crate::metrics::{ReasonLabels, StateLabels, net};
use crate::notify::{Details, NotifyEvent};
use rdg_core::State;
use rdg_core::election::{Event, ReleaseReason};
use std::time::Duration;

impl Agent {
    /// Logs, counts and notifies one event of the node.
    pub(super) fn on_event(&mut self, e: Event) {
        let epoch = self.node.epoch();
        match &e {
            Event::StateChanged { from, to } => {
                tracing::info!("{e}");
                if from.0 != to.0 {
                    self.metrics
                        .transitions
                        .get_or_create(&StateLabels {
                            state: to.0.as_str().to_string(),
                        })
                        .inc();
                    if to.0 == State::SBS {
                        let reason = format!("from {}", from.0);
                        if from.0 == State::HS {
                            // The `Released` event that follows says why.
                            self.standby_after_hot = Some((epoch, reason));
                        } else {
                            self.notifier.send(NotifyEvent::Standby, epoch, reason);
                        }
                    }
                }
            }
            Event::PrimaryCoordinator {
                address: Some(_), ..
            } => tracing::info!("{e}"),
            Event::PrimaryCoordinator {
                member,
                address: None,
            } => {
                tracing::info!("Primary/coordinator: {member}@{}", self.my_address());
            }
            Event::BecameHot {
                epoch,
                reason,
                previous,
            } => {
                tracing::info!("{e}");
                self.hot_history
                    .became_hot(*epoch, *reason, previous.as_deref());
                // Nothing to compare with while hot.
                self.metrics.content_differs.set(0);
                let details = Details {
                    previous_hot: previous.clone(),
                    detection: self
                        .hot_history
                        .last()
                        .and_then(|l| l.detection_ms)
                        .map(Duration::from_millis),
                    ..Details::default()
                };
                self.notifier
                    .send_with(NotifyEvent::Hot, *epoch, reason.as_str(), details);
            }
            Event::Released { reason } => {
                tracing::warn!(reason = reason.as_str(), "released the hot role");
                self.metrics
                    .releases
                    .get_or_create(&ReasonLabels {
                        reason: reason.as_str().to_string(),
                    })
                    .inc();
                let why = match reason {
                    ReleaseReason::Handover { target } => format!("handover to {target}"),
                    ReleaseReason::Conflict { winner } => {
                        format!("conflict: {winner} stays hot")
                    }
                    other => other.as_str().to_string(),
                };
                self.notify_standby_after_hot(Some(why));
            }
            Event::HotLost {
                member,
                silent_for,
                left,
            } => {
                self.hot_history.hot_lost(member, *silent_for, *left);
                if *left {
                    tracing::warn!("{e}");
                } else {
                    self.metrics.detection.observe(silent_for.as_secs_f64());
                    tracing::warn!(
                        %member,
                        silent_ms = silent_for.as_millis() as u64,
                        "hot member lost (silent on every network)"
                    );
                }
            }
            Event::MemberLost { .. } | Event::MemberJoined { .. } => tracing::info!("{e}"),
            Event::NetworkAnomaly { member, network } => {
                let name = self.network_name(*network).to_string();
                self.metrics.anomalies.get_or_create(&net(&name)).inc();
                tracing::warn!(network = %name, "{e}");
                self.notifier.send(
                    NotifyEvent::Anomaly,
                    epoch,
                    format!("{member} silent on {name}"),
                );
            }
            Event::NetworkRecovered { member, network } => {
                let name = self.network_name(*network).to_string();
                tracing::info!(network = %name, "{e}");
                self.notifier.send(
                    NotifyEvent::AnomalyRecovered,
                    epoch,
                    format!("{member} heard on {name}"),
                );
            }
            Event::Isolated => {
                tracing::error!("{e}");
                self.notifier
                    .send(NotifyEvent::Crashed, epoch, "net-check-failed");
            }
            Event::IsolationEnded => {
                tracing::info!("{e}");
                self.notifier
                    .send(NotifyEvent::CrashRecovered, epoch, "net-check-ok");
            }
            Event::SwitchoverStarted { .. } => tracing::info!("{e}"),
            Event::SwitchoverRejected { .. } => tracing::warn!("{e}"),
            Event::DuplicateMember { .. } => tracing::error!("{e}"),
            Event::Ignored { reason } => {
                self.metrics
                    .ignored
                    .get_or_create(&ReasonLabels {
                        reason: reason.to_string(),
                    })
                    .inc();
            }
            Event::ClockGap { .. } => tracing::warn!("{e}"),
            Event::ContentCompared {
                hot,
                difference,
                was_different,
            } => {
                self.metrics
                    .content_differs
                    .set(i64::from(difference.is_some()));
                match difference {
                    Some(d) => {
                        self.metrics.content_mismatches.inc();
                        tracing::warn!(
                            %hot,
                            differing = %d.changed.iter().chain(&d.only_here).cloned().collect::<Vec<_>>().join(","),
                            "{e}; a failover to this member would switch the set-top boxes to other content"
                        );
                        self.notifier
                            .send(NotifyEvent::ContentMismatch, epoch, d.describe(hot));
                    }
                    None if *was_different => {
                        tracing::info!("{e}");
                        self.notifier.send(
                            NotifyEvent::ContentConsistent,
                            epoch,
                            format!("same carousel as {hot}"),
                        );
                    }
                    None => tracing::info!("{e}"),
                }
            }
        }
    }

    /// Sends the standby notification held back since the move from HS to SBS, if any, with
    /// why the role was released (None: not known).
    pub(super) fn notify_standby_after_hot(&mut self, released: Option<String>) {
        if let Some((epoch, reason)) = self.standby_after_hot.take() {
            let details = Details {
                was_hot: true,
                released,
                ..Details::default()
            };
            self.notifier
                .send_with(NotifyEvent::Standby, epoch, reason, details);
        }
    }

    /// This member's address on its first network, for `Primary/coordinator` lines.
    fn my_address(&self) -> String {
        self.transport
            .as_ref()
            .and_then(|t| t.links.first())
            .map_or_else(|| "localhost".to_string(), |l| l.local.to_string())
    }
}

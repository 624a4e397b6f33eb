//! Carousel comparison: the hot member advertises what it sends every few heartbeats, and a
//! standby compares it with what it would send, so a difference is reported before a failover
//! would switch the set-top boxes to other content. Nothing here touches the election.

use super::Node;
use crate::State;
use crate::content::{Difference, Manifest, compare};
use crate::election::io::{Destination, Event, Output};
use crate::wire::{Flags, Message, MessageType};
use std::net::SocketAddr;

/// The hot member sends its carousel summary once per this many heartbeats (and at once when
/// it becomes hot or its carousel changes).
pub const ADVERT_EVERY: u32 = 5;

/// What a node knows of carousels.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
pub(super) struct ContentState {
    /// This member's carousel (None: it has no transmitter, nothing is compared).
    mine: Option<Manifest>,
    /// Heartbeats since the last advert this member sent.
    since_advert: u32,
    /// Send an advert with the next heartbeat.
    announce: bool,
    /// The last verdict: which hot member it compared with, and how they differ.
    verdict: Option<(String, Option<Difference>)>,
}

impl Node {
    /// The runtime's new view of this member's carousel (at start, and when a file changed).
    pub(super) fn on_content_changed(&mut self, manifest: Option<Manifest>) {
        if self.content.mine == manifest {
            return;
        }
        self.content.mine = manifest;
        // A hot member tells at once; a standby compares again at the next advert.
        self.content.announce = true;
    }

    /// The last comparison with the hot member's carousel: (hot member, difference or None).
    pub fn content_verdict(&self) -> Option<(&str, Option<&Difference>)> {
        self.content
            .verdict
            .as_ref()
            .map(|(hot, d)| (hot.as_str(), d.as_ref()))
    }

    /// This member's carousel as the runtime last gave it.
    pub fn content(&self) -> Option<&Manifest> {
        self.content.mine.as_ref()
    }

    /// Called with every heartbeat: a hot member sends its advert when one is due.
    pub(super) fn maybe_advertise(&mut self, out: &mut Vec<Output>) {
        if self.state != State::HS || self.p.group.is_empty() {
            self.content.since_advert = ADVERT_EVERY;
            return;
        }
        // A hot member compares with nobody; a stale verdict would come back at the next stint
        // as standby without being reported again.
        self.content.verdict = None;
        let Some(advert) = self.content.mine.as_ref().map(Manifest::advert) else {
            return;
        };
        self.content.since_advert += 1;
        if !self.content.announce && self.content.since_advert < ADVERT_EVERY {
            return;
        }
        self.content.announce = false;
        self.content.since_advert = 0;
        let hot = self.p.my_name().to_string();
        for n in 0..self.p.networks {
            let network = n as u8;
            let message = Message {
                content: Some(advert.clone()),
                ..self.message(MessageType::Content, network, &hot, Flags::default())
            };
            out.push(Output::Send {
                network,
                to: Destination::Group,
                message,
            });
        }
    }

    /// Answers a status query with this member's carousel, after the status reply.
    pub(super) fn answer_content_query(
        &mut self,
        network: u8,
        from: SocketAddr,
        out: &mut Vec<Output>,
    ) {
        let Some(advert) = self.content.mine.as_ref().map(Manifest::advert) else {
            return;
        };
        let hot = self.hot().unwrap_or_default().to_string();
        let message = Message {
            content: Some(advert),
            ..self.message(MessageType::Content, network, &hot, Flags::default())
        };
        out.push(Output::Send {
            network,
            to: Destination::To(from),
            message,
        });
    }

    /// A member's advert: compared when it comes from the hot member this member knows.
    pub(super) fn on_content(&mut self, m: &Message, out: &mut Vec<Output>) {
        let (Some(mine), Some(theirs)) = (&self.content.mine, &m.content) else {
            return;
        };
        if self.hot() != Some(m.member.as_str()) || m.state != State::HS {
            return;
        }
        let verdict = (m.member.clone(), compare(mine, theirs));
        if self.content.verdict.as_ref() == Some(&verdict) {
            return;
        }
        out.push(Output::Event(Event::ContentCompared {
            hot: verdict.0.clone(),
            difference: verdict.1.clone(),
            was_different: self
                .content
                .verdict
                .as_ref()
                .is_some_and(|(_, d)| d.is_some()),
        }));
        self.content.verdict = Some(verdict);
    }
}

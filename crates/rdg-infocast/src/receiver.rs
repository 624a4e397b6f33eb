//! The receiver: listens to one channel like a set-top box, on its own thread, decoding every
//! datagram ([`crate::frame`]), reassembling objects ([`crate::reassembly`]) and keeping the
//! stream's timeline ([`crate::timeline`]). Malformed datagrams are counted and ignored.
//!
//! For a multicast channel it joins the group (on `interface`, default: any); for a unicast or
//! loopback `ADDR:PORT` it binds that address without joining, which needs no multicast route
//! (tests without root).

use crate::frame::{self, Frame};
use crate::reassembly::Reassembly;
use crate::report::{ObjectReport, Report, SwitchReport, ms};
use crate::socket;
use crate::timeline::{Sender, Timeline};
use std::net::{IpAddr, SocketAddr, UdpSocket};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// How long a receive waits before looking at the stop flag.
const POLL: Duration = Duration::from_millis(20);

/// What to listen to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReceiverOptions {
    /// The channel, `ADDR:PORT` (multicast group, or a local address to bind).
    pub channel: SocketAddr,
    /// Local address to join the group on; None: any.
    pub interface: Option<IpAddr>,
}

#[derive(Debug)]
struct State {
    timeline: Timeline,
    objects: Reassembly,
    malformed: u64,
}

#[derive(Debug)]
struct Shared {
    state: Mutex<State>,
    stop: AtomicBool,
}

/// A running receiver; [`stop`](Receiver::stop) it for the final report.
#[derive(Debug)]
pub struct Receiver {
    channel: SocketAddr,
    local: SocketAddr,
    start: Instant,
    shared: Arc<Shared>,
    thread: Option<JoinHandle<()>>,
}

impl Receiver {
    /// Opens the socket and starts listening at once.
    pub fn start(opts: ReceiverOptions) -> std::io::Result<Receiver> {
        let sock = socket::receiver(opts.channel, opts.interface)?;
        sock.set_read_timeout(Some(POLL))?;
        let local = sock.local_addr()?;
        let start = Instant::now();
        let shared = Arc::new(Shared {
            state: Mutex::new(State {
                timeline: Timeline::new(start),
                objects: Reassembly::default(),
                malformed: 0,
            }),
            stop: AtomicBool::new(false),
        });
        let thread = std::thread::Builder::new()
            .name("rdg-receiver".into())
            .spawn({
                let shared = Arc::clone(&shared);
                move || listen(&sock, &shared)
            })?;
        Ok(Receiver {
            channel: opts.channel,
            local,
            start,
            shared,
            thread: Some(thread),
        })
    }

    /// The address the socket is bound to.
    pub fn local_addr(&self) -> SocketAddr {
        self.local
    }

    fn state(&self) -> MutexGuard<'_, State> {
        // The state is plain counters: still meaningful if a holder panicked.
        self.shared.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// When the last valid datagram arrived.
    pub fn last_datagram(&self) -> Option<Instant> {
        self.state().timeline.first_and_last().map(|(_, l)| l)
    }

    /// The bytes of the last complete copy of object `name`.
    pub fn object_bytes(&self, name: &str) -> Option<Arc<[u8]>> {
        self.state().objects.last_complete(name)
    }

    /// The figures so far.
    pub fn report(&self) -> Report {
        let st = self.state();
        let t = &st.timeline;
        let (datagrams, bytes) = t.totals();
        let bits_per_second = match t.first_and_last() {
            Some((first, last)) if last > first && datagrams > 1 => {
                // The first datagram opens the interval: its bytes are not inside it.
                let span = (last - first).as_secs_f64();
                (bytes as f64 * (datagrams - 1) as f64 / datagrams as f64) * 8.0 / span
            }
            _ => 0.0,
        };
        Report {
            channel: self.channel.to_string(),
            objects: st
                .objects
                .figures()
                .into_iter()
                .map(|f| ObjectReport {
                    name: f.name,
                    kind: f.kind,
                    completed: f.completed,
                    corrupt: f.corrupt,
                    duplicate: f.duplicate,
                    version: f.version,
                    id: f.id,
                    size: f.size,
                })
                .collect(),
            longest_silence_ms: ms(t.longest_silence()),
            first_chunk_ms: t.first_chunk().map(ms),
            senders: t.addresses().map(|a| a.to_string()).collect(),
            interleaved: t.interleaved(),
            malformed: st.malformed,
            switches: t
                .switches()
                .iter()
                .map(|s| SwitchReport {
                    from: s.from.address.to_string(),
                    to: s.to.address.to_string(),
                    at_ms: ms(s.at),
                    gap_ms: ms(s.gap),
                    from_session: s.from.session,
                    to_session: s.to.session,
                })
                .collect(),
            switch_count: t.switch_count(),
            datagrams,
            bytes,
            elapsed_ms: ms(self.start.elapsed()),
            bits_per_second,
        }
    }

    /// Stops listening and returns the final figures.
    pub fn stop(mut self) -> Report {
        self.halt();
        self.report()
    }

    fn halt(&mut self) {
        self.shared.stop.store(true, Ordering::SeqCst);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        self.halt();
    }
}

fn listen(sock: &UdpSocket, shared: &Shared) {
    let mut buf = vec![0u8; 65_536];
    let mut last_error: Option<String> = None;
    while !shared.stop.load(Ordering::SeqCst) {
        let (n, from) = match sock.recv_from(&mut buf) {
            Ok(r) => r,
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock
                        | std::io::ErrorKind::TimedOut
                        | std::io::ErrorKind::Interrupted
                ) =>
            {
                continue;
            }
            Err(e) => {
                let msg = e.to_string();
                if last_error.as_deref() != Some(msg.as_str()) {
                    tracing::error!("receiver: {msg}");
                    last_error = Some(msg);
                }
                std::thread::sleep(POLL);
                continue;
            }
        };
        let now = Instant::now();
        let mut st = shared.state.lock().unwrap_or_else(|p| p.into_inner());
        on_datagram(&mut st, now, from.ip(), &buf[..n]);
    }
}

fn on_datagram(st: &mut State, now: Instant, from: IpAddr, bytes: &[u8]) {
    let (session, is_chunk, accepted) = match frame::decode(bytes) {
        Ok(Frame::Chunk(c)) => (c.object.session, true, st.objects.on_chunk(&c)),
        Ok(Frame::Announcement(a)) => (a.object.session, false, st.objects.on_announcement(a)),
        Err(_) => {
            st.malformed += 1;
            return;
        }
    };
    if accepted.is_err() {
        st.malformed += 1;
        return;
    }
    let sender = Sender {
        address: from,
        session,
    };
    st.timeline.on_datagram(now, sender, bytes.len(), is_chunk);
}

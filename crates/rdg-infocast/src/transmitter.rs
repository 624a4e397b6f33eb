//! The transmitter: the configuration's `transmitter` channels, one tokio task each, behind
//! one [`Gate`].
//!
//! [`Transmitter::start`] runs on the caller's tokio runtime (`rdg transmit`);
//! [`TransmitterThread::spawn`] gives the carousel its own OS thread and runtime, which is how
//! `rdg agent` runs it, so carousel traffic never delays the agent's heartbeats.

use crate::channel::{ChannelSetup, ChannelStats, ChannelTask};
use crate::object::ObjectSource;
use crate::permit::{Gate, GateError, GateMode};
use crate::socket;
use rdg_agent::metrics::CarouselMetrics;
use rdg_core::config::{self, parse_bit_rate};
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;
use tokio::task::JoinHandle;

/// How the transmitter runs, beyond the configuration.
#[derive(Debug, Clone)]
pub struct TransmitOptions {
    /// When it may send.
    pub gate: GateMode,
    /// Local address to send from (IPv4 multicast: also the outgoing interface); None: the
    /// routing table decides, like the original Infocast server.
    pub interface: Option<IpAddr>,
    /// Where each channel's counters and `sending` gauge are registered (None: counted
    /// only in [`ChannelHandle::stats`]).
    pub metrics: Option<CarouselMetrics>,
}

/// Why the transmitter cannot run.
#[derive(Debug, thiserror::Error)]
pub enum TransmitError {
    /// A channel's settings are unusable (the configuration check reports these first).
    #[error("transmitter.channels[{index}].{field}: {message}")]
    Config {
        /// Channel index.
        index: usize,
        /// Field name.
        field: &'static str,
        /// What is wrong.
        message: String,
    },
    /// A channel's socket cannot be opened.
    #[error("transmitter.channels[{index}] ({destination}): cannot open the socket: {source}")]
    Socket {
        /// Channel index.
        index: usize,
        /// Where it would send.
        destination: SocketAddr,
        /// The OS error.
        source: std::io::Error,
    },
    /// The gate cannot start.
    #[error(transparent)]
    Gate(#[from] GateError),
    /// The transmitter thread or its runtime cannot start.
    #[error("cannot start the transmitter thread: {0}")]
    Thread(std::io::Error),
}

/// One running channel.
#[derive(Debug)]
pub struct ChannelHandle {
    /// Where it sends.
    pub destination: SocketAddr,
    /// Its counters.
    pub stats: Arc<ChannelStats>,
    task: JoinHandle<()>,
}

/// Running channels; dropping it stops them.
#[derive(Debug)]
pub struct Transmitter {
    channels: Vec<ChannelHandle>,
    /// Sets every channel's `sending` gauge from the gate.
    follower: JoinHandle<()>,
}

impl Transmitter {
    /// Opens every channel's socket and starts its task on the current tokio runtime.
    pub fn start(
        cfg: &config::Transmitter,
        opts: &TransmitOptions,
    ) -> Result<Transmitter, TransmitError> {
        let gate = Gate::start(opts.gate.clone())?;
        let mut setups = Vec::new();
        for (index, ch) in cfg.channels.iter().enumerate() {
            let destination = SocketAddr::new(ch.address, ch.port);
            let bits_per_sec =
                parse_bit_rate(&ch.bit_rate).map_err(|message| TransmitError::Config {
                    index,
                    field: "bitRate",
                    message,
                })?;
            if bits_per_sec == 0 {
                return Err(TransmitError::Config {
                    index,
                    field: "bitRate",
                    message: "must be greater than 0".into(),
                });
            }
            let sock_err = |source| TransmitError::Socket {
                index,
                destination,
                source,
            };
            let std_socket =
                socket::sender(destination, ch.ttl, opts.interface).map_err(sock_err)?;
            let label = format!("({destination})");
            let setup = ChannelSetup {
                destination,
                bits_per_sec,
                payload_size: ch.payload_size.max(1) as usize,
                burst_delay: ch.burst_delay.map(|d| d.get()).filter(|d| !d.is_zero()),
                objects: ch
                    .objects
                    .iter()
                    .map(|o| ObjectSource::new(o, &label))
                    .collect(),
            };
            setups.push((std_socket, setup));
        }
        let mut channels = Vec::new();
        for (index, (std_socket, setup)) in setups.into_iter().enumerate() {
            let destination = setup.destination;
            let socket = tokio::net::UdpSocket::from_std(std_socket).map_err(|source| {
                TransmitError::Socket {
                    index,
                    destination,
                    source,
                }
            })?;
            let stats = Arc::new(match &opts.metrics {
                Some(m) => ChannelStats::registered(m, destination),
                None => ChannelStats::default(),
            });
            tracing::info!(
                "({destination}): channel of {} object(s) at {} bit/s, {} bytes per chunk",
                setup.objects.len(),
                setup.bits_per_sec,
                setup.payload_size
            );
            let task = tokio::spawn(
                ChannelTask::new(socket, setup, gate.clone(), Arc::clone(&stats)).run(),
            );
            channels.push(ChannelHandle {
                destination,
                stats,
                task,
            });
        }
        let gauges: Vec<_> = channels.iter().map(|c| c.stats.sending.clone()).collect();
        let follower = tokio::spawn(gate.follow(move |open| {
            for g in &gauges {
                g.set(i64::from(open));
            }
        }));
        Ok(Transmitter { channels, follower })
    }

    /// The running channels, in configuration order.
    pub fn channels(&self) -> &[ChannelHandle] {
        &self.channels
    }
}

impl Drop for Transmitter {
    fn drop(&mut self) {
        self.follower.abort();
        for ch in &self.channels {
            ch.task.abort();
            ch.stats.sending.set(0);
        }
    }
}

/// A transmitter on its own OS thread with its own runtime; stops when [`stop`]ped or
/// dropped.
///
/// [`stop`]: TransmitterThread::stop
#[derive(Debug)]
pub struct TransmitterThread {
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
    stats: Vec<(SocketAddr, Arc<ChannelStats>)>,
}

impl TransmitterThread {
    /// Starts the transmitter on a new thread (named `rdg-carousel`) with a current-thread
    /// runtime; returns once every channel is running, or with the reason it cannot.
    pub fn spawn(
        cfg: config::Transmitter,
        opts: TransmitOptions,
    ) -> Result<TransmitterThread, TransmitError> {
        let (ready_tx, ready_rx) = std::sync::mpsc::channel();
        let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
        let thread = std::thread::Builder::new()
            .name("rdg-carousel".into())
            .spawn(move || {
                let rt = match tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                {
                    Ok(rt) => rt,
                    Err(e) => {
                        let _ = ready_tx.send(Err(TransmitError::Thread(e)));
                        return;
                    }
                };
                rt.block_on(async move {
                    match Transmitter::start(&cfg, &opts) {
                        Ok(t) => {
                            let stats = t
                                .channels()
                                .iter()
                                .map(|c| (c.destination, Arc::clone(&c.stats)))
                                .collect();
                            let _ = ready_tx.send(Ok(stats));
                            // Runs until stopped, or until the handle is dropped.
                            let _ = stop_rx.await;
                            drop(t);
                        }
                        Err(e) => {
                            let _ = ready_tx.send(Err(e));
                        }
                    }
                });
                rt.shutdown_timeout(Duration::from_secs(1));
            })
            .map_err(TransmitError::Thread)?;
        match ready_rx.recv() {
            Ok(Ok(stats)) => Ok(TransmitterThread {
                stop: Some(stop_tx),
                thread: Some(thread),
                stats,
            }),
            Ok(Err(e)) => {
                let _ = thread.join();
                Err(e)
            }
            Err(_) => {
                let _ = thread.join();
                Err(TransmitError::Thread(std::io::Error::other(
                    "the transmitter thread ended during start-up",
                )))
            }
        }
    }

    /// Counters of each channel, by destination.
    pub fn stats(&self) -> &[(SocketAddr, Arc<ChannelStats>)] {
        &self.stats
    }

    /// Stops the channels and waits for the thread to end.
    pub fn stop(mut self) {
        self.shutdown();
    }

    fn shutdown(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Drop for TransmitterThread {
    fn drop(&mut self) {
        self.shutdown();
    }
}

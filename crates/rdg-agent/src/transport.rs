//! The heartbeat transport: per configured network, a UDP socket bound to this member's
//! address and the heartbeat port (sends everything; receives unicast), and in multicast mode
//! a second socket bound to the group address, joined on the interface that holds the
//! member's address. Binding the receiver to the group address (and turning IP_MULTICAST_ALL
//! off) keeps each network's heartbeats on its own socket, so the network a datagram arrived
//! on is known without asking the kernel.
//!
//! Receiving costs one `recvmmsg` per wake-up: it reads every queued datagram (up to
//! `BATCH`), and a short batch proves the socket drained, so the readiness is cleared without
//! the extra read that would only answer "would block".

use crate::metrics::{Metrics, net};
use nix::errno::Errno;
use nix::sys::socket::{MsgFlags, MultiHeaders, SockaddrStorage, recvmmsg};
use rdg_core::config::GroupConfig;
use rdg_core::election::Destination;
use socket2::{Domain, Protocol, SockAddr, Socket, Type};
use std::io::IoSliceMut;
use std::net::{IpAddr, SocketAddr, SocketAddrV4, SocketAddrV6};
use std::os::fd::AsRawFd;
use std::sync::Arc;
use std::task::Poll;
use tokio::io::unix::AsyncFd;

/// A non-blocking UDP socket registered with the runtime.
type UdpSocket = AsyncFd<std::net::UdpSocket>;

/// Datagrams read by one `recvmmsg`; fewer means the socket is drained.
const BATCH: usize = 8;
/// `recvmmsg` calls per socket and wake-up, so a flood cannot hold the loop.
const MAX_READS: usize = 4;

/// Largest datagram read; anything longer is truncated by the kernel and then rejected by the
/// codec as oversized or malformed.
const RECV_BUF: usize = 2048;

/// Why the transport could not be opened.
#[derive(Debug, thiserror::Error)]
pub enum TransportError {
    /// The member has no address on a network.
    #[error(
        "members[{member}].addresses.{network}: missing (every network needs this member's address)"
    )]
    NoAddress {
        /// The member's name.
        member: String,
        /// The network's name.
        network: String,
    },
    /// No interface of this host holds the member's address.
    #[error(
        "network {network}: {address} is not an address of this host (is --member right? is the interface up?)"
    )]
    NotLocal {
        /// The network's name.
        network: String,
        /// The configured address.
        address: IpAddr,
    },
    /// A socket operation failed.
    #[error("network {network}: cannot {what}: {source}")]
    Socket {
        /// The network's name.
        network: String,
        /// What was being done.
        what: String,
        /// The OS error.
        source: std::io::Error,
    },
}

/// One datagram as received, before decoding.
#[derive(Debug)]
pub struct Datagram {
    /// Index of the network it arrived on.
    pub network: u8,
    /// Source address.
    pub from: SocketAddr,
    /// The bytes.
    pub bytes: Vec<u8>,
}

/// One network's sockets and destinations.
#[derive(Debug)]
pub struct Link {
    /// Network name.
    pub name: String,
    /// This member's address on it.
    pub local: IpAddr,
    /// Multicast group, or None for unicast to the other members.
    pub multicast: Option<IpAddr>,
    /// Where `Destination::Group` datagrams go: the group, or every other member.
    pub group_destinations: Vec<SocketAddr>,
    send: Arc<UdpSocket>,
    recv_multicast: Option<Arc<UdpSocket>>,
}

/// The sockets of every network of one member.
#[derive(Debug)]
pub struct Transport {
    /// One link per configured network, in config order.
    pub links: Vec<Link>,
}

impl Transport {
    /// Opens the sockets of member `member` on every network of `cfg`.
    pub fn open(cfg: &GroupConfig, member: &str) -> Result<Transport, TransportError> {
        let port = cfg.heartbeat.port;
        let mut links = Vec::new();
        for network in &cfg.networks {
            let local = cfg
                .member(member)
                .and_then(|m| m.addresses.get(&network.name))
                .copied()
                .ok_or_else(|| TransportError::NoAddress {
                    member: member.to_string(),
                    network: network.name.clone(),
                })?;
            let ifindex = interface_index(local).ok_or_else(|| TransportError::NotLocal {
                network: network.name.clone(),
                address: local,
            })?;
            let err = |what: &str| {
                let network = network.name.clone();
                let what = what.to_string();
                move |source| TransportError::Socket {
                    network,
                    what,
                    source,
                }
            };
            let send = socket(local)
                .and_then(|s| {
                    s.bind(&SockAddr::from(SocketAddr::new(local, port)))?;
                    Ok(s)
                })
                .map_err(err(&format!("bind {}", SocketAddr::new(local, port))))?;
            let (recv_multicast, group_destinations) = match network.multicast {
                Some(group) => {
                    set_multicast_sender(&send, local, ifindex, cfg.heartbeat.ttl)
                        .map_err(err("set multicast options"))?;
                    let r = multicast_receiver(group, port, local, ifindex)
                        .map_err(err(&format!("join {group} on the interface of {local}")))?;
                    (Some(r), vec![SocketAddr::new(group, port)])
                }
                None => {
                    let peers = cfg
                        .members
                        .iter()
                        .filter(|m| m.name != member)
                        .filter_map(|m| m.addresses.get(&network.name))
                        .map(|ip| SocketAddr::new(*ip, port))
                        .collect();
                    (None, peers)
                }
            };
            let send = into_tokio(send).map_err(err("register the socket"))?;
            let recv_multicast = recv_multicast
                .map(into_tokio)
                .transpose()
                .map_err(err("register the socket"))?;
            links.push(Link {
                name: network.name.clone(),
                local,
                multicast: network.multicast,
                group_destinations,
                send,
                recv_multicast,
            });
        }
        Ok(Transport { links })
    }

    /// Sends `bytes` on network `network` without ever blocking (UDP; a full send buffer
    /// drops the datagram, which the protocol tolerates). Returns false if anything failed.
    pub fn send(&self, network: u8, to: Destination, bytes: &[u8], metrics: &Metrics) -> bool {
        let Some(link) = self.links.get(usize::from(network)) else {
            return false;
        };
        let mut ok = true;
        let mut one = |addr: SocketAddr| {
            if let Err(e) = link.send.get_ref().send_to(bytes, addr) {
                ok = false;
                metrics.send_errors.get_or_create(&net(&link.name)).inc();
                tracing::debug!(network = %link.name, %addr, error = %e, "send failed");
            }
        };
        match to {
            Destination::Group => link.group_destinations.iter().copied().for_each(&mut one),
            Destination::To(addr) => one(addr),
        }
        ok
    }

    /// Reads and discards every datagram waiting in the sockets; returns how many. Used after
    /// the process was frozen: what queued up meanwhile describes the group as it was, and
    /// acting on it as if it were new could make a stale member take the role back.
    pub fn discard_queued(&self) -> usize {
        let mut buf = [std::mem::MaybeUninit::<u8>::uninit(); RECV_BUF];
        let mut n = 0;
        for link in &self.links {
            for sock in std::iter::once(&link.send).chain(link.recv_multicast.as_ref()) {
                // A real recv on the (non-blocking) socket: tokio's try_recv would answer
                // "would block" from its cached readiness, which a frozen reactor never updated.
                let raw = socket2::SockRef::from(sock.get_ref());
                while raw.recv(&mut buf).is_ok() {
                    n += 1;
                }
            }
        }
        n
    }

    /// Waits until a socket has datagrams and returns every datagram queued on any socket.
    /// Runs on the agent loop itself (no task, no channel between them): a heartbeat costs one
    /// wake-up and one `recvmmsg` per socket it arrived on.
    pub async fn receive(&self, batch: &mut Batch) -> Vec<Datagram> {
        std::future::poll_fn(|cx| {
            let mut out = Vec::new();
            for (i, link) in self.links.iter().enumerate() {
                let network = i as u8;
                for sock in std::iter::once(&link.send).chain(link.recv_multicast.as_ref()) {
                    let mut reads = 0;
                    while let Poll::Ready(ready) = sock.poll_read_ready(cx) {
                        let mut guard = match ready {
                            Ok(g) => g,
                            Err(e) => {
                                tracing::debug!(error = %e, "cannot wait for datagrams");
                                break;
                            }
                        };
                        reads += 1;
                        if reads > MAX_READS {
                            // Still more: let the loop act on these first, then come back.
                            cx.waker().wake_by_ref();
                            break;
                        }
                        match batch.recv(guard.get_inner().as_raw_fd()) {
                            Ok(n) => {
                                out.extend(batch.datagrams(network));
                                if n < BATCH {
                                    // Drained: a datagram arriving from now on is a new edge.
                                    guard.clear_ready();
                                }
                            }
                            Err(Errno::EAGAIN) => guard.clear_ready(),
                            // A pending socket error (an ICMP answer to a unicast heartbeat)
                            // is consumed by the call that reports it: read on.
                            Err(e) => tracing::debug!(error = %e, "receive failed"),
                        }
                    }
                }
            }
            if out.is_empty() {
                Poll::Pending
            } else {
                Poll::Ready(out)
            }
        })
        .await
    }
}

fn socket(addr: IpAddr) -> std::io::Result<Socket> {
    let s = Socket::new(
        Domain::for_address(SocketAddr::new(addr, 0)),
        Type::DGRAM,
        Some(Protocol::UDP),
    )?;
    s.set_reuse_address(true)?;
    s.set_nonblocking(true)?;
    if addr.is_ipv6() {
        s.set_only_v6(true)?;
    }
    Ok(s)
}

fn set_multicast_sender(s: &Socket, local: IpAddr, ifindex: u32, ttl: u8) -> std::io::Result<()> {
    match local {
        IpAddr::V4(v4) => {
            s.set_multicast_if_v4(&v4)?;
            s.set_multicast_ttl_v4(u32::from(ttl))?;
            s.set_multicast_loop_v4(false)
        }
        IpAddr::V6(_) => {
            s.set_multicast_if_v6(ifindex)?;
            s.set_multicast_hops_v6(u32::from(ttl))?;
            s.set_multicast_loop_v6(false)
        }
    }
}

fn multicast_receiver(
    group: IpAddr,
    port: u16,
    local: IpAddr,
    ifindex: u32,
) -> std::io::Result<Socket> {
    let s = socket(group)?;
    match (group, local) {
        (IpAddr::V4(g), IpAddr::V4(l)) => {
            s.set_multicast_all_v4(false)?;
            s.bind(&SockAddr::from(SocketAddr::new(group, port)))?;
            s.join_multicast_v4(&g, &l)?;
        }
        (IpAddr::V6(g), _) => {
            s.set_multicast_all_v6(false)?;
            s.bind(&SockAddr::from(SocketAddrV6::new(g, port, 0, ifindex)))?;
            s.join_multicast_v6(&g, ifindex)?;
        }
        (IpAddr::V4(_), IpAddr::V6(_)) => {
            return Err(std::io::Error::new(
                std::io::ErrorKind::InvalidInput,
                "an IPv4 group needs an IPv4 member address",
            ));
        }
    }
    Ok(s)
}

/// Buffers for one `recvmmsg` of up to `BATCH` datagrams, reused across calls.
pub struct Batch {
    bufs: Vec<[u8; RECV_BUF]>,
    got: Vec<(usize, Option<SocketAddr>)>,
}

impl Default for Batch {
    fn default() -> Batch {
        Batch::new()
    }
}

impl Batch {
    /// Empty buffers.
    pub fn new() -> Batch {
        Batch {
            bufs: vec![[0u8; RECV_BUF]; BATCH],
            got: Vec::with_capacity(BATCH),
        }
    }

    /// Reads what is queued on `fd` without waiting; returns how many datagrams.
    fn recv(&mut self, fd: std::os::fd::RawFd) -> nix::Result<usize> {
        self.got.clear();
        // Holds raw pointers (not Send), so it lives only for the call.
        let mut headers = MultiHeaders::<SockaddrStorage>::preallocate(BATCH, None);
        let mut iovs: Vec<[IoSliceMut<'_>; 1]> = self
            .bufs
            .iter_mut()
            .map(|b| [IoSliceMut::new(&mut b[..])])
            .collect();
        let msgs = recvmmsg(
            fd,
            &mut headers,
            iovs.iter_mut(),
            MsgFlags::MSG_DONTWAIT,
            None,
        )?;
        for m in msgs {
            self.got.push((
                m.bytes.min(RECV_BUF),
                m.address.as_ref().and_then(socket_addr),
            ));
        }
        Ok(self.got.len())
    }

    /// The datagrams of the last [`Batch::recv`] (those without a source address skipped).
    fn datagrams(&self, network: u8) -> impl Iterator<Item = Datagram> + '_ {
        self.got
            .iter()
            .zip(&self.bufs)
            .filter_map(move |(&(n, from), buf)| {
                Some(Datagram {
                    network,
                    from: from?,
                    bytes: buf[..n].to_vec(),
                })
            })
    }
}

/// The source address of a received datagram.
fn socket_addr(a: &SockaddrStorage) -> Option<SocketAddr> {
    if let Some(v4) = a.as_sockaddr_in() {
        return Some(SocketAddr::V4(SocketAddrV4::from(*v4)));
    }
    a.as_sockaddr_in6()
        .map(|v6| SocketAddr::V6(SocketAddrV6::from(*v6)))
}

/// Registers `s` for readability only: sends never wait (see [`Transport::send`]), and a
/// writable interest would wake the loop each time the send buffer drains.
fn into_tokio(s: Socket) -> std::io::Result<Arc<UdpSocket>> {
    let sock = std::net::UdpSocket::from(s);
    // SAFETY: the AsyncFd owns the socket, so its descriptor stays open and refers to the same
    // socket until the AsyncFd is dropped; nothing else closes it.
    unsafe { AsyncFd::register_with_interest(sock, tokio::io::Interest::READABLE) }
        .map(Arc::new)
        .map_err(std::io::Error::from)
}

/// Index of the interface holding `addr`, if this host has it.
pub fn interface_index(addr: IpAddr) -> Option<u32> {
    interface_of(addr).and_then(|name| nix::net::if_::if_nametoindex(name.as_str()).ok())
}

/// Name of the interface holding `addr`, if this host has it.
pub fn interface_of(addr: IpAddr) -> Option<String> {
    if addr.is_loopback() {
        // All of 127.0.0.0/8 is local on `lo`, though only 127.0.0.1 is listed on it.
        return Some("lo".to_string());
    }
    let addrs = nix::ifaddrs::getifaddrs().ok()?;
    for ifa in addrs {
        let Some(a) = ifa.address else { continue };
        let ip = if let Some(v4) = a.as_sockaddr_in() {
            IpAddr::V4(v4.ip())
        } else if let Some(v6) = a.as_sockaddr_in6() {
            IpAddr::V6(v6.ip())
        } else {
            continue;
        };
        if ip == addr {
            return Some(ifa.interface_name);
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_is_found_and_foreign_addresses_are_not() {
        assert_eq!(
            interface_of("127.0.0.1".parse().unwrap()).as_deref(),
            Some("lo")
        );
        assert!(interface_index("127.0.0.1".parse().unwrap()).is_some());
        assert_eq!(interface_of("192.0.2.77".parse().unwrap()), None);
    }
}

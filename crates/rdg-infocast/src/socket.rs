//! The carousel's UDP sockets (socket2 for the options std does not have): a sender with
//! multicast TTL, loop-back on (so receivers on the same host hear it) and an optional
//! outgoing interface, and a receiver that joins the group like a set-top box — or, for a
//! unicast or loopback channel, simply binds it.

use socket2::{Domain, Protocol, SockAddr, Socket, Type};
use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, UdpSocket};

/// Send buffer asked for: room for a few milliseconds at 1 Gbit/s.
const SEND_BUFFER: usize = 1 << 20;
/// Receive buffer asked for (the kernel caps it at `net.core.rmem_max`).
const RECEIVE_BUFFER: usize = 8 << 20;

fn udp(addr: &SocketAddr) -> io::Result<Socket> {
    Socket::new(Domain::for_address(*addr), Type::DGRAM, Some(Protocol::UDP))
}

/// A non-blocking socket connected to `dest` for sending the carousel. For a multicast
/// `dest`: TTL (hop limit) `ttl`, loop-back on, and with `interface` (a local IPv4 address)
/// that interface. With `interface`, datagrams also leave from that source address.
pub fn sender(dest: SocketAddr, ttl: u8, interface: Option<IpAddr>) -> io::Result<UdpSocket> {
    let s = udp(&dest)?;
    match dest.ip() {
        IpAddr::V4(group) if group.is_multicast() => {
            s.set_multicast_ttl_v4(u32::from(ttl))?;
            s.set_multicast_loop_v4(true)?;
            if let Some(IpAddr::V4(local)) = interface {
                s.set_multicast_if_v4(&local)?;
            }
        }
        IpAddr::V6(group) if group.is_multicast() => {
            s.set_multicast_hops_v6(u32::from(ttl))?;
            s.set_multicast_loop_v6(true)?;
        }
        _ => {}
    }
    let _ = s.set_send_buffer_size(SEND_BUFFER);
    let local = match (interface, dest) {
        (Some(ip), _) => SocketAddr::new(ip, 0),
        (None, SocketAddr::V4(_)) => SocketAddr::new(Ipv4Addr::UNSPECIFIED.into(), 0),
        (None, SocketAddr::V6(_)) => SocketAddr::new(Ipv6Addr::UNSPECIFIED.into(), 0),
    };
    s.bind(&SockAddr::from(local))?;
    // Connected: the route is looked up once, not per datagram.
    s.connect(&SockAddr::from(dest))?;
    s.set_nonblocking(true)?;
    Ok(s.into())
}

/// A blocking socket receiving `channel`: for a multicast group, bound to the group and port
/// (shared with other receivers) and joined on `interface` (default: any, i.e. the routing
/// table's choice); for any other address, that address bound as is.
pub fn receiver(channel: SocketAddr, interface: Option<IpAddr>) -> io::Result<UdpSocket> {
    let s = udp(&channel)?;
    s.set_reuse_address(true)?;
    let _ = s.set_recv_buffer_size(RECEIVE_BUFFER);
    match channel.ip() {
        IpAddr::V4(group) if group.is_multicast() => {
            s.set_reuse_port(true)?;
            s.bind(&SockAddr::from(channel))?;
            let local = match interface {
                Some(IpAddr::V4(a)) => a,
                _ => Ipv4Addr::UNSPECIFIED,
            };
            s.join_multicast_v4(&group, &local)?;
        }
        IpAddr::V6(group) if group.is_multicast() => {
            s.set_reuse_port(true)?;
            s.bind(&SockAddr::from(channel))?;
            s.join_multicast_v6(&group, 0)?;
        }
        _ => s.bind(&SockAddr::from(channel))?,
    }
    Ok(s.into())
}

//! Doing network I/O from inside a namespace without a helper process: a short-lived thread
//! joins the namespace with `setns(2)` (which only affects that thread) and runs a closure.

use nix::sched::{CloneFlags, setns};
use std::fs::File;
use std::net::{Ipv4Addr, SocketAddrV4, UdpSocket};

/// Runs `f` on a new thread that has joined the network namespace `netns` (a name under
/// `/run/netns`), and returns its result. Sockets opened by `f` belong to that namespace.
pub fn in_netns<T, F>(netns: &str, f: F) -> Result<T, String>
where
    T: Send,
    F: FnOnce() -> T + Send,
{
    let path = format!("/run/netns/{netns}");
    std::thread::scope(|scope| {
        scope
            .spawn(|| {
                let file = File::open(&path).map_err(|e| format!("open {path}: {e}"))?;
                setns(&file, CloneFlags::CLONE_NEWNET).map_err(|e| format!("setns {path}: {e}"))?;
                Ok(f())
            })
            .join()
            .map_err(|_| format!("the thread working in {netns} panicked"))?
    })
}

/// Sends each of `datagrams` from `source` (an address of the namespace `netns`, any port) to
/// `dest`. For a multicast `dest` the source address selects the interface and the TTL is 5.
pub fn send_udp(
    netns: &str,
    source: Ipv4Addr,
    dest: SocketAddrV4,
    datagrams: &[Vec<u8>],
) -> Result<(), String> {
    in_netns(netns, || {
        let sock = UdpSocket::bind((source, 0)).map_err(|e| format!("bind {source}: {e}"))?;
        sock.set_multicast_ttl_v4(5)
            .map_err(|e| format!("multicast ttl: {e}"))?;
        for d in datagrams {
            sock.send_to(d, dest)
                .map_err(|e| format!("send {} bytes to {dest}: {e}", d.len()))?;
        }
        Ok(())
    })?
}

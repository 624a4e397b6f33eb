//! A minimal HTTP/1.0 client for the agents' `/status`, `/healthz` and `/metrics`, reached from
//! inside their namespaces (see [`crate::netns::in_netns`]). HTTP/1.0 with `Connection: close`
//! keeps the response simple: a status line, headers, and a body that ends with the connection.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

/// An HTTP response: status code and body.
#[derive(Debug, Clone)]
pub struct Response {
    /// The status code (200, 404, ...).
    pub status: u16,
    /// The body as text.
    pub body: String,
}

/// `GET path` on `addr` in the calling thread's network namespace, with `timeout` for the
/// connection and for each read and write.
pub fn get(addr: SocketAddr, path: &str, timeout: Duration) -> Result<Response, String> {
    let what = format!("GET http://{addr}{path}");
    let mut stream =
        TcpStream::connect_timeout(&addr, timeout).map_err(|e| format!("{what}: connect: {e}"))?;
    stream
        .set_read_timeout(Some(timeout))
        .and_then(|()| stream.set_write_timeout(Some(timeout)))
        .map_err(|e| format!("{what}: {e}"))?;
    let request = format!("GET {path} HTTP/1.0\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
    stream
        .write_all(request.as_bytes())
        .map_err(|e| format!("{what}: write: {e}"))?;
    let mut raw = Vec::new();
    stream
        .read_to_end(&mut raw)
        .map_err(|e| format!("{what}: read: {e}"))?;
    parse(&raw).map_err(|e| format!("{what}: {e}"))
}

/// Parses a whole HTTP/1.x response (no chunked bodies: HTTP/1.0 requests never get one).
fn parse(raw: &[u8]) -> Result<Response, String> {
    let text = String::from_utf8_lossy(raw);
    let (head, body) = text
        .split_once("\r\n\r\n")
        .ok_or_else(|| format!("no end of headers in {} bytes", raw.len()))?;
    let status_line = head.lines().next().unwrap_or_default();
    let mut parts = status_line.split_whitespace();
    let version = parts.next().unwrap_or_default();
    if !version.starts_with("HTTP/1.") {
        return Err(format!("not an HTTP/1 response: {status_line:?}"));
    }
    let status = parts
        .next()
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| format!("bad status line {status_line:?}"))?;
    if head.lines().any(|l| {
        l.to_ascii_lowercase()
            .starts_with("transfer-encoding: chunked")
    }) {
        return Err("chunked response to an HTTP/1.0 request".into());
    }
    Ok(Response {
        status,
        body: body.to_string(),
    })
}

#[cfg(test)]
mod tests {
    #[test]
    fn parses_status_and_body() {
        let r = super::parse(b"HTTP/1.1 200 OK\r\ncontent-type: x\r\n\r\n{\"a\":1}").unwrap();
        assert_eq!(r.status, 200);
        assert_eq!(r.body, "{\"a\":1}");
        assert!(super::parse(b"garbage").is_err());
    }
}

//! A tiny HTTP/1.1 client for the agent's own local endpoint (`GET /status`, `GET /metrics`,
//! `POST /switchover?to=` with the member's token): one short-lived connection per request,
//! each bounded by a timeout, so a stuck agent can never stall the reporter. A full HTTP
//! client stack would be more code to build than this for three loopback calls.

use rdg_agent::status::StatusReport;
use rdg_agent::switchover_token::Token;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::time::Duration;
use thiserror::Error;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Largest response accepted (a status report of a big group is a few kB).
const MAX_RESPONSE: usize = 1 << 20;

/// A failed call to the local agent.
#[derive(Debug, Error)]
pub enum AgentCallError {
    /// Connecting, writing or reading failed.
    #[error("agent endpoint {addr}: {source}")]
    Io {
        /// The endpoint.
        addr: SocketAddr,
        /// Why.
        source: std::io::Error,
    },
    /// No complete answer within the timeout.
    #[error("agent endpoint {0}: no answer in time")]
    Timeout(SocketAddr),
    /// The answer is not HTTP, or too large.
    #[error("agent endpoint {0}: malformed response")]
    Malformed(SocketAddr),
    /// The agent answered with an error status.
    #[error("agent endpoint {addr}: HTTP {code}: {body}")]
    Status {
        /// The endpoint.
        addr: SocketAddr,
        /// HTTP status code.
        code: u16,
        /// The response body (the agent's explanation).
        body: String,
    },
    /// `/status` did not hold a status report.
    #[error("agent endpoint {addr}: bad status report: {source}")]
    Json {
        /// The endpoint.
        addr: SocketAddr,
        /// Why.
        source: serde_json::Error,
    },
}

/// Client of the agent's local endpoint.
#[derive(Debug, Clone)]
pub struct AgentClient {
    addr: SocketAddr,
    timeout: Duration,
    /// Sent with `POST /switchover` (None: sent without, which the agent refuses).
    token: Option<Token>,
}

impl AgentClient {
    /// A client of the endpoint listening on `listen` (an unspecified address such as
    /// `0.0.0.0` is reached over loopback); each request gives up after `timeout`.
    pub fn new(listen: SocketAddr, timeout: Duration) -> AgentClient {
        let mut addr = listen;
        if addr.ip().is_unspecified() {
            addr.set_ip(match addr.ip() {
                IpAddr::V4(_) => IpAddr::V4(Ipv4Addr::LOCALHOST),
                IpAddr::V6(_) => IpAddr::V6(Ipv6Addr::LOCALHOST),
            });
        }
        AgentClient {
            addr,
            timeout,
            token: None,
        }
    }

    /// The same client, sending `token` with switchover requests.
    pub fn with_token(self, token: Token) -> AgentClient {
        AgentClient {
            token: Some(token),
            ..self
        }
    }

    /// The address requests go to.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `GET /status`.
    pub async fn status(&self) -> Result<StatusReport, AgentCallError> {
        Ok(self.status_with_text().await?.0)
    }

    /// `GET /status`: the report and the JSON text it was read from (kept verbatim in the
    /// agent report ConfigMap).
    pub async fn status_with_text(&self) -> Result<(StatusReport, String), AgentCallError> {
        let body = self.call("GET", "/status").await?;
        let report = serde_json::from_slice(&body).map_err(|source| AgentCallError::Json {
            addr: self.addr,
            source,
        })?;
        Ok((report, String::from_utf8_lossy(&body).into_owned()))
    }

    /// `GET /metrics`: the agent's metrics as text (the endpoint needs no token).
    pub async fn metrics(&self) -> Result<String, AgentCallError> {
        let body = self.call("GET", "/metrics").await?;
        Ok(String::from_utf8_lossy(&body).into_owned())
    }

    /// `POST /switchover?to=<to>`: asks the agent (the hot member) to hand over to `to`.
    /// Returns the agent's answer.
    pub async fn switchover(&self, to: &str) -> Result<String, AgentCallError> {
        let body = self
            .call("POST", &format!("/switchover?to={}", encode(to)))
            .await?;
        Ok(String::from_utf8_lossy(&body).trim().to_string())
    }

    async fn call(&self, method: &str, target: &str) -> Result<Vec<u8>, AgentCallError> {
        let (code, body) = tokio::time::timeout(self.timeout, self.exchange(method, target))
            .await
            .map_err(|_| AgentCallError::Timeout(self.addr))??;
        if (200..300).contains(&code) {
            Ok(body)
        } else {
            Err(AgentCallError::Status {
                addr: self.addr,
                code,
                body: String::from_utf8_lossy(&body).trim().to_string(),
            })
        }
    }

    async fn exchange(&self, method: &str, target: &str) -> Result<(u16, Vec<u8>), AgentCallError> {
        let io = |source| AgentCallError::Io {
            addr: self.addr,
            source,
        };
        let mut stream = TcpStream::connect(self.addr).await.map_err(io)?;
        let auth = match (&self.token, method) {
            (Some(t), "POST") => format!("Authorization: {}\r\n", t.bearer()),
            _ => String::new(),
        };
        let request = format!(
            "{method} {target} HTTP/1.1\r\nHost: {}\r\n{auth}Content-Length: 0\r\nConnection: close\r\n\r\n",
            self.addr
        );
        stream.write_all(request.as_bytes()).await.map_err(io)?;
        let mut raw = Vec::new();
        (&mut stream)
            .take(MAX_RESPONSE as u64 + 1)
            .read_to_end(&mut raw)
            .await
            .map_err(io)?;
        if raw.len() > MAX_RESPONSE {
            return Err(AgentCallError::Malformed(self.addr));
        }
        parse_response(&raw).ok_or(AgentCallError::Malformed(self.addr))
    }
}

/// Splits a complete HTTP/1.1 response (connection closed by the server) into status code
/// and body, undoing chunked transfer encoding.
fn parse_response(raw: &[u8]) -> Option<(u16, Vec<u8>)> {
    let split = raw.windows(4).position(|w| w == b"\r\n\r\n")?;
    let head = std::str::from_utf8(&raw[..split]).ok()?;
    let body = &raw[split + 4..];
    let mut lines = head.split("\r\n");
    let code = lines.next()?.split(' ').nth(1)?.parse().ok()?;
    let chunked = lines.any(|l| {
        l.split_once(':').is_some_and(|(k, v)| {
            k.trim().eq_ignore_ascii_case("transfer-encoding")
                && v.to_ascii_lowercase().contains("chunked")
        })
    });
    if !chunked {
        return Some((code, body.to_vec()));
    }
    let mut out = Vec::new();
    let mut rest = body;
    loop {
        let end = rest.windows(2).position(|w| w == b"\r\n")?;
        let size_line = std::str::from_utf8(&rest[..end]).ok()?;
        let size = usize::from_str_radix(size_line.split(';').next()?.trim(), 16).ok()?;
        rest = &rest[end + 2..];
        if size == 0 {
            return Some((code, out));
        }
        out.extend_from_slice(rest.get(..size)?);
        rest = rest.get(size + 2..)?;
    }
}

/// Percent-encodes a query value.
fn encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_and_chunked_responses_parse() {
        let plain = b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\n{}";
        assert_eq!(parse_response(plain), Some((200, b"{}".to_vec())));
        let chunked =
            b"HTTP/1.1 202 Accepted\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n";
        assert_eq!(parse_response(chunked), Some((202, b"abcde".to_vec())));
        assert_eq!(parse_response(b"garbage"), None);
    }

    #[test]
    fn unspecified_listen_address_is_reached_over_loopback() {
        let c = AgentClient::new("0.0.0.0:9035".parse().unwrap(), Duration::from_secs(1));
        assert_eq!(c.addr(), "127.0.0.1:9035".parse().unwrap());
        assert_eq!(encode("ics-a b"), "ics-a%20b");
    }
}

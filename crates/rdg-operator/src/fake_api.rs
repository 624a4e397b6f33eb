//! A fake Kubernetes API server in process, for tests and benchmarks: kube's tower-test mock
//! answers each request with the caller's function over the caller's state, and records it.
//! It stands in for the API server where a real one is not needed; the e2e suite runs a real
//! apiextensions-apiserver where it is. Built with the `testing` feature.

use http::{Request, Response};
use kube::Client;
use kube::client::Body;
use serde_json::{Value, json};
use std::sync::{Arc, Mutex, MutexGuard};
use tokio::task::JoinHandle;
use tokio::time::Instant;

/// One request the server received.
#[derive(Debug, Clone)]
pub struct Call {
    /// When it arrived.
    pub at: Instant,
    /// HTTP method (`GET`, `PATCH`, ...).
    pub method: String,
    /// URL path.
    pub path: String,
    /// URL query, percent-encoded as sent.
    pub query: String,
    /// The JSON body (null when empty or not JSON).
    pub body: Value,
    /// The HTTP status it was answered with (0 while it is being answered).
    pub code: u16,
}

impl Call {
    /// Whether it is `method` on `path`.
    pub fn is(&self, method: &str, path: &str) -> bool {
        self.method == method && self.path == path
    }

    /// The value of query parameter `key`, percent-encoded as sent.
    pub fn param(&self, key: &str) -> Option<&str> {
        self.query
            .split('&')
            .find_map(|kv| kv.strip_prefix(key).and_then(|rest| rest.strip_prefix('=')))
    }

    /// The field manager the request names.
    pub fn field_manager(&self) -> Option<&str> {
        self.param("fieldManager")
    }
}

/// An answer: HTTP status and JSON body.
pub type Reply = (u16, Value);

/// A failure with a Kubernetes `Status` body.
pub fn failure(code: u16, reason: &str, message: &str) -> Reply {
    (
        code,
        json!({"kind": "Status", "apiVersion": "v1", "status": "Failure", "reason": reason,
               "code": code, "message": message}),
    )
}

/// `404 NotFound`.
pub fn not_found() -> Reply {
    failure(404, "NotFound", "not found")
}

/// A list of `kind` (e.g. `PodList`) holding `items`.
pub fn list(kind: &str, items: Vec<Value>) -> Reply {
    (
        200,
        json!({"apiVersion": "v1", "kind": kind, "metadata": {"resourceVersion": "1"},
               "items": items}),
    )
}

/// The object sent, as the server answers a create (201) or a patch (200): its body, with
/// `metadata` (empty if it had none).
pub fn echo(call: &Call) -> Reply {
    let mut body = call.body.clone();
    if body.get("metadata").is_none() {
        body["metadata"] = json!({});
    }
    (if call.method == "POST" { 201 } else { 200 }, body)
}

/// What the server holds: the caller's state, and the requests received.
pub struct Contents<S> {
    /// The caller's state, which answers are made of.
    pub state: S,
    /// The requests received, in order (none kept by [`FakeApiServer::start_counting`]).
    pub calls: Vec<Call>,
    /// How many requests were answered.
    pub requests: u64,
    record: bool,
}

impl<S> Contents<S> {
    /// How many `method` requests on `path` were received.
    pub fn count(&self, method: &str, path: &str) -> usize {
        self.calls.iter().filter(|c| c.is(method, path)).count()
    }
}

/// A running fake server; dropping it stops it.
pub struct FakeApiServer<S> {
    contents: Arc<Mutex<Contents<S>>>,
    task: JoinHandle<()>,
}

impl<S: Send + 'static> FakeApiServer<S> {
    /// Starts a server holding `state` that answers each request with `respond` and records
    /// it; returns the client that talks to it, and the server. Needs a Tokio runtime.
    pub fn start(
        state: S,
        respond: impl FnMut(&mut S, &Call) -> Reply + Send + 'static,
    ) -> (Client, FakeApiServer<S>) {
        Self::serve(state, respond, true)
    }

    /// As [`FakeApiServer::start`], but only counts the requests (a benchmark's memory
    /// figures must not include a record of them).
    pub fn start_counting(
        state: S,
        respond: impl FnMut(&mut S, &Call) -> Reply + Send + 'static,
    ) -> (Client, FakeApiServer<S>) {
        Self::serve(state, respond, false)
    }

    fn serve(
        state: S,
        mut respond: impl FnMut(&mut S, &Call) -> Reply + Send + 'static,
        record: bool,
    ) -> (Client, FakeApiServer<S>) {
        let (service, mut handle) = tower_test::mock::pair::<Request<Body>, Response<Body>>();
        let contents = Arc::new(Mutex::new(Contents {
            state,
            calls: Vec::new(),
            requests: 0,
            record,
        }));
        let shared = Arc::clone(&contents);
        let task = tokio::spawn(async move {
            while let Some((req, send)) = handle.next_request().await {
                let (parts, body) = req.into_parts();
                let bytes = body.collect_bytes().await.unwrap_or_default();
                let mut call = Call {
                    at: Instant::now(),
                    method: parts.method.to_string(),
                    path: parts.uri.path().to_string(),
                    query: parts.uri.query().unwrap_or("").to_string(),
                    body: serde_json::from_slice(&bytes).unwrap_or(Value::Null),
                    code: 0,
                };
                let answer = {
                    let mut c = shared.lock().unwrap_or_else(|e| e.into_inner());
                    let (code, answer) = respond(&mut c.state, &call);
                    call.code = code;
                    c.requests += 1;
                    if c.record {
                        c.calls.push(call.clone());
                    }
                    answer
                };
                send.send_response(
                    Response::builder()
                        .status(call.code)
                        .header("content-type", "application/json")
                        .body(Body::from(serde_json::to_vec(&answer).expect("JSON")))
                        .expect("a valid response"),
                );
            }
        });
        (
            Client::new(service, "default"),
            FakeApiServer { contents, task },
        )
    }

    /// What the server holds, locked (not across an await: the server waits for it).
    pub fn lock(&self) -> MutexGuard<'_, Contents<S>> {
        self.contents.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The requests received so far, handed over (the record starts empty again).
    pub fn take_calls(&self) -> Vec<Call> {
        std::mem::take(&mut self.lock().calls)
    }
}

impl<S> Drop for FakeApiServer<S> {
    fn drop(&mut self) {
        self.task.abort();
    }
}

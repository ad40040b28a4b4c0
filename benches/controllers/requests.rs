//! The controller manager's client, counted and kept off the server's threads.
//!
//! In keel the controller manager speaks to its member's API server in-process: a request is
//! a call of the server's handler on the caller's task. Measured that way, the controller
//! manager's threads would also pay for the API server's work. So its client here forwards
//! every request to the server's runtime (and streams each response body back through a
//! channel), counting it by verb and resource on the way: what the controller manager's own
//! thread runs is the controllers and their kube client, nothing of the server.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use http_body_util::{BodyExt as _, StreamBody};
use hyper::body::Frame;
use hyper::{Method, Request, Response, Uri};
use tokio::runtime::Handle;
use tokio_stream::wrappers::ReceiverStream;

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// Requests sent and those answered with an error status (or none), by verb and resource.
pub type Counts = BTreeMap<(String, String), Sent>;

/// Requests of one verb and resource.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Sent {
    /// Sent.
    pub all: u64,
    /// Answered with a status of 400 or more, or not answered.
    pub failed: u64,
}

/// Requests by (verb, resource), as kube-apiserver's audit log names them.
#[derive(Default)]
pub struct Requests(Mutex<Counts>);

impl Requests {
    fn record(&self, verb: &str, resource: String, failed: bool) {
        let mut counts = self.0.lock().unwrap();
        let sent = counts.entry((verb.to_owned(), resource)).or_default();
        sent.all += 1;
        sent.failed += u64::from(failed);
    }

    /// The counts so far.
    pub fn snapshot(&self) -> Counts {
        self.0.lock().unwrap().clone()
    }
}

/// What happened between two snapshots.
pub fn difference(before: &Counts, after: &Counts) -> Counts {
    after
        .iter()
        .map(|(key, n)| {
            let was = before.get(key).copied().unwrap_or_default();
            let sent = Sent {
                all: n.all - was.all,
                failed: n.failed - was.failed,
            };
            (key.clone(), sent)
        })
        .filter(|(_, n)| n.all > 0)
        .collect()
}

/// A client whose requests are counted into `requests` and sent by `server` (a client of
/// the API server, made on `server_runtime`) on that runtime. Call it on the runtime that
/// is to run the controllers: the kube client's own buffer task starts there.
pub fn counted_client(
    server: kube::Client,
    server_runtime: Handle,
    requests: Arc<Requests>,
) -> kube::Client {
    let service = tower::service_fn(move |request: Request<kube::client::Body>| {
        let (verb, resource) = classify(request.method(), request.uri());
        let requests = Arc::clone(&requests);
        let server = server.clone();
        let forwarded = server_runtime.spawn(async move {
            let response = server.send(request).await?;
            let (parts, mut body) = response.into_parts();
            let (frames, received) =
                tokio::sync::mpsc::channel::<Result<Frame<Bytes>, BoxError>>(16);
            tokio::spawn(async move {
                while let Some(frame) = body.frame().await {
                    let frame = frame.map_err(|e| Box::new(e) as BoxError);
                    if frames.send(frame).await.is_err() {
                        break;
                    }
                }
            });
            Ok::<_, kube::Error>(Response::from_parts(
                parts,
                StreamBody::new(ReceiverStream::new(received)),
            ))
        });
        async move {
            let response = forwarded.await.map_err(|e| Box::new(e) as BoxError);
            let failed = !matches!(&response, Ok(Ok(r)) if r.status().as_u16() < 400);
            requests.record(verb, resource, failed);
            response?.map_err(|e| Box::new(e) as BoxError)
        }
    });
    kube::Client::new(service, "default")
}

/// The audit log's verb and resource (with its subresource) of a request.
fn classify(method: &Method, uri: &Uri) -> (&'static str, String) {
    let segments: Vec<&str> = uri.path().split('/').filter(|s| !s.is_empty()).collect();
    // /api/v1/... or /apis/GROUP/VERSION/...
    let rest = match segments.first() {
        Some(&"api") => segments.get(2..),
        Some(&"apis") => segments.get(3..),
        _ => None,
    }
    .unwrap_or(&[]);
    let rest = match rest {
        ["namespaces", _namespace, resource, more @ ..] => {
            let mut r = vec![*resource];
            r.extend_from_slice(more);
            r
        }
        other => other.to_vec(),
    };
    let resource = match rest.as_slice() {
        [] => "(other)".to_owned(),
        [resource] | [resource, _] => (*resource).to_owned(),
        [resource, _, subresource, ..] => format!("{resource}/{subresource}"),
    };
    let named = rest.len() >= 2;
    let watch = uri
        .query()
        .is_some_and(|q| q.split('&').any(|p| p == "watch=true" || p == "watch=1"));
    let verb = match *method {
        Method::GET if watch => "watch",
        Method::GET if named => "get",
        Method::GET => "list",
        Method::POST => "create",
        Method::PUT => "update",
        Method::PATCH => "patch",
        Method::DELETE if named => "delete",
        Method::DELETE => "deletecollection",
        _ => "other",
    };
    (verb, resource)
}

//! Closed-loop unary workloads: pod creates and gets through the API server, puts, ranges and
//! a create's own storage calls on the gateway, and the ratio between two of them.

use super::*;

/// Runs `total` operations over `clients` workers; `operation(worker, op)` builds one (before
/// the clock starts) and its future makes it.
pub(crate) async fn closed_loop<F, Fut>(
    name: &str,
    clients: usize,
    total: u64,
    operation: F,
) -> Report
where
    F: Fn(usize, u64) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<(), String>> + Send + 'static,
{
    let next = Arc::new(AtomicU64::new(0));
    let operation = Arc::new(operation);
    let started = Instant::now();
    let workers: Vec<_> = (0..clients)
        .map(|worker| {
            let (next, operation) = (Arc::clone(&next), Arc::clone(&operation));
            tokio::spawn(async move {
                let mut recorder = Recorder::default();
                loop {
                    let op = next.fetch_add(1, Ordering::Relaxed);
                    if op >= total {
                        return recorder;
                    }
                    let call = operation(worker, op);
                    let sent = Instant::now();
                    match call.await {
                        Ok(()) => recorder.success(sent.elapsed()),
                        Err(message) => recorder.failure(message),
                    }
                }
            })
        })
        .collect();
    let mut all = Recorder::default();
    for worker in workers {
        match worker.await {
            Ok(recorder) => all.merge(recorder),
            Err(e) => all.failure(format!("a worker panicked: {e}")),
        }
    }
    all.report(name, started.elapsed())
}

/// Creates pods `first..first + count` of `namespace`; worker `w` talks to API server `w % 3`.
pub(crate) async fn pod_creates(
    target: &Arc<Target>,
    clients: usize,
    first: u64,
    count: u64,
    namespace: &'static str,
) -> Report {
    let target = Arc::clone(target);
    closed_loop("pod-create", clients, count, move |worker, op| {
        let name = format!("pod-{}", first + op);
        let request = target
            .http
            .post(format!(
                "{}/api/v1/namespaces/{namespace}/pods",
                target.apiserver(worker)
            ))
            .header("content-type", "application/json")
            .body(pod_json(&name, namespace, None));
        async move { send(request, StatusCode::CREATED).await.map(drop) }
    })
    .await
}

/// Puts `count` distinct keys under `prefix`, each with a pod's JSON as its value.
pub(crate) async fn raw_puts(
    target: &Arc<Target>,
    clients: usize,
    count: u64,
    prefix: &str,
) -> Report {
    let target = Arc::clone(target);
    let value = BASE64.encode(pod_json("pod-0", NS_PODS, None));
    let prefix = prefix.to_owned();
    closed_loop("raw-put", clients, count, move |worker, op| {
        let key = BASE64.encode(format!("{prefix}pod-{op}"));
        let request = target
            .http
            .post(format!("{}/v3/kv/put", target.gateway(worker)))
            .header("content-type", "application/json")
            .body(format!(r#"{{"key":"{key}","value":"{value}"}}"#));
        async move { send(request, StatusCode::OK).await.map(drop) }
    })
    .await
}

/// Gets the pods the creates made, by name, with no resourceVersion (a linearizable read):
/// as the admin (`system:masters`, allowed before any rule is read), or impersonating `user`
/// (RBAC evaluated for every get).
pub(crate) async fn pod_gets(
    target: &Arc<Target>,
    clients: usize,
    count: u64,
    user: Option<&'static str>,
) -> Report {
    let target = Arc::clone(target);
    closed_loop("pod-get", clients, count, move |worker, op| {
        let mut request = target.http.get(format!(
            "{}/api/v1/namespaces/{NS_PODS}/pods/pod-{op}",
            target.apiserver(worker)
        ));
        if let Some(user) = user {
            request = request.header("impersonate-user", user);
        }
        async move { send(request, StatusCode::OK).await.map(drop) }
    })
    .await
}

/// Linearizable single-key ranges of the keys the raw puts wrote.
pub(crate) async fn raw_ranges(
    target: &Arc<Target>,
    clients: usize,
    count: u64,
    prefix: &str,
) -> Report {
    let target = Arc::clone(target);
    let prefix = prefix.to_owned();
    closed_loop("raw-range", clients, count, move |worker, op| {
        let key = BASE64.encode(format!("{prefix}pod-{op}"));
        let request = target
            .http
            .post(format!("{}/v3/kv/range", target.gateway(worker)))
            .header("content-type", "application/json")
            .body(format!(r#"{{"key":"{key}"}}"#));
        async move {
            let answer = send(request, StatusCode::OK).await?;
            // A range of a missing key succeeds too, without kvs.
            if has_kvs(&answer) {
                Ok(())
            } else {
                Err("the key the put wrote is missing".to_owned())
            }
        }
    })
    .await
}

/// What keel-apiserver asks of the store for a pod create, sent to the gateway: a
/// linearizable range (the namespace's existence) and a txn putting the key if it has no
/// create revision yet.
pub(crate) async fn raw_create_calls(target: &Arc<Target>, clients: usize, count: u64) -> Report {
    let target = Arc::clone(target);
    let value = BASE64.encode(pod_json("pod-0", NS_PODS, None));
    let namespace = BASE64.encode(format!("/registry/namespaces/{NS_PODS}"));
    closed_loop("raw-create-calls", clients, count, move |worker, op| {
        let gateway = target.gateway(worker);
        let key = BASE64.encode(format!("/bench-raw-txn/pod-{op}"));
        let range = target
            .http
            .post(format!("{gateway}/v3/kv/range"))
            .header("content-type", "application/json")
            .body(format!(r#"{{"key":"{namespace}"}}"#));
        let txn = target
            .http
            .post(format!("{gateway}/v3/kv/txn"))
            .header("content-type", "application/json")
            .body(format!(
                r#"{{"compare":[{{"key":"{key}","target":"CREATE","result":"EQUAL","create_revision":"0"}}],"success":[{{"request_put":{{"key":"{key}","value":"{value}"}}}}],"failure":[{{"request_range":{{"key":"{key}"}}}}]}}"#
            ));
        async move {
            let namespace = send(range, StatusCode::OK).await?;
            if !has_kvs(&namespace) {
                return Err("the namespace's key is missing".to_owned());
            }
            let answer = send(txn, StatusCode::OK).await?;
            if answer.windows(16).any(|w| w == b"\"succeeded\":true") {
                Ok(())
            } else {
                Err("the txn found the key".to_owned())
            }
        }
    })
    .await
}

pub(crate) fn has_kvs(answer: &[u8]) -> bool {
    answer.windows(6).any(|w| w == b"\"kvs\":")
}

/// `ours / theirs` in ops/s, with the goal when there is one.
pub(crate) fn ratio(ours: &Report, theirs: &Report, goal: f64) -> String {
    if theirs.ops_per_second <= 0.0 {
        return "n/a".into();
    }
    let ratio = ours.ops_per_second / theirs.ops_per_second;
    if goal > 0.0 {
        let verdict = if ratio >= goal { "met" } else { "NOT met" };
        format!("{ratio:.2} (goal ≥ {goal:.2}: {verdict})")
    } else {
        format!("{ratio:.2}")
    }
}

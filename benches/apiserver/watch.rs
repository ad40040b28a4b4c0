//! The watch run: field-selected watchers, one per node, while their pods are updated at a
//! fixed rate; latency from acknowledgement to delivery and an exactly-once check.

use super::*;

/// What the watch run measured.
pub(crate) struct WatchRun {
    /// Latency from a write's acknowledgement to its event, and every failure.
    pub(crate) events: Report,
    /// Latency from the moment the write was sent to its event.
    pub(crate) from_sent: Report,
    /// Events that reached their watcher before their write's answer reached the writer.
    pub(crate) before_ack: u64,
    pub(crate) check: WatchCheck,
    /// Events for a pod of another node, or for a write nobody acknowledged.
    pub(crate) foreign: u64,
    /// Writes that failed.
    pub(crate) write_errors: u64,
    /// Creating the watched pods (one per node), then listing and watching from every watcher.
    pub(crate) pods_setup: Duration,
    pub(crate) watch_setup: Duration,
    /// From the first write to the last acknowledgement.
    pub(crate) writing: Duration,
    /// CPU seconds of the whole process while the watched updates ran, and while the same
    /// updates ran before anyone watched.
    pub(crate) cpu_watched: f64,
    pub(crate) cpu_unwatched: f64,
    /// Latency of the updates (sent to answered) before anyone watched, and while they did.
    pub(crate) update_latency: [Report; 2],
}

/// An acknowledged update, by the revision it answered.
pub(crate) struct Ack {
    /// Whose pod it updated.
    pub(crate) node: usize,
    /// When it was sent.
    pub(crate) sent: Instant,
    /// When its answer came.
    pub(crate) at: Instant,
}

/// One event a watcher received.
pub(crate) struct Seen {
    pub(crate) revision: i64,
    pub(crate) name: String,
    pub(crate) at: Instant,
}

/// One watcher's stream: what it saw, and why it stopped early if it did.
pub(crate) struct Followed {
    pub(crate) seen: Vec<Seen>,
    pub(crate) error: Option<String>,
}

#[derive(Deserialize)]
pub(crate) struct WatchLine {
    #[serde(rename = "type")]
    pub(crate) kind: String,
    pub(crate) object: ObjectHead,
}

#[derive(Default, Deserialize)]
pub(crate) struct ObjectHead {
    #[serde(default)]
    pub(crate) metadata: Metadata,
    #[serde(default)]
    pub(crate) message: String,
}

#[derive(Default, Deserialize)]
pub(crate) struct Metadata {
    #[serde(default)]
    pub(crate) name: String,
    #[serde(default, rename = "resourceVersion")]
    pub(crate) resource_version: String,
    #[serde(default, rename = "continue")]
    pub(crate) continue_token: Option<String>,
}

#[derive(Deserialize)]
pub(crate) struct ListBody {
    pub(crate) metadata: Metadata,
    pub(crate) items: Vec<IgnoredAny>,
}

pub(crate) async fn watch_run(target: &Arc<Target>, sizes: &Sizes) -> anyhow::Result<WatchRun> {
    let watchers = sizes.watchers;
    let mut events = Recorder::default();

    // One pod per node, there before anyone watches, as a running cluster's would be.
    let setup = Instant::now();
    let created = {
        let target = Arc::clone(target);
        closed_loop(
            "watched-pods",
            sizes.clients,
            watchers as u64,
            move |worker, node| {
                let request = target
                    .http
                    .post(format!(
                        "{}/api/v1/namespaces/{NS_WATCH}/pods",
                        target.apiserver(worker)
                    ))
                    .header("content-type", "application/json")
                    .body(pod_json(
                        &format!("w-{node}"),
                        NS_WATCH,
                        Some(&format!("node-{node}")),
                    ));
                async move { send(request, StatusCode::CREATED).await.map(drop) }
            },
        )
        .await
    };
    anyhow::ensure!(
        created.errors == 0,
        "cannot create the watched pods: {:?}",
        created.error_messages
    );
    let pods_setup = setup.elapsed();

    // The same updates with nobody watching: what the watchers add is the difference.
    let unwatched = update_pods(target, sizes, 0).await?;
    for failure in &unwatched.failures {
        events.failure(format!("unwatched {failure}"));
    }

    // Each watcher lists its node's pods (resourceVersion=0, as a reflector's first list) and
    // watches from the list's resourceVersion.
    let setup = Instant::now();
    let received: Arc<Vec<AtomicUsize>> =
        Arc::new((0..watchers).map(|_| AtomicUsize::new(0)).collect());
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let opened: Vec<anyhow::Result<tokio::task::JoinHandle<Followed>>> =
        futures::stream::iter(0..watchers)
            .map(|node| {
                let target = Arc::clone(target);
                let received = Arc::clone(&received);
                let stopped = stopped.clone();
                async move {
                    let response = open_watch(&target, node).await?;
                    Ok(tokio::spawn(follow(response, node, received, stopped)))
                }
            })
            .buffered(WATCH_SETUP_CONCURRENCY)
            .collect()
            .await;
    let mut followers = Vec::new();
    for (node, follower) in opened.into_iter().enumerate() {
        followers.push(follower.with_context(|| format!("watcher {node}"))?);
    }
    let watch_setup = setup.elapsed();

    let updates = update_pods(target, sizes, 1).await?;
    let (acked, writing) = (updates.acked, updates.took);
    let update_latency = [unwatched.latency, updates.latency];

    // Wait for every watcher to have as many events as its node had acknowledged writes.
    let mut expected = vec![0usize; watchers];
    for ack in acked.values() {
        expected[ack.node] += 1;
    }
    let deadline = Instant::now() + DELIVERY_GRACE;
    while Instant::now() < deadline
        && !expected
            .iter()
            .zip(received.iter())
            .all(|(want, got)| got.load(Ordering::Relaxed) >= *want)
    {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let _ = stop.send(true);

    let write_errors = updates.failures.len() as u64;
    for failure in updates.failures {
        events.failure(failure);
    }
    let mut check = WatchCheck {
        watchers: watchers as u64,
        puts_acked: acked.len() as u64,
        ..WatchCheck::default()
    };
    let mut foreign = 0;
    let mut from_sent = Recorder::default();
    let mut before_ack = 0;
    for (node, follower) in followers.into_iter().enumerate() {
        let followed = follower.await.context("a watcher panicked")?;
        if let Some(error) = followed.error {
            events.failure(error);
        }
        let own = format!("w-{node}");
        let mut delivered = std::collections::HashSet::new();
        let mut last = 0;
        for seen in followed.seen {
            check.events_delivered += 1;
            if seen.revision < last {
                check.out_of_order += 1;
                events.failure("event out of resourceVersion order");
            }
            last = last.max(seen.revision);
            match acked.get(&seen.revision) {
                Some(ack) if ack.node == node && seen.name == own => {
                    if delivered.insert(seen.revision) {
                        // An event can beat its write's answer: zero, not negative.
                        events.success(seen.at.saturating_duration_since(ack.at));
                        from_sent.success(seen.at.saturating_duration_since(ack.sent));
                        before_ack += u64::from(seen.at < ack.at);
                    } else {
                        check.duplicates += 1;
                        events.failure("event delivered twice");
                    }
                }
                Some(_) => {
                    foreign += 1;
                    events.failure("event of another node's pod");
                }
                None => {
                    foreign += 1;
                    events.failure("event of no acknowledged write");
                }
            }
        }
        let missing = (expected[node] - delivered.len()) as u64;
        check.missing += missing;
        for _ in 0..missing {
            events.failure("event never delivered");
        }
    }
    Ok(WatchRun {
        events: events.report("watch", writing),
        from_sent: from_sent.report("watch-from-sent", writing),
        before_ack,
        check,
        foreign,
        write_errors,
        pods_setup,
        watch_setup,
        writing,
        cpu_watched: updates.cpu,
        cpu_unwatched: unwatched.cpu,
        update_latency,
    })
}

/// What a round of updates did.
pub(crate) struct Updates {
    /// Acknowledged updates by the revision they answered.
    pub(crate) acked: HashMap<i64, Ack>,
    pub(crate) failures: Vec<String>,
    /// From each update's sending to its answer.
    pub(crate) latency: Report,
    /// From the first update to the last answer.
    pub(crate) took: Duration,
    /// CPU seconds the process spent meanwhile.
    pub(crate) cpu: f64,
}

/// `--watch-writes` merge patches of the watched pods (update `k` to node `k % watchers`'s,
/// through API server `k % 3`), open loop at `--watch-rate`: each is sent at its time
/// whatever the others are doing. `round` makes every round's annotation new, so no patch is
/// a no-op.
pub(crate) async fn update_pods(
    target: &Arc<Target>,
    sizes: &Sizes,
    round: u64,
) -> anyhow::Result<Updates> {
    let acked: Arc<Mutex<HashMap<i64, Ack>>> = Arc::default();
    let failures: Arc<Mutex<Vec<String>>> = Arc::default();
    let cpu = cpu_seconds();
    let started = Instant::now();
    let mut writes = Vec::new();
    for k in 0..sizes.watch_writes {
        let at = started + Duration::from_secs_f64(k as f64 / sizes.watch_rate as f64);
        tokio::time::sleep_until(at.into()).await;
        let node = (k % sizes.watchers as u64) as usize;
        let request = target
            .http
            .patch(format!(
                "{}/api/v1/namespaces/{NS_WATCH}/pods/w-{node}",
                target.apiserver(k as usize)
            ))
            .header("content-type", "application/merge-patch+json")
            .body(format!(
                r#"{{"metadata":{{"annotations":{{"bench.keel.dev/write":"{round}-{k}"}}}}}}"#
            ));
        let (acked, failures) = (Arc::clone(&acked), Arc::clone(&failures));
        writes.push(tokio::spawn(async move {
            let sent = Instant::now();
            let outcome = send(request, StatusCode::OK).await.and_then(|body| {
                let object: ObjectHead =
                    serde_json::from_slice(&body).map_err(|e| e.to_string())?;
                object
                    .metadata
                    .resource_version
                    .parse::<i64>()
                    .map_err(|_| "an update answered no resourceVersion".to_owned())
            });
            let at = Instant::now();
            match outcome {
                Ok(revision) => {
                    lock(&acked).insert(revision, Ack { node, sent, at });
                }
                Err(e) => lock(&failures).push(format!("update: {e}")),
            }
        }));
    }
    for write in writes {
        write.await.context("a writer panicked")?;
    }
    let took = started.elapsed();
    let cpu = cpu_seconds() - cpu;
    let acked = std::mem::take(&mut *lock(&acked));
    let failures = std::mem::take(&mut *lock(&failures));
    let mut latency = Recorder::default();
    for ack in acked.values() {
        latency.success(ack.at - ack.sent);
    }
    Ok(Updates {
        acked,
        failures,
        latency: latency.report("update", took),
        took,
        cpu,
    })
}

pub(crate) fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|e| e.into_inner())
}

/// Lists node `node`'s pods from API server `node % 3` and opens a watch from the list.
pub(crate) async fn open_watch(target: &Target, node: usize) -> anyhow::Result<reqwest::Response> {
    let server = target.apiserver(node);
    let selector = format!("spec.nodeName=node-{node}");
    let listed = send(
        target.http.get(format!("{server}/api/v1/pods")).query(&[
            ("fieldSelector", selector.as_str()),
            ("resourceVersion", "0"),
        ]),
        StatusCode::OK,
    )
    .await
    .map_err(|e| anyhow::anyhow!("list: {e}"))?;
    let list: ListBody = serde_json::from_slice(&listed)?;
    // Its one pod in the list means the list is past the pod's create: no replayed ADDED.
    anyhow::ensure!(
        list.items.len() == 1,
        "node-{node} lists {} pods, not 1",
        list.items.len()
    );
    let response = target
        .streaming
        .get(format!("{server}/api/v1/pods"))
        .query(&[
            ("watch", "true"),
            ("fieldSelector", selector.as_str()),
            ("resourceVersion", list.metadata.resource_version.as_str()),
            ("allowWatchBookmarks", "true"),
        ])
        .send()
        .await
        .map_err(|e| anyhow::anyhow!("watch: {}", e.without_url()))?;
    anyhow::ensure!(
        response.status() == StatusCode::OK,
        "watch: HTTP {}",
        response.status()
    );
    Ok(response)
}

/// Reads a watch's lines until told to stop, noting when each event arrived.
pub(crate) async fn follow(
    mut response: reqwest::Response,
    node: usize,
    received: Arc<Vec<AtomicUsize>>,
    mut stop: tokio::sync::watch::Receiver<bool>,
) -> Followed {
    let mut followed = Followed {
        seen: Vec::new(),
        error: None,
    };
    let mut buffer = Vec::new();
    loop {
        let chunk = tokio::select! {
            chunk = response.chunk() => chunk,
            _ = stop.changed() => return followed,
        };
        let at = Instant::now();
        match chunk {
            Ok(Some(bytes)) => buffer.extend_from_slice(&bytes),
            Ok(None) => {
                followed.error = Some("watch ended early".into());
                return followed;
            }
            Err(e) => {
                followed.error = Some(format!("watch broke: {}", e.without_url()));
                return followed;
            }
        }
        while let Some(newline) = buffer.iter().position(|b| *b == b'\n') {
            let line: Vec<u8> = buffer.drain(..=newline).collect();
            let event = match serde_json::from_slice::<WatchLine>(&line) {
                Ok(event) => event,
                Err(e) => {
                    followed.error = Some(format!("unreadable watch event: {e}"));
                    return followed;
                }
            };
            match event.kind.as_str() {
                "BOOKMARK" => {}
                "ERROR" => {
                    followed.error = Some(format!("watch error: {}", event.object.message));
                    return followed;
                }
                _ => {
                    followed.seen.push(Seen {
                        revision: event.object.metadata.resource_version.parse().unwrap_or(0),
                        name: event.object.metadata.name,
                        at,
                    });
                    received[node].fetch_add(1, Ordering::Relaxed);
                }
            }
        }
    }
}

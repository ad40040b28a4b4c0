//! The list run: many pods listed from the watch cache, from the store, and paged.

use super::*;

/// A way to list: its label, its query, and whether it follows continue tokens.
pub(crate) struct ListKind {
    pub(crate) label: &'static str,
    pub(crate) query: Vec<(&'static str, String)>,
    pub(crate) paged: bool,
}

/// One kind of list, run a few times.
pub(crate) struct ListRow {
    pub(crate) label: String,
    /// Each run's time to the last byte.
    pub(crate) times: Vec<Duration>,
    /// Each run's time to the first byte (of every page).
    pub(crate) first_bytes: Vec<Duration>,
    pub(crate) items: usize,
    pub(crate) bytes: usize,
    pub(crate) pages: usize,
    /// VmRSS after its first run, in KiB.
    pub(crate) rss_after: u64,
    pub(crate) error: Option<String>,
}

/// What the list run measured.
pub(crate) struct ListRun {
    pub(crate) pods: u64,
    pub(crate) fill: Report,
    /// A stored pod's JSON size and its size as a `serde_json::Value`, in bytes.
    pub(crate) footprint: Option<(usize, f64)>,
    /// VmRSS before the fill and after it (before the lists), in KiB.
    pub(crate) rss_before_fill: u64,
    pub(crate) rss_before: u64,
    pub(crate) rss_after: u64,
    /// VmHWM at the end: the peak during the lists when `peak_reset`, else over the run.
    pub(crate) rss_peak: u64,
    pub(crate) peak_reset: bool,
    pub(crate) rows: Vec<ListRow>,
}

pub(crate) async fn list_run(target: &Arc<Target>, sizes: &Sizes) -> anyhow::Result<ListRun> {
    // The creates made pods 0..ops; the fill makes the rest.
    let rss_before_fill = proc_status_kib("VmRSS");
    let fill = pod_creates(
        target,
        sizes.clients,
        sizes.ops,
        sizes.pods.saturating_sub(sizes.ops),
        NS_PODS,
    )
    .await;
    let pods = sizes.pods.max(sizes.ops);
    let rss_before = proc_status_kib("VmRSS");
    let url = format!("{}/api/v1/namespaces/{NS_PODS}/pods", target.apiserver(0));
    let kinds = [
        ListKind {
            label: "resourceVersion=0 (watch cache)",
            query: vec![("resourceVersion", "0".into())],
            paged: false,
        },
        ListKind {
            label: "no resourceVersion (store, linearizable)",
            query: Vec::new(),
            paged: false,
        },
        ListKind {
            label: "limit=500, every page (store)",
            query: vec![("limit", PAGE_LIMIT.to_string())],
            paged: true,
        },
    ];
    let mut rows: Vec<ListRow> = kinds
        .iter()
        .map(|kind| ListRow {
            label: kind.label.into(),
            times: Vec::new(),
            first_bytes: Vec::new(),
            items: 0,
            bytes: 0,
            pages: 0,
            rss_after: 0,
            error: None,
        })
        .collect();
    // A list at resourceVersion=0 may be a moment behind the last create (any recent state is
    // what it promises): wait, with a deadline, until this member's watch cache holds them all.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let listed = list_all(&target.http, &url, &kinds[0].query, false).await;
        if listed.as_ref().is_ok_and(|l| l.items as u64 == pods) || Instant::now() > deadline {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    // Peak RSS from here on only (Linux: 5 in clear_refs resets VmHWM to the current RSS).
    let peak_reset = std::fs::write("/proc/self/clear_refs", "5").is_ok();
    // Round-robin, so no kind always runs first (on a cold allocator) or last.
    for round in 0..sizes.list_repeats {
        for (kind, row) in kinds.iter().zip(&mut rows) {
            match list_all(&target.http, &url, &kind.query, kind.paged).await {
                Ok(listed) => {
                    row.times.push(listed.took);
                    row.first_bytes.push(listed.first_byte);
                    (row.items, row.bytes, row.pages) = (listed.items, listed.bytes, listed.pages);
                    if listed.items as u64 != pods && row.error.is_none() {
                        row.error = Some(format!("listed {} pods, not {pods}", listed.items));
                    }
                }
                Err(e) => row.error = Some(e),
            }
            if round == 0 {
                row.rss_after = proc_status_kib("VmRSS");
            }
        }
    }
    let (rss_after, rss_peak) = (proc_status_kib("VmRSS"), proc_status_kib("VmHWM"));
    // Last: its copies would count in the RSS above.
    let footprint = value_footprint(target).await;
    Ok(ListRun {
        pods,
        footprint,
        rss_before_fill,
        fill,
        rss_before,
        rss_after,
        rss_peak,
        peak_reset,
        rows,
    })
}

/// How big a pod is as the JSON keel stores and as the `serde_json::Value` keel-apiserver's
/// watch cache holds for every object: `VALUE_COPIES` parsed copies of one pod as served,
/// measured by the RSS they add.
pub(crate) async fn value_footprint(target: &Target) -> Option<(usize, f64)> {
    const VALUE_COPIES: usize = 5000;
    let url = format!(
        "{}/api/v1/namespaces/{NS_PODS}/pods/pod-0",
        target.apiserver(0)
    );
    let json = send(target.http.get(url), StatusCode::OK).await.ok()?;
    let before = proc_status_kib("VmRSS");
    let copies: Vec<serde_json::Value> = (0..VALUE_COPIES)
        .map(|_| serde_json::from_slice(&json))
        .collect::<Result<_, _>>()
        .ok()?;
    let grown = proc_status_kib("VmRSS").saturating_sub(before);
    drop(copies);
    Some((json.len(), grown as f64 * 1024.0 / VALUE_COPIES as f64))
}

/// What one list (all its pages) took and brought.
pub(crate) struct Listed {
    /// Waiting for the answers, to their last byte.
    pub(crate) took: Duration,
    /// Waiting for the answers' first bytes: the server's work.
    pub(crate) first_byte: Duration,
    pub(crate) items: usize,
    pub(crate) bytes: usize,
    pub(crate) pages: usize,
}

/// Lists `url`, every page when `paged`.
pub(crate) async fn list_all(
    http: &reqwest::Client,
    url: &str,
    query: &[(&str, String)],
    paged: bool,
) -> Result<Listed, String> {
    let (mut took, mut first_byte) = (Duration::ZERO, Duration::ZERO);
    let (mut items, mut bytes, mut pages) = (0, 0, 0);
    let mut token: Option<String> = None;
    loop {
        let mut request = http.get(url).query(query);
        if let Some(token) = &token {
            request = request.query(&[("continue", token)]);
        }
        // The clock runs to each page's last byte: decoding it is the client's work. The
        // server builds a whole page before its first byte, so that one says what it costs.
        let sent = Instant::now();
        let response = request
            .send()
            .await
            .map_err(|e| format!("list: {}", e.without_url()))?;
        first_byte += sent.elapsed();
        let status = response.status();
        let body = response
            .bytes()
            .await
            .map_err(|e| format!("list: {}", e.without_url()))?;
        took += sent.elapsed();
        if status != StatusCode::OK {
            return Err(format!("list: HTTP {}", status.as_u16()));
        }
        let list: ListBody = serde_json::from_slice(&body).map_err(|e| e.to_string())?;
        items += list.items.len();
        bytes += body.len();
        pages += 1;
        token = list.metadata.continue_token.filter(|t| !t.is_empty());
        if !paged || token.is_none() {
            return Ok(Listed {
                took,
                first_byte,
                items,
                bytes,
                pages,
            });
        }
    }
}

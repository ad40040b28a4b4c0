//! A three-member keel cluster in-process, and a watch client following a prefix on one
//! member while writes go to another.
//!
//! How to run: `cargo run --example cluster_watch`
//!
//! It starts the cluster on free ports of 127.0.0.1 (the same code `keel dev` runs), opens a
//! watch on `/config/` through the first member's etcd v3 JSON API, writes three keys through
//! the last member (a follower forwards to the leader), prints each event as it arrives, then
//! stops the cluster.

use std::time::Duration;

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use futures::StreamExt;
use keel::cli::dev::DevCluster;
use serde_json::{json, Value};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cluster = DevCluster::start_on_free_ports(3).await?;
    println!("cluster up: {}", cluster.endpoints());
    let first = format!("http://{}", cluster.members[0].client_addr);
    let last = format!("http://{}", cluster.members[2].client_addr);
    let http = reqwest::Client::new();

    // The watch request body stays open for the life of the watch, as etcd's gateway expects;
    // the prefix /config/ is the range [/config/, /config0).
    let (requests, body) = tokio::sync::mpsc::unbounded_channel::<Result<String, std::io::Error>>();
    let create = json!({"create_request": {"key": STANDARD.encode("/config/"),
                                           "range_end": STANDARD.encode("/config0")}});
    requests.send(Ok(create.to_string()))?;
    let body =
        reqwest::Body::wrap_stream(tokio_stream::wrappers::UnboundedReceiverStream::new(body));
    let watch = http
        .post(format!("{first}/v3/watch"))
        .body(body)
        .send()
        .await?;
    let mut lines = watch.bytes_stream();
    let created = lines.next().await.transpose()?;
    println!(
        "watch: {}",
        String::from_utf8_lossy(&created.unwrap_or_default()).trim()
    );

    for (key, value) in [("/config/a", "1"), ("/config/b", "2"), ("/config/a", "3")] {
        let put = json!({"key": STANDARD.encode(key), "value": STANDARD.encode(value)});
        http.post(format!("{last}/v3/kv/put"))
            .body(put.to_string())
            .send()
            .await?
            .error_for_status()?;
    }

    let mut seen = 0;
    while seen < 3 {
        let Ok(Some(line)) = tokio::time::timeout(Duration::from_secs(10), lines.next()).await
        else {
            anyhow::bail!("the watch stopped before three events arrived");
        };
        let line: Value = serde_json::from_slice(&line?)?;
        for event in line["result"]["events"].as_array().into_iter().flatten() {
            let kv = &event["kv"];
            let decode = |v: &Value| {
                String::from_utf8_lossy(
                    &STANDARD
                        .decode(v.as_str().unwrap_or(""))
                        .unwrap_or_default(),
                )
                .into_owned()
            };
            println!(
                "event: {} {} = {} (mod_revision {})",
                event["type"].as_str().unwrap_or("PUT"),
                decode(&kv["key"]),
                decode(&kv["value"]),
                kv["mod_revision"].as_str().unwrap_or("?")
            );
            seen += 1;
        }
    }
    drop(requests);
    cluster.stop().await
}

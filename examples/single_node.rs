//! A single-member keel server in-process, used through its etcd v3 JSON API.
//!
//! How to run: `cargo run --example single_node`
//!
//! It binds a free port on 127.0.0.1, writes a key, reads it back, watches it change, then
//! shuts the server down gracefully. The same requests work against `keel serve --single`
//! (or etcd 3.4) with curl, e.g.
//! `curl -X POST http://127.0.0.1:2379/v3/kv/range -d '{"key":"Zm9v"}'`.

use std::sync::Arc;

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use futures::StreamExt;
use serde_json::{json, Value};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let url = format!("http://{}", listener.local_addr()?);
    let replica = Arc::new(keel::replica::LocalReplica::temporary()?);
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(async move {
        let config = keel::config::Config::default();
        keel::server::run(&config, listener, replica, async {
            let _ = stopped.await;
        })
        .await
    });
    println!("serving on {url}");

    let client = reqwest::Client::new();
    let call = |path: &str, body: Value| {
        let request = client.post(format!("{url}{path}")).body(body.to_string());
        async move { request.send().await?.json::<Value>().await }
    };
    let key = STANDARD.encode("greeting");
    let put = call(
        "/v3/kv/put",
        json!({"key": key, "value": STANDARD.encode("hello")}),
    )
    .await?;
    println!("put   -> {put}");
    let range = call("/v3/kv/range", json!({"key": key})).await?;
    println!("range -> {range}");

    // A watch from the put's revision: replays it, then the next write arrives live.
    let revision = put["header"]["revision"].clone();
    let watch = client
        .post(format!("{url}/v3/watch"))
        .body(json!({"create_request": {"key": key, "start_revision": revision}}).to_string())
        .send()
        .await?;
    let mut lines = watch.bytes_stream();
    call(
        "/v3/kv/put",
        json!({"key": key, "value": STANDARD.encode("again")}),
    )
    .await?;
    for _ in 0..3 {
        match lines.next().await {
            Some(line) => println!("watch -> {}", String::from_utf8_lossy(&line?).trim()),
            None => break,
        }
    }

    let _ = stop.send(());
    server.await??;
    println!("stopped");
    Ok(())
}

//! Plain HTTP endpoints outside the gRPC services: `/health` (etcd's JSON), `/readyz` and
//! `/livez` (plain-text probes as etcd 3.5 has them), `/version`, `/metrics`.

use std::time::Duration;

use warp::filters::BoxedFilter;
use warp::http::StatusCode;
use warp::{Filter, Reply};

use super::models::{Health, Version};
use super::{exact_path, server_version, Shared, CLUSTER_VERSION};

/// How long a probe waits for the read barrier before calling the member unhealthy.
const PROBE_TIMEOUT: Duration = Duration::from_secs(1);

/// `GET /health`, `/readyz`, `/livez`, `/version`, `/metrics`.
pub fn routes(api: &Shared) -> BoxedFilter<(warp::reply::Response,)> {
    let with_api = {
        let api = api.clone();
        warp::any().map(move || api.clone())
    };
    let health = exact_path("health")
        .and(warp::get())
        .and(with_api.clone())
        .then(health);
    let readyz = exact_path("readyz")
        .and(warp::get())
        .and(with_api.clone())
        .then(readyz);
    let livez = exact_path("livez")
        .and(warp::get())
        .map(|| warp::reply::with_status("ok", StatusCode::OK).into_response());
    let version = exact_path("version").and(warp::get()).map(|| {
        warp::reply::json(&Version {
            etcdserver: server_version(),
            etcdcluster: CLUSTER_VERSION.into(),
            keel: super::KEEL_VERSION.into(),
        })
        .into_response()
    });
    let metrics = exact_path("metrics")
        .and(warp::get())
        .and(with_api)
        .map(metrics);
    health
        .or(readyz)
        .unify()
        .or(livez)
        .unify()
        .or(version)
        .unify()
        .or(metrics)
        .unify()
        .boxed()
}

/// Whether the member can serve a linearizable read now; the reason if not.
async fn check(api: &Shared) -> Result<(), String> {
    if api.replica.status().leader.is_none() {
        return Err("etcdserver: no leader".into());
    }
    match tokio::time::timeout(PROBE_TIMEOUT, api.replica.read_barrier()).await {
        Ok(Ok(())) => Ok(()),
        Ok(Err(e)) => Err(e.to_string()),
        Err(_) => Err("etcdserver: request timed out".into()),
    }
}

/// etcd's `/health`: `{"health":"true"}`, or 503 with `"false"` and a reason.
async fn health(api: Shared) -> warp::reply::Response {
    let (status, body) = match check(&api).await {
        Ok(()) => (
            StatusCode::OK,
            Health {
                health: "true".into(),
                reason: None,
            },
        ),
        Err(reason) => (
            StatusCode::SERVICE_UNAVAILABLE,
            Health {
                health: "false".into(),
                reason: Some(reason),
            },
        ),
    };
    warp::reply::with_status(warp::reply::json(&body), status).into_response()
}

/// `ok`, or 503 with the reason.
async fn readyz(api: Shared) -> warp::reply::Response {
    match check(&api).await {
        Ok(()) => warp::reply::with_status("ok".to_owned(), StatusCode::OK).into_response(),
        Err(reason) => warp::reply::with_status(
            format!("not ready: {reason}"),
            StatusCode::SERVICE_UNAVAILABLE,
        )
        .into_response(),
    }
}

fn metrics(api: Shared) -> warp::reply::Response {
    let db_size = api.replica.store().size_on_disk().unwrap_or(0);
    let text = api
        .metrics
        .render(&api.replica.status(), api.lessor.len(), db_size);
    warp::reply::with_header(
        text,
        "content-type",
        "application/openmetrics-text; version=1.0.0; charset=utf-8",
    )
    .into_response()
}

//! The `keel` binary: parses flags and hands over to [`keel::cli`].

use clap::Parser;

#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                // rustls warns about every client that sends an IP address as SNI (Node's TLS
                // does), which is the client's quirk, not the server's problem.
                .unwrap_or_else(|_| {
                    tracing_subscriber::EnvFilter::new("info,openraft=error,rustls=error")
                }),
        )
        .init();
    keel::cli::Cli::parse().execute().await
}

//! The `keel` binary: parses flags and hands over to [`keel::cli`].

use clap::Parser;

#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

fn main() -> anyhow::Result<()> {
    // The host runtime's shim (`keel runtime-shim MODE …`, see keel_runtime::host) joins and
    // makes namespaces, which a process may only do while it has one thread: it runs before
    // the Tokio runtime exists, and never returns.
    let args: Vec<String> = std::env::args().collect();
    if args.get(1).map(String::as_str) == Some("runtime-shim") {
        keel_runtime::host::shim::main(&args[2..]);
    }
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?
        .block_on(run())
}

async fn run() -> anyhow::Result<()> {
    // A benchmark's report is its stdout (`-w json` is piped into tools); `keel bench
    // density` runs a whole control plane in the process, whose logs go to stderr.
    let bench = std::env::args().nth(1).as_deref() == Some("bench");
    tracing_subscriber::fmt()
        .with_writer(move || -> Box<dyn std::io::Write> {
            if bench {
                Box::new(std::io::stderr())
            } else {
                Box::new(std::io::stdout())
            }
        })
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                // rustls warns, from its handshake parser, about every client that sends an
                // IP address as SNI (Node's TLS does): the client's quirk, not the server's
                // problem. Only that target is quieted (RUST_LOG=debug shows it); rustls'
                // other warnings stay.
                .unwrap_or_else(|_| {
                    tracing_subscriber::EnvFilter::new(
                        "info,openraft=error,rustls::msgs::handshake=error",
                    )
                }),
        )
        .init();
    keel::cli::Cli::parse().execute().await
}

//! The `keelctl` binary: parses flags and hands over to [`keel::cli::ctl`]. Any failure is
//! one `Error: …` line on stderr and exit status 1, as etcdctl does.

#[tokio::main]
async fn main() {
    let ctl = keel::cli::ctl::Ctl::parse_with_env();
    if let Err(error) = ctl.execute().await {
        eprintln!("Error: {error:#}");
        std::process::exit(1);
    }
}

//! The node proxy's cost: connections per second and request latency to a backend directly
//! and through a proxy frontend (`keel_agent::proxy::tcp`, the code every ClusterIP and
//! NodePort connection goes through), side by side: the two are measured in alternating
//! rounds in one run, so a noisy machine skews both alike. Loopback only (127.0.0.1), no
//! root needed: the backend is an in-process echo server, so what differs is the proxy alone.
//!
//! - connections/s: connect, send one byte, read it back, close — one after another;
//! - latency: one byte back and forth on an open connection, p50 and p99.
//!
//! How to run: `CARGO_TARGET_DIR=/work/target-release cargo bench -p keel-agent --bench service_proxy`
//! (`-- --rounds 10 --connections 500 --pings 2000` to change the sizes).

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use keel_agent::proxy::balancer::Balancer;
use keel_agent::proxy::tcp;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::{TcpListener, TcpStream};

struct Sizes {
    rounds: usize,
    connections: usize,
    pings: usize,
}

fn sizes() -> Sizes {
    let mut sizes = Sizes {
        rounds: 6,
        connections: 500,
        pings: 2000,
    };
    let args: Vec<String> = std::env::args().collect();
    for pair in args.windows(2) {
        let value = || pair[1].parse().expect("a number");
        match pair[0].as_str() {
            "--rounds" => sizes.rounds = value(),
            "--connections" => sizes.connections = value(),
            "--pings" => sizes.pings = value(),
            _ => {}
        }
    }
    sizes
}

/// An echo server: every byte read is written back.
async fn echo_server() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    tokio::spawn(async move {
        loop {
            let (mut stream, _) = listener.accept().await.unwrap();
            tokio::spawn(async move {
                let _ = stream.set_nodelay(true);
                let mut buffer = [0u8; 512];
                loop {
                    match stream.read(&mut buffer).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => {
                            if stream.write_all(&buffer[..n]).await.is_err() {
                                return;
                            }
                        }
                    }
                }
            });
        }
    });
    address
}

/// `count` connections one after another; their rate per second.
async fn connections_per_second(target: SocketAddr, count: usize) -> f64 {
    let start = Instant::now();
    for _ in 0..count {
        let mut stream = TcpStream::connect(target).await.unwrap();
        stream.set_nodelay(true).unwrap();
        stream.write_all(b"x").await.unwrap();
        let mut byte = [0u8; 1];
        stream.read_exact(&mut byte).await.unwrap();
    }
    count as f64 / start.elapsed().as_secs_f64()
}

/// `count` one-byte round trips on one connection; each one's duration.
async fn round_trips(target: SocketAddr, count: usize) -> Vec<Duration> {
    let mut stream = TcpStream::connect(target).await.unwrap();
    stream.set_nodelay(true).unwrap();
    let mut byte = [0u8; 1];
    let mut times = Vec::with_capacity(count);
    for _ in 0..count {
        let start = Instant::now();
        stream.write_all(b"x").await.unwrap();
        stream.read_exact(&mut byte).await.unwrap();
        times.push(start.elapsed());
    }
    times
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

#[derive(Default)]
struct Tally {
    rates: Vec<f64>,
    times: Vec<Duration>,
}

impl Tally {
    fn report(&mut self, name: &str) -> (f64, Duration) {
        self.times.sort();
        let rate = self.rates.iter().sum::<f64>() / self.rates.len() as f64;
        let p50 = percentile(&self.times, 0.5);
        println!(
            "{name:>8}: {rate:8.0} connections/s   round trip p50 {:6.1} µs  p99 {:6.1} µs",
            p50.as_secs_f64() * 1e6,
            percentile(&self.times, 0.99).as_secs_f64() * 1e6
        );
        (rate, p50)
    }
}

fn main() {
    let sizes = sizes();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let backend = echo_server().await;
        let listener = tcp::bind("127.0.0.1:0".parse().unwrap()).unwrap();
        let frontend = listener.local_addr().unwrap();
        let balancer = Arc::new(Balancer::new(vec![backend], None));
        tokio::spawn(tcp::serve("bench/echo".into(), listener, balancer));
        // Warm both paths up (page faults, the first task spawns).
        connections_per_second(backend, 50).await;
        connections_per_second(frontend, 50).await;
        let (mut direct, mut proxied) = (Tally::default(), Tally::default());
        for round in 0..sizes.rounds {
            // Alternate which goes first, so neither always runs on a warmer machine.
            let order = if round % 2 == 0 {
                [(backend, &mut direct), (frontend, &mut proxied)]
            } else {
                [(frontend, &mut proxied), (backend, &mut direct)]
            };
            for (target, tally) in order {
                tally
                    .rates
                    .push(connections_per_second(target, sizes.connections).await);
                tally.times.extend(round_trips(target, sizes.pings).await);
            }
        }
        println!(
            "{} rounds of {} connections and {} round trips each, alternating:",
            sizes.rounds, sizes.connections, sizes.pings
        );
        let (direct_rate, direct_p50) = direct.report("direct");
        let (proxied_rate, proxied_p50) = proxied.report("proxied");
        println!(
            "proxied/direct: {:.2}x the connections/s, +{:.1} µs round trip (p50)",
            proxied_rate / direct_rate,
            (proxied_p50.as_secs_f64() - direct_p50.as_secs_f64()) * 1e6
        );
    });
}

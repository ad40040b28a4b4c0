//! The node proxy's cost: connections per second and request latency to a backend directly
//! and through a proxy frontend (`keel_agent::proxy::tcp`, the code every ClusterIP and
//! NodePort connection goes through), side by side: the two are measured in alternating
//! rounds in one run, so a noisy machine skews both alike. Loopback only (127.0.0.1), no
//! root needed: the backend is an in-process echo server, so what differs is the proxy alone.
//!
//! - connections/s: connect, send one byte, read it back, close — one after another;
//! - latency: one byte back and forth on an open connection, p50 and p99;
//! - DNS over UDP (`keel_agent::proxy::udp`, how pods reach the cluster DNS ClusterIP): a
//!   query-sized datagram (40 bytes) answered with a reply-sized one (100 bytes) by an
//!   in-process responder, p50 and p99, from one socket (the proxy's session reused) and from
//!   a fresh socket per query (a new session each time, as a resolver that opens a socket per
//!   lookup gives). The responder does no DNS work, so the difference is the relay's alone.
//!
//! How to run: `CARGO_TARGET_DIR=/work/target-release cargo bench -p keel-agent --bench service_proxy`
//! (`-- --rounds 10 --connections 500 --pings 2000 --queries 2000` to change the sizes).

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use keel_agent::proxy::balancer::Balancer;
use keel_agent::proxy::tcp;
use keel_agent::proxy::udp;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::{TcpListener, TcpStream, UdpSocket};

struct Sizes {
    rounds: usize,
    connections: usize,
    pings: usize,
    queries: usize,
}

fn sizes() -> Sizes {
    let mut sizes = Sizes {
        rounds: 6,
        connections: 500,
        pings: 2000,
        queries: 2000,
    };
    let args: Vec<String> = std::env::args().collect();
    for pair in args.windows(2) {
        let value = || pair[1].parse().expect("a number");
        match pair[0].as_str() {
            "--rounds" => sizes.rounds = value(),
            "--connections" => sizes.connections = value(),
            "--pings" => sizes.pings = value(),
            "--queries" => sizes.queries = value(),
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

/// A UDP responder answering every datagram with 100 bytes (a DNS reply's size).
async fn udp_responder() -> SocketAddr {
    let socket = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let address = socket.local_addr().unwrap();
    tokio::spawn(async move {
        let mut buffer = [0u8; 512];
        let reply = [7u8; 100];
        while let Ok((_, from)) = socket.recv_from(&mut buffer).await {
            let _ = socket.send_to(&reply, from).await;
        }
    });
    address
}

/// `count` 40-byte queries to `target`, each waiting for its answer: each one's duration.
/// `fresh`: each from a new socket (a new proxy session each time).
async fn udp_queries(target: SocketAddr, count: usize, fresh: bool) -> Vec<Duration> {
    let query = [1u8; 40];
    let mut buffer = [0u8; 512];
    let mut times = Vec::with_capacity(count);
    let mut socket = None;
    for _ in 0..count {
        let start = Instant::now();
        if fresh || socket.is_none() {
            let new = UdpSocket::bind("127.0.0.1:0").await.unwrap();
            new.connect(target).await.unwrap();
            socket = Some(new);
        }
        let socket = socket.as_ref().unwrap();
        socket.send(&query).await.unwrap();
        socket.recv(&mut buffer).await.unwrap();
        times.push(start.elapsed());
    }
    times
}

fn report_times(name: &str, times: &mut [Duration]) -> Duration {
    times.sort();
    let p50 = percentile(times, 0.5);
    println!(
        "{name:>22}: p50 {:6.1} µs  p99 {:6.1} µs",
        p50.as_secs_f64() * 1e6,
        percentile(times, 0.99).as_secs_f64() * 1e6
    );
    p50
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

        // DNS-sized UDP queries, direct and through a UDP frontend, alternating likewise.
        let responder = udp_responder().await;
        let socket = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let udp_frontend = socket.local_addr().unwrap();
        let balancer = Arc::new(Balancer::new(vec![responder], None));
        tokio::spawn(udp::serve("bench/dns".into(), socket, balancer));
        udp_queries(responder, 50, true).await;
        udp_queries(udp_frontend, 50, true).await;
        // [direct, proxied] × [one socket, a socket per query]
        let mut times: [[Vec<Duration>; 2]; 2] = Default::default();
        for round in 0..sizes.rounds {
            let targets = if round % 2 == 0 {
                [(0, responder), (1, udp_frontend)]
            } else {
                [(1, udp_frontend), (0, responder)]
            };
            for (path, target) in targets {
                for (mode, fresh) in [(0, false), (1, true)] {
                    times[path][mode].extend(udp_queries(target, sizes.queries, fresh).await);
                }
            }
        }
        println!(
            "{} rounds of {} UDP queries per path and mode, alternating:",
            sizes.rounds, sizes.queries
        );
        let [mut direct, mut proxied] = times;
        for (mode, name) in [(0, "one socket"), (1, "a socket per query")] {
            let d = report_times(&format!("direct, {name}"), &mut direct[mode]);
            let p = report_times(&format!("proxied, {name}"), &mut proxied[mode]);
            println!(
                "  proxied/direct ({name}): {:.2}x, +{:.1} µs per query (p50)",
                p.as_secs_f64() / d.as_secs_f64(),
                (p.as_secs_f64() - d.as_secs_f64()) * 1e6
            );
        }
    });
}

//! Which backend a new connection goes to: round robin over the ready endpoints (as kube-proxy's
//! userspace mode did, so load spreads evenly even over a handful of connections), or the
//! client's previous backend while its `sessionAffinity: ClientIP` stickiness lasts.
//!
//! The listeners hold a [`Balancer`] each; the reconciler swaps its backends in place when the
//! EndpointSlices change, so a new connection never waits for a rebind and an endpoint that
//! turned unready gets no new connection from the moment the update is seen. It also publishes
//! which endpoints are still listed at all ([`Balancer::listed`]): a connection joined to one
//! that left ends then (its pod is gone; nothing would ever answer on it).

use std::collections::{BTreeSet, HashMap};
use std::net::{IpAddr, SocketAddr};
use std::sync::Mutex;
use std::time::Duration;

use tokio::sync::watch;
use tokio::time::Instant;

/// A service port's backends and its clients' stickiness.
#[derive(Debug)]
pub struct Balancer {
    state: Mutex<State>,
    /// Every endpoint listed for the port (ready or not): connections watch it.
    listed: watch::Sender<BTreeSet<SocketAddr>>,
}

impl Default for Balancer {
    fn default() -> Self {
        Balancer {
            state: Mutex::default(),
            listed: watch::Sender::new(BTreeSet::new()),
        }
    }
}

#[derive(Debug, Default)]
struct State {
    backends: Vec<SocketAddr>,
    next: usize,
    affinity: Option<Duration>,
    /// Client address → its backend and when it last used it.
    sticky: HashMap<IpAddr, (SocketAddr, Instant)>,
}

impl Balancer {
    /// A balancer over `backends`, with only them listed.
    pub fn new(backends: Vec<SocketAddr>, affinity: Option<Duration>) -> Balancer {
        let balancer = Balancer::default();
        balancer.set_listed(backends.iter().copied());
        balancer.update(backends, affinity);
        balancer
    }

    /// Replaces the endpoints listed for the port; connections to one no longer listed end.
    pub fn set_listed(&self, listed: impl IntoIterator<Item = SocketAddr>) {
        let listed: BTreeSet<SocketAddr> = listed.into_iter().collect();
        self.listed.send_if_modified(|current| {
            let changed = *current != listed;
            *current = listed;
            changed
        });
    }

    /// Resolves once `backend` is no longer listed (never, while it is).
    pub async fn left(&self, backend: SocketAddr) {
        let mut listed = self.listed.subscribe();
        // The sender lives in `self`: waiting cannot fail while `self` is borrowed.
        let _ = listed.wait_for(|set| !set.contains(&backend)).await;
    }

    /// Whether `backend` is among the backends new connections go to.
    pub fn contains(&self, backend: SocketAddr) -> bool {
        self.state
            .lock()
            .expect("not poisoned")
            .backends
            .contains(&backend)
    }

    /// Replaces the backends; clients stuck to a backend that left are forgotten (their next
    /// connection is balanced again).
    pub fn update(&self, backends: Vec<SocketAddr>, affinity: Option<Duration>) {
        let mut state = self.state.lock().expect("not poisoned");
        if affinity.is_none() {
            state.sticky.clear();
        } else {
            state
                .sticky
                .retain(|_, (backend, _)| backends.contains(backend));
        }
        state.backends = backends;
        state.affinity = affinity;
    }

    /// Whether there is any backend at all.
    pub fn is_empty(&self) -> bool {
        self.state.lock().expect("not poisoned").backends.is_empty()
    }

    /// How many backends there are.
    pub fn len(&self) -> usize {
        self.state.lock().expect("not poisoned").backends.len()
    }

    /// The backend for a new connection from `client`, or `None` when there is none.
    /// `avoid` lists backends that just refused this connection (the caller retries the
    /// next one, as kube-proxy's userspace mode did).
    pub fn pick(&self, client: IpAddr, avoid: &[SocketAddr]) -> Option<SocketAddr> {
        let now = Instant::now();
        let mut state = self.state.lock().expect("not poisoned");
        if let Some(affinity) = state.affinity {
            if let Some((backend, last)) = state.sticky.get(&client).copied() {
                if now.duration_since(last) <= affinity && !avoid.contains(&backend) {
                    state.sticky.insert(client, (backend, now));
                    return Some(backend);
                }
            }
            // The map must not grow without bound with clients long gone.
            if state.sticky.len() > 4096 {
                state
                    .sticky
                    .retain(|_, (_, last)| now.duration_since(*last) <= affinity);
            }
        }
        let count = state.backends.len();
        let backend = (0..count)
            .map(|offset| state.backends[(state.next + offset) % count])
            .find(|b| !avoid.contains(b))?;
        let index = state.backends.iter().position(|b| *b == backend)?;
        state.next = (index + 1) % count;
        if state.affinity.is_some() {
            state.sticky.insert(client, (backend, now));
        }
        Some(backend)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn addr(last: u8) -> SocketAddr {
        SocketAddr::from(([169, 254, 42, last], 8080))
    }

    fn client(last: u8) -> IpAddr {
        IpAddr::from([169, 254, 42, last])
    }

    #[test]
    fn round_robin_spreads_and_skips_refusing_backends() {
        let balancer = Balancer::new(vec![addr(2), addr(3), addr(4)], None);
        let picks: Vec<_> = (0..6)
            .map(|_| balancer.pick(client(9), &[]).unwrap())
            .collect();
        assert_eq!(
            picks,
            [addr(2), addr(3), addr(4), addr(2), addr(3), addr(4)]
        );
        assert_eq!(balancer.pick(client(9), &[addr(2)]), Some(addr(3)));
        assert_eq!(balancer.pick(client(9), &[addr(2), addr(3), addr(4)]), None);
        balancer.update(vec![addr(4)], None);
        assert_eq!(balancer.pick(client(9), &[]), Some(addr(4)));
        balancer.update(Vec::new(), None);
        assert!(balancer.is_empty());
        assert_eq!(balancer.pick(client(9), &[]), None);
    }

    #[tokio::test(start_paused = true)]
    async fn client_ip_affinity_sticks_until_its_timeout_or_the_backend_leaves() {
        let balancer = Balancer::new(vec![addr(2), addr(3)], Some(Duration::from_secs(10)));
        let first = balancer.pick(client(9), &[]).unwrap();
        for _ in 0..5 {
            assert_eq!(balancer.pick(client(9), &[]), Some(first));
        }
        // Another client is balanced on its own.
        let other = balancer.pick(client(10), &[]).unwrap();
        assert_ne!(other, first);
        // Each use renews the stickiness; ten idle seconds and one more end it.
        tokio::time::advance(Duration::from_secs(9)).await;
        assert_eq!(balancer.pick(client(9), &[]), Some(first));
        tokio::time::advance(Duration::from_secs(11)).await;
        let after = balancer.pick(client(9), &[]).unwrap();
        assert_eq!(balancer.pick(client(9), &[]), Some(after));
        // The backend leaves: the client goes to one that is left.
        let remaining = if after == addr(2) { addr(3) } else { addr(2) };
        balancer.update(vec![remaining], Some(Duration::from_secs(10)));
        assert_eq!(balancer.pick(client(9), &[]), Some(remaining));
        assert_eq!(balancer.len(), 1);
    }

    #[tokio::test]
    async fn left_resolves_when_the_endpoint_is_no_longer_listed() {
        let balancer = Balancer::new(vec![addr(2), addr(3)], None);
        assert!(balancer.contains(addr(2)));
        // Unready: no new connections, but still listed, so existing ones live on.
        balancer.update(vec![addr(3)], None);
        assert!(!balancer.contains(addr(2)));
        let mut left = Box::pin(balancer.left(addr(2)));
        assert!(futures::poll!(left.as_mut()).is_pending());
        balancer.set_listed([addr(3)]);
        tokio::time::timeout(Duration::from_secs(5), left)
            .await
            .expect("left resolves");
        // One never listed has left already.
        balancer.left(addr(9)).await;
    }
}

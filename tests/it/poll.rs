//! Waiting without sleeping blindly: poll a condition until it holds, or fail at a deadline.

use std::future::Future;
use std::time::Duration;

/// Deadline of every wait: generous for a loaded 2-core machine, never a fixed sleep.
pub const DEADLINE: Duration = Duration::from_secs(30);

/// Polls `check` every 50 ms until it gives a value, failing with `what` at [`DEADLINE`].
pub async fn eventually<T, F, Fut>(what: &str, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = tokio::time::Instant::now() + DEADLINE;
    loop {
        if let Some(value) = check().await {
            return value;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

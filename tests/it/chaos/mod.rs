//! Proof under faults: a linearizability checker of the KV model and a watch checker, tested
//! on hand-made histories.
//!
//! # Layout
//!
//! - [`history`]: operations with invocation and completion times and definite, failed or
//!   indefinite outcomes; watchers' events.
//! - [`checker`]: per-key Wing & Gong search with memoization; acknowledged writes against the
//!   committed history.
//! - [`watch_check`]: each watcher against the committed history; members against each other.

pub mod checker;
pub mod history;
pub mod watch_check;

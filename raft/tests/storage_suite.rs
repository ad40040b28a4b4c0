//! openraft's storage conformance suite on the sled log store and the keel-store state machine.

use keel_raft::types::{StorageError, TypeConfig};
use keel_raft::{LogStore, StateMachine};
use openraft::testing::{StoreBuilder, Suite};
use openraft::StorageIOError;
use tempfile::TempDir;

struct SledBuilder;

fn io(e: impl std::fmt::Display) -> StorageError {
    StorageIOError::write(openraft::AnyError::error(e.to_string())).into()
}

impl StoreBuilder<TypeConfig, LogStore, StateMachine, TempDir> for SledBuilder {
    async fn build(&self) -> Result<(TempDir, LogStore, StateMachine), StorageError> {
        let dir = TempDir::new().map_err(io)?;
        let log = LogStore::open(dir.path().join("raft")).map_err(io)?;
        let store = keel_store::Store::open(dir.path().join("kv"), keel_store::Config::default())
            .map_err(io)?;
        let state_machine = StateMachine::open(store, dir.path().join("snapshot")).map_err(io)?;
        Ok((dir, log, state_machine))
    }
}

#[test]
fn sled_storage_passes_openraft_suite() -> anyhow::Result<()> {
    Suite::test_all(SledBuilder)?;
    Ok(())
}

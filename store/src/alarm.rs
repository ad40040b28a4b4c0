//! Alarms as replicated data, with etcd 3.4's semantics (its `AlarmStore`): an alarm is a
//! (member id, type) pair, stored under whatever member id the request named (0 included:
//! etcd keeps it as given), at most once per pair.
//!
//! Activating an alarm that is already armed changes nothing and returns it; deactivating one
//! that is not armed changes nothing and returns nothing. While any NOSPACE alarm is armed,
//! whatever its member id, the cluster refuses writes that add data; while a CORRUPT alarm
//! is armed it refuses every write (etcd's capped and corrupt appliers). Those refusals are
//! the server's job ([`Store::alarms`] tells it what is armed); this module only keeps the
//! set.
//!
//! The set lives in the keyspace's one tree (the `malarms` meta entry), so a change is one
//! atomic batch with the Raft marker, travels in snapshots, and takes no keyspace revision:
//! etcd keeps alarms in their own bucket, outside the MVCC history.

use serde::{Deserialize, Serialize};

use crate::codec;
use crate::error::Result;
use crate::keyspace::Store;

const META_ALARMS: &[u8] = b"malarms";

/// Tree writes of one command: key, and the new value or `None` to remove it.
type Writes = Vec<(Vec<u8>, Option<Vec<u8>>)>;

/// Which alarm (etcd `AlarmType`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum AlarmType {
    /// No particular alarm: in a list request, every type; etcd also stores it when asked to.
    None,
    /// The database outgrew its quota: writes that add data are refused.
    NoSpace,
    /// A member's data was found to differ from the others': every write is refused.
    Corrupt,
}

/// One armed alarm (etcd `AlarmMember`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Alarm {
    /// The member it was raised for, as the request named it (0 is kept as 0).
    pub member_id: u64,
    /// Which alarm.
    pub alarm: AlarmType,
}

/// A change to the alarm set: the `Command::Alarm` payload.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum AlarmCommand {
    /// Arm the alarm (nothing changes if it is armed already).
    Activate(Alarm),
    /// Disarm the alarm (nothing changes if it is not armed).
    Deactivate(Alarm),
}

/// The armed alarms in `tree`, in (member id, type) order.
fn armed(tree: &sled::Tree) -> Result<Vec<Alarm>> {
    match tree.get(META_ALARMS)? {
        Some(bytes) => codec::decode(&bytes),
        None => Ok(Vec::new()),
    }
}

/// Applies `command` to the set in `tree`: the alarms it returns (etcd answers with the alarm
/// it activated, or the one it disarmed, or none), and the tree writes to make, if any.
pub(crate) fn execute(tree: &sled::Tree, command: &AlarmCommand) -> Result<(Vec<Alarm>, Writes)> {
    let mut alarms = armed(tree)?;
    let (answer, changed) = match *command {
        AlarmCommand::Activate(alarm) => match alarms.binary_search(&alarm) {
            Ok(_) => (vec![alarm], false),
            Err(at) => {
                alarms.insert(at, alarm);
                (vec![alarm], true)
            }
        },
        AlarmCommand::Deactivate(alarm) => match alarms.binary_search(&alarm) {
            Ok(at) => {
                alarms.remove(at);
                (vec![alarm], true)
            }
            Err(_) => (Vec::new(), false),
        },
    };
    let writes = if !changed {
        Vec::new()
    } else if alarms.is_empty() {
        vec![(META_ALARMS.to_vec(), None)]
    } else {
        vec![(META_ALARMS.to_vec(), Some(codec::encode(&alarms)?))]
    };
    Ok((answer, writes))
}

impl Store {
    /// The armed alarms of type `alarm` ([`AlarmType::None`]: of every type), in (member id,
    /// type) order: etcd's `AlarmStore.Get`.
    pub fn alarms(&self, alarm: AlarmType) -> Result<Vec<Alarm>> {
        let (_view, tree) = self.inner().viewed_tree();
        let mut alarms = armed(&tree)?;
        if alarm != AlarmType::None {
            alarms.retain(|armed| armed.alarm == alarm);
        }
        Ok(alarms)
    }
}

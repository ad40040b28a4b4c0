//! What a plugin's pre-filter or pre-score worked out for one scheduling cycle, read back by
//! its filter or score (kube's `CycleState`). One value per type, so each plugin keys its
//! data by its own state type. The state clones (each value is `Clone`), so preemption can
//! try one copy per candidate node with the victims taken out of the counts.

use std::any::{Any, TypeId};
use std::collections::HashMap;

/// A value a cycle state holds: any `Clone` type, kept behind a box that clones itself.
trait StateData: Any + Send + Sync {
    fn clone_box(&self) -> Box<dyn StateData>;
    fn as_any(&self) -> &dyn Any;
    fn as_any_mut(&mut self) -> &mut dyn Any;
}

impl<T: Any + Send + Sync + Clone> StateData for T {
    fn clone_box(&self) -> Box<dyn StateData> {
        Box::new(self.clone())
    }

    fn as_any(&self) -> &dyn Any {
        self
    }

    fn as_any_mut(&mut self) -> &mut dyn Any {
        self
    }
}

/// One scheduling cycle's plugin data.
#[derive(Default)]
pub struct CycleState {
    data: HashMap<TypeId, Box<dyn StateData>>,
}

impl Clone for CycleState {
    fn clone(&self) -> CycleState {
        CycleState {
            data: self
                .data
                .iter()
                .map(|(id, value)| (*id, StateData::clone_box(&**value)))
                .collect(),
        }
    }
}

impl CycleState {
    /// Stores `value`, replacing an earlier value of its type.
    pub fn write<T: Any + Send + Sync + Clone>(&mut self, value: T) {
        self.data.insert(TypeId::of::<T>(), Box::new(value));
    }

    /// The value of type `T`, if written.
    pub fn read<T: Any + Send + Sync>(&self) -> Option<&T> {
        let value: &dyn StateData = &**self.data.get(&TypeId::of::<T>())?;
        value.as_any().downcast_ref()
    }

    /// The value of type `T` to change, if written.
    pub fn read_mut<T: Any + Send + Sync>(&mut self) -> Option<&mut T> {
        let value: &mut dyn StateData = &mut **self.data.get_mut(&TypeId::of::<T>())?;
        value.as_any_mut().downcast_mut()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_are_kept_by_type_and_clones_are_independent() {
        let mut state = CycleState::default();
        state.write(3u32);
        state.write(String::from("a"));
        let mut copy = state.clone();
        *copy.read_mut::<u32>().unwrap() += 1;
        assert_eq!(state.read::<u32>(), Some(&3));
        assert_eq!(copy.read::<u32>(), Some(&4));
        assert_eq!(copy.read::<String>().map(String::as_str), Some("a"));
        assert_eq!(state.read::<i64>(), None);
    }
}

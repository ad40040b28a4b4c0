//! The alarm set as replicated data, with etcd 3.4's answers: member id 0 kept as given, one
//! alarm per (member, type), deactivation answering with what it disarmed, snapshots carrying
//! the set, and no keyspace revision taken.

use keel_store::{
    Alarm, AlarmCommand, AlarmType, Command, CommandResponse, Config, PutRequest, Store,
};

fn apply(store: &Store, command: AlarmCommand) -> Vec<Alarm> {
    let applied = store
        .apply(&Command::Alarm(command), None)
        .expect("storage");
    match applied.result {
        Ok(CommandResponse::Alarm(alarms)) => alarms,
        other => panic!("{command:?} answered {other:?}"),
    }
}

fn nospace(member_id: u64) -> Alarm {
    Alarm {
        member_id,
        alarm: AlarmType::NoSpace,
    }
}

#[test]
fn activate_list_and_deactivate_as_etcd_does() {
    let store = Store::temporary(Config::default()).unwrap();
    assert_eq!(store.alarms(AlarmType::None).unwrap(), vec![]);

    // Member 0 stays 0; another member's id is kept as given.
    assert_eq!(
        apply(&store, AlarmCommand::Activate(nospace(0))),
        vec![nospace(0)]
    );
    assert_eq!(
        apply(&store, AlarmCommand::Activate(nospace(77))),
        vec![nospace(77)]
    );
    // Arming it again answers with it and adds nothing.
    assert_eq!(
        apply(&store, AlarmCommand::Activate(nospace(77))),
        vec![nospace(77)]
    );
    let corrupt = Alarm {
        member_id: 77,
        alarm: AlarmType::Corrupt,
    };
    apply(&store, AlarmCommand::Activate(corrupt));
    assert_eq!(
        store.alarms(AlarmType::None).unwrap(),
        vec![nospace(0), nospace(77), corrupt]
    );
    assert_eq!(
        store.alarms(AlarmType::NoSpace).unwrap(),
        vec![nospace(0), nospace(77)]
    );
    assert_eq!(store.alarms(AlarmType::Corrupt).unwrap(), vec![corrupt]);

    // Deactivating answers with what it disarmed; a second time, with nothing.
    assert_eq!(
        apply(&store, AlarmCommand::Deactivate(nospace(0))),
        vec![nospace(0)]
    );
    assert_eq!(apply(&store, AlarmCommand::Deactivate(nospace(0))), vec![]);
    // The type is part of the alarm: NONE does not disarm NOSPACE.
    let none = Alarm {
        member_id: 77,
        alarm: AlarmType::None,
    };
    assert_eq!(apply(&store, AlarmCommand::Deactivate(none)), vec![]);
    assert_eq!(
        store.alarms(AlarmType::None).unwrap(),
        vec![nospace(77), corrupt]
    );
    apply(&store, AlarmCommand::Deactivate(nospace(77)));
    apply(&store, AlarmCommand::Deactivate(corrupt));
    assert_eq!(store.alarms(AlarmType::None).unwrap(), vec![]);
}

#[test]
fn alarms_take_no_revision_and_travel_in_snapshots() {
    let store = Store::temporary(Config::default()).unwrap();
    let put = Command::Put(PutRequest {
        key: b"k".to_vec(),
        value: b"v".to_vec(),
        ..Default::default()
    });
    store.apply(&put, None).unwrap().result.unwrap();
    let revision = store.current_revision();
    let hash = store.hash_kv(0).unwrap();
    let applied = store
        .apply(&Command::Alarm(AlarmCommand::Activate(nospace(5))), None)
        .unwrap();
    assert_eq!(applied.revision, revision);
    assert_eq!(store.current_revision(), revision);
    assert_eq!(store.hash_kv(0).unwrap(), hash);

    let mut exported = Vec::new();
    store.export(&mut exported).unwrap();
    let copy = Store::temporary(Config::default()).unwrap();
    copy.import(&mut exported.as_slice()).unwrap();
    assert_eq!(copy.alarms(AlarmType::None).unwrap(), vec![nospace(5)]);

    // An import replaces the set too: a snapshot taken with no alarm clears them.
    let empty = Store::temporary(Config::default()).unwrap();
    let mut exported = Vec::new();
    empty.export(&mut exported).unwrap();
    copy.import(&mut exported.as_slice()).unwrap();
    assert_eq!(copy.alarms(AlarmType::None).unwrap(), vec![]);
}

#[test]
fn alarms_survive_a_reopen() {
    let dir = tempfile::tempdir().unwrap();
    {
        let store = Store::open(dir.path(), Config::default()).unwrap();
        apply(&store, AlarmCommand::Activate(nospace(9)));
        store.flush().unwrap();
    }
    let store = Store::open(dir.path(), Config::default()).unwrap();
    assert_eq!(store.alarms(AlarmType::None).unwrap(), vec![nospace(9)]);
}

//! Alarms side by side with a real etcd 3.4 (installed by scripts/install-test-deps.sh): the
//! same gRPC calls through the etcd-client crate, in the same order, give the same answers
//! (member ids written as which member they name), and the same refusals of writes while an
//! alarm is armed. On keel the calls go to different members of a 3-member cluster, so the
//! alarms must be replicated to read back as etcd's do.

use std::process::Stdio;
use std::time::{Duration, Instant};

use etcd_client::{AlarmAction, AlarmOptions, AlarmType, Client};
use keel::cli::dev::DevCluster;

const DEADLINE: Duration = Duration::from_secs(30);

/// One etcd 3.4 member on free loopback ports, killed on drop.
struct RealEtcd {
    endpoint: String,
    _process: tokio::process::Child,
    _data: tempfile::TempDir,
}

impl RealEtcd {
    async fn start() -> RealEtcd {
        let data = tempfile::tempdir().expect("temp dir");
        let endpoint = format!("http://127.0.0.1:{}", crate::free_port());
        let peer = format!("http://127.0.0.1:{}", crate::free_port());
        let process = tokio::process::Command::new("etcd")
            .args(["--name", "alarms", "--data-dir"])
            .arg(data.path().join("etcd"))
            .args(["--listen-client-urls", &endpoint])
            .args(["--advertise-client-urls", &endpoint])
            .args(["--listen-peer-urls", &peer])
            .args(["--initial-advertise-peer-urls", &peer])
            .args(["--initial-cluster", &format!("alarms={peer}")])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .expect("etcd starts (scripts/install-test-deps.sh installs it)");
        let etcd = RealEtcd {
            endpoint,
            _process: process,
            _data: data,
        };
        let deadline = Instant::now() + DEADLINE;
        loop {
            if let Ok(mut client) = Client::connect([&etcd.endpoint], None).await {
                if client.get("ready", None).await.is_ok() {
                    return etcd;
                }
            }
            assert!(Instant::now() < deadline, "etcd never served");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

/// What one call answered, with member ids written by the name the test gave them, and
/// alarms sorted (etcd lists them in Go's map order).
#[derive(Debug, PartialEq, Eq)]
enum Answer {
    Alarms(Vec<(String, i32)>),
    Put,
    Range,
    /// The gRPC code and message.
    Refused(i32, String),
}

/// An alarm call (action, type, member id), or `None` for a put.
type Call = Option<(AlarmAction, AlarmType, u64)>;

fn refused(error: etcd_client::Error) -> Answer {
    match error {
        etcd_client::Error::GRpcStatus(status) => {
            Answer::Refused(status.code() as i32, status.message().to_owned())
        }
        other => panic!("not a gRPC status: {other}"),
    }
}

/// The sequence of calls, made through `clients` in turn (one member after another), with
/// `other` the id of a member the alarms name besides 0.
async fn script(clients: &mut [Client], other: u64) -> Vec<(String, Answer)> {
    let name = |id: u64| match id {
        0 => "0".to_owned(),
        id if id == other => "other".to_owned(),
        id => format!("unexpected member {id}"),
    };
    let steps: Vec<(&str, Call)> = vec![
        ("list", Some((AlarmAction::Get, AlarmType::None, 0))),
        (
            "arm 0",
            Some((AlarmAction::Activate, AlarmType::Nospace, 0)),
        ),
        (
            "arm other",
            Some((AlarmAction::Activate, AlarmType::Nospace, other)),
        ),
        (
            "arm other again",
            Some((AlarmAction::Activate, AlarmType::Nospace, other)),
        ),
        ("list both", Some((AlarmAction::Get, AlarmType::None, 0))),
        (
            "list nospace",
            Some((AlarmAction::Get, AlarmType::Nospace, 0)),
        ),
        (
            "list corrupt",
            Some((AlarmAction::Get, AlarmType::Corrupt, 0)),
        ),
        ("put while armed", None),
        (
            "disarm 0",
            Some((AlarmAction::Deactivate, AlarmType::Nospace, 0)),
        ),
        (
            "disarm 0 again",
            Some((AlarmAction::Deactivate, AlarmType::Nospace, 0)),
        ),
        ("put while other armed", None),
        (
            "disarm other",
            Some((AlarmAction::Deactivate, AlarmType::Nospace, other)),
        ),
        (
            "list none left",
            Some((AlarmAction::Get, AlarmType::None, 0)),
        ),
        ("put once disarmed", None),
        (
            "arm corrupt",
            Some((AlarmAction::Activate, AlarmType::Corrupt, other)),
        ),
        ("put while corrupt", None),
        (
            "disarm corrupt",
            Some((AlarmAction::Deactivate, AlarmType::Corrupt, other)),
        ),
        ("put after corrupt", None),
    ];
    let mut answers = Vec::new();
    for (turn, (step, call)) in steps.into_iter().enumerate() {
        let client = &mut clients[turn % clients.len()];
        let answer = match call {
            Some((action, alarm, member)) => {
                let mut options = AlarmOptions::new();
                options.with_member(member);
                match client.alarm(action, alarm, Some(options)).await {
                    Ok(response) => {
                        let mut alarms: Vec<(String, i32)> = response
                            .alarms()
                            .iter()
                            .map(|a| (name(a.member_id()), a.alarm() as i32))
                            .collect();
                        alarms.sort();
                        Answer::Alarms(alarms)
                    }
                    Err(e) => refused(e),
                }
            }
            None => match client.put("k", "v", None).await {
                Ok(_) => Answer::Put,
                Err(e) => refused(e),
            },
        };
        answers.push((step.to_owned(), answer));
        // Reads are refused under CORRUPT by neither.
        if step == "put while corrupt" {
            let read = match client.get("k", None).await {
                Ok(_) => Answer::Range,
                Err(e) => refused(e),
            };
            answers.push(("get while corrupt".to_owned(), read));
        }
    }
    answers
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn alarms_answer_as_etcd_3_4_does() {
    let etcd = RealEtcd::start().await;
    let mut etcd_client = Client::connect([&etcd.endpoint], None)
        .await
        .expect("etcd client");
    let etcd_member = etcd_client
        .status()
        .await
        .expect("etcd status")
        .header()
        .expect("header")
        .member_id();
    let theirs = script(std::slice::from_mut(&mut etcd_client), etcd_member).await;

    let cluster = DevCluster::start_on_free_ports(3)
        .await
        .expect("cluster starts");
    let mut clients = Vec::new();
    for member in &cluster.members {
        clients.push(
            Client::connect([member.client_addr.to_string()], None)
                .await
                .expect("keel client"),
        );
    }
    let other = cluster.members[1].replica.node().id();
    let ours = script(&mut clients, other).await;

    for ((step, etcd_answer), (_, keel_answer)) in theirs.iter().zip(&ours) {
        assert_eq!(keel_answer, etcd_answer, "{step}");
    }
    assert_eq!(ours.len(), theirs.len());
    // Not vacuous: etcd itself answered with both alarms and refused the write.
    assert!(theirs.contains(&(
        "list both".to_owned(),
        Answer::Alarms(vec![("0".into(), 1), ("other".into(), 1)])
    )));
    cluster.stop().await.expect("cluster stops");
}

//! Leader failover of a strong three-node database: writers keep writing
//! while the leader miner is killed (SIGKILL); the group elects a new leader
//! and the client follows it, resending writes whose answer the kill lost
//! (a signed request applies at most once, and a resend is answered with
//! its first outcome), so no writer sees an error. Afterwards, with the old
//! leader restarted, every write is on all three replicas exactly once and
//! the replicas' SQL chains share one head.

mod common;

use std::collections::BTreeSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use common::cluster::{CONVERGE_TIMEOUT, DbCluster};
use common::poll;
use covenant::client::{Args, ClientError, ClientOptions, Database, Value};
use tokio::sync::Mutex;

/// Writes acknowledged and errors seen by the writers.
#[derive(Default)]
struct Tally {
    acked: BTreeSet<(i64, i64)>,
    errors: Vec<String>,
    unknown: usize,
}

/// Inserts `(writer, seq)` rows until `stop`, recording each outcome.
async fn writer(db: Arc<Database>, writer: i64, stop: Arc<AtomicBool>, tally: Arc<Mutex<Tally>>) {
    let mut seq = 0i64;
    while !stop.load(Ordering::Relaxed) {
        let args = Args::Positional(vec![Value::Integer(writer), Value::Integer(seq)]);
        let r = db
            .exec("INSERT INTO t (writer, seq) VALUES (?, ?)", args)
            .await;
        let mut t = tally.lock().await;
        match r {
            Ok(_) => {
                t.acked.insert((writer, seq));
            }
            Err(ClientError::WriteOutcomeUnknown { .. }) => t.unknown += 1,
            Err(e) => t.errors.push(e.to_string()),
        }
        seq += 1;
    }
}

async fn acked(tally: &Mutex<Tally>) -> usize {
    tally.lock().await.acked.len()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn writes_survive_killing_the_leader() {
    let started = std::time::Instant::now();
    let mut cluster = DbCluster::start(3, false).await;
    eprintln!("cluster up after {:?}", started.elapsed());
    let client = cluster.client(ClientOptions::default());
    let db = Arc::new(cluster.open(&client).await);
    db.exec(
        "CREATE TABLE t (id INTEGER PRIMARY KEY, writer INTEGER NOT NULL, seq INTEGER NOT NULL)",
        Args::default(),
    )
    .await
    .unwrap();
    let leader = cluster.wait_leader(&db).await;

    let stop = Arc::new(AtomicBool::new(false));
    let tally = Arc::new(Mutex::new(Tally::default()));
    let writers: Vec<_> = (0..4)
        .map(|w| tokio::spawn(writer(db.clone(), w, stop.clone(), tally.clone())))
        .collect();
    let t = &tally;
    poll(
        "writes before the kill",
        Duration::from_secs(20),
        || async move { (acked(t).await >= 20).then_some(()) },
    )
    .await;
    eprintln!("killing the leader after {:?}", started.elapsed());
    cluster.kill(leader);
    let before = acked(&tally).await;
    let new_leader = cluster.wait_leader(&db).await;
    assert_ne!(new_leader, leader);
    eprintln!("new leader after {:?}", started.elapsed());
    poll("writes after the kill", CONVERGE_TIMEOUT, || async move {
        (acked(t).await >= before + 20).then_some(())
    })
    .await;
    stop.store(true, Ordering::Relaxed);
    for w in writers {
        w.await.unwrap();
    }
    let tally = Arc::try_unwrap(tally).ok().unwrap().into_inner();
    eprintln!(
        "acknowledged {}, outcome unknown {}, errors {:?} after {:?}",
        tally.acked.len(),
        tally.unknown,
        tally.errors,
        started.elapsed()
    );
    assert!(
        tally.errors.is_empty(),
        "writes failed during failover instead of following the new leader: {:?}",
        tally.errors
    );
    assert_eq!(
        tally.unknown, 0,
        "writes whose answer the kill lost were not resent until answered"
    );

    cluster.restart(leader);
    let rows = cluster
        .wait_converged(&db, "SELECT writer, seq FROM t ORDER BY id", |rows| {
            rows.len() >= tally.acked.len()
        })
        .await;
    let mut present = BTreeSet::new();
    for row in &rows {
        let [Value::Integer(w), Value::Integer(s)] = row.as_slice() else {
            panic!("unexpected row {row:?}");
        };
        assert!(present.insert((*w, *s)), "({w}, {s}) was applied twice");
    }
    let lost: Vec<_> = tally.acked.difference(&present).collect();
    assert!(lost.is_empty(), "acknowledged writes lost: {lost:?}");
    // Every write was answered, so nothing applied without its writer knowing.
    let unanswered: Vec<_> = present.difference(&tally.acked).collect();
    assert!(
        unanswered.is_empty(),
        "applied but not acknowledged: {unanswered:?}"
    );
    let head = cluster.wait_same_head(&db).await;
    eprintln!("converged on head {head} after {:?}", started.elapsed());
}

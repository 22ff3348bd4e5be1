//! Eventual consistency (`cql create -db-eventual-consistency`) on three
//! miners: writes succeed while a follower is killed (SIGKILL) and
//! restarted in the middle of them, and afterwards every replica holds the
//! same rows, including every acknowledged write, and the same chain head.

mod common;

use std::collections::BTreeSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use common::cluster::{CONVERGE_TIMEOUT, DbCluster};
use common::poll;
use covenant::client::core::types::Consistency;
use covenant::client::{Args, ClientOptions, Database, Value};
use tokio::sync::Mutex;

/// Inserts `(writer, seq)` rows until `stop`; acknowledged ones go in
/// `acked`, failures in `errors`.
async fn writer(
    db: Arc<Database>,
    writer: i64,
    stop: Arc<AtomicBool>,
    acked: Arc<Mutex<BTreeSet<(i64, i64)>>>,
    count: Arc<AtomicUsize>,
    errors: Arc<Mutex<Vec<String>>>,
) {
    let mut seq = 0i64;
    while !stop.load(Ordering::Relaxed) {
        let args = Args::Positional(vec![Value::Integer(writer), Value::Integer(seq)]);
        match db
            .exec("INSERT INTO t (writer, seq) VALUES (?, ?)", args)
            .await
        {
            Ok(_) => {
                acked.lock().await.insert((writer, seq));
                count.fetch_add(1, Ordering::Relaxed);
            }
            Err(e) => errors.lock().await.push(e.to_string()),
        }
        seq += 1;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replicas_converge_after_a_follower_restart() {
    let mut cluster = DbCluster::start(3, true).await;
    let client = cluster.client(ClientOptions::default());
    let db = Arc::new(cluster.open(&client).await);
    assert_eq!(db.profile().consistency, Consistency::Eventual);
    db.exec(
        "CREATE TABLE t (id INTEGER PRIMARY KEY, writer INTEGER NOT NULL, seq INTEGER NOT NULL)",
        Args::default(),
    )
    .await
    .unwrap();
    let leader = cluster.wait_leader(&db).await;
    let follower = (0..3).find(|i| *i != leader).unwrap();

    let stop = Arc::new(AtomicBool::new(false));
    let acked = Arc::new(Mutex::new(BTreeSet::new()));
    let count = Arc::new(AtomicUsize::new(0));
    let errors = Arc::new(Mutex::new(Vec::new()));
    let writers: Vec<_> = (0..4)
        .map(|w| {
            tokio::spawn(writer(
                db.clone(),
                w,
                stop.clone(),
                acked.clone(),
                count.clone(),
                errors.clone(),
            ))
        })
        .collect();
    let wait_for = |n: usize, what: &'static str| {
        let count = count.clone();
        async move {
            poll(what, CONVERGE_TIMEOUT, || {
                let count = count.clone();
                async move { (count.load(Ordering::Relaxed) >= n).then_some(()) }
            })
            .await
        }
    };
    wait_for(30, "writes before the kill").await;
    cluster.kill(follower);
    let n = count.load(Ordering::Relaxed);
    wait_for(n + 30, "writes with a follower down").await;
    cluster.restart(follower);
    let n = count.load(Ordering::Relaxed);
    wait_for(n + 30, "writes after the restart").await;
    stop.store(true, Ordering::Relaxed);
    for w in writers {
        w.await.unwrap();
    }
    let errors = errors.lock().await.clone();
    assert!(
        errors.is_empty(),
        "writes failed while only a follower was down: {errors:?}"
    );
    let acked = acked.lock().await.clone();

    let rows = cluster
        .wait_converged(&db, "SELECT writer, seq FROM t ORDER BY id", |rows| {
            rows.len() >= acked.len()
        })
        .await;
    let mut present = BTreeSet::new();
    for row in &rows {
        let [Value::Integer(w), Value::Integer(s)] = row.as_slice() else {
            panic!("unexpected row {row:?}");
        };
        assert!(present.insert((*w, *s)), "({w}, {s}) was applied twice");
    }
    let lost: Vec<_> = acked.difference(&present).collect();
    assert!(lost.is_empty(), "acknowledged writes lost: {lost:?}");
    assert_eq!(present.len(), acked.len(), "rows no writer sent");
    cluster.wait_same_head(&db).await;
    // The restarted follower serves the rows from its own replica.
    let rows_there = cluster
        .replica_rows(&db, follower, "SELECT COUNT(*) FROM t")
        .await
        .unwrap();
    assert_eq!(
        rows_there,
        [[Value::Integer(i64::try_from(acked.len()).unwrap())]]
    );
}

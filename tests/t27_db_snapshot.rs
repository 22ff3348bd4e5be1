//! Raft snapshots of a strong three-node database: with the snapshot
//! threshold lowered (`Miner.SnapshotLogEntries: 30`, so the group keeps 6
//! entries after each snapshot), a follower stopped while the leader
//! snapshots and purges its log past it catches up through a snapshot when
//! restarted (its log says it installed one), holds every acknowledged row
//! and the same chain head as the others, and keeps replicating. Then a
//! follower falls behind again while the two others purge, both of those
//! are restarted, and the lagging one is still brought up: the snapshot a
//! restarted leader sends is the one it kept on disk.

mod common;

use std::collections::BTreeSet;

use common::cluster::{CONVERGE_TIMEOUT, DbCluster};
use common::miner::Miner;
use common::poll;
use covenant::client::{Args, ClientOptions, Database, Value};
use covenant::core::config::Config;

/// Entries between two snapshots, for this test only.
const SNAPSHOT_LOG_ENTRIES: u64 = 30;
/// Writes while a follower is down: several snapshot intervals, so the
/// log the follower needs is purged everywhere.
const WRITES_WHILE_DOWN: i64 = 100;

/// `DbCluster::start(3, false)` with the snapshot threshold lowered in
/// every miner's config before it starts.
async fn start_cluster() -> DbCluster {
    DbCluster::start_with(3, false, |m: &Miner| {
        let path = m.config_path();
        let mut config = Config::load(&path).expect("load miner config");
        config
            .miner
            .as_mut()
            .expect("a Miner section")
            .snapshot_log_entries = SNAPSHOT_LOG_ENTRIES;
        config.save(&path).expect("save miner config");
    })
    .await
}

/// How many times miner `i`'s log says `what`.
fn log_count(cluster: &DbCluster, i: usize, what: &str) -> usize {
    std::fs::read_to_string(cluster.miners[i].dir.join("minerd.log"))
        .unwrap_or_default()
        .matches(what)
        .count()
}

/// Inserts `n` rows from `*next` on, each acknowledged, recording them.
async fn write(db: &Database, next: &mut i64, n: i64, acked: &mut BTreeSet<i64>) {
    for _ in 0..n {
        let args = Args::Positional(vec![Value::Integer(*next)]);
        db.exec("INSERT INTO t (n) VALUES (?)", args)
            .await
            .unwrap_or_else(|e| panic!("write {} failed: {e}", *next));
        acked.insert(*next);
        *next += 1;
    }
}

/// What openraft logs when a miner purges its log.
const PURGED: &str = "purge_log last_purged_log_id";

/// Writes in runs of 10 until each `(miner, before, more)` has logged
/// `more` purges more than `before` (a leader postpones a purge while it
/// is replicating the range to a follower, even a dead one, so the number
/// of writes needed varies).
async fn write_until_purged(
    cluster: &DbCluster,
    db: &Database,
    next: &mut i64,
    acked: &mut BTreeSet<i64>,
    miners: &[(usize, usize, usize)],
) {
    let deadline = tokio::time::Instant::now() + CONVERGE_TIMEOUT;
    while !miners
        .iter()
        .all(|(i, before, more)| log_count(cluster, *i, PURGED) >= before + more)
    {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the miners did not purge their logs within {CONVERGE_TIMEOUT:?}"
        );
        write(db, next, 10, acked).await;
    }
}

/// Waits until miner `i` has installed one more snapshot than `before`.
async fn wait_installed(cluster: &DbCluster, i: usize, before: usize) {
    poll(
        &format!("miner {i} to install a snapshot"),
        CONVERGE_TIMEOUT,
        || async move { (log_count(cluster, i, "installed a snapshot") > before).then_some(()) },
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lagging_followers_catch_up_through_snapshots() {
    let mut cluster = start_cluster().await;
    let client = cluster.client(ClientOptions::default());
    let db = cluster.open(&client).await;
    db.exec(
        "CREATE TABLE t (id INTEGER PRIMARY KEY, n INTEGER NOT NULL UNIQUE)",
        Args::default(),
    )
    .await
    .unwrap();
    let mut acked = BTreeSet::new();
    let mut next = 0i64;
    write(&db, &mut next, 5, &mut acked).await;

    // A follower down while the leader snapshots and purges past it: three
    // purges after the kill are past anything the follower holds (each
    // follows a snapshot 30 entries after the previous one).
    let leader = cluster.wait_leader(&db).await;
    let follower = (0..3).find(|i| *i != leader).unwrap();
    cluster.kill(follower);
    let purged = log_count(&cluster, leader, PURGED);
    write_until_purged(&cluster, &db, &mut next, &mut acked, &[(leader, purged, 3)]).await;
    let db_dir = cluster.miners[leader].root_dir().join(db.id().to_hex());
    assert!(
        db_dir.join("snapshot.meta").exists(),
        "the leader keeps its snapshot on disk"
    );

    let installed = log_count(&cluster, follower, "installed a snapshot");
    cluster.restart(follower);
    wait_installed(&cluster, follower, installed).await;
    cluster
        .wait_all_acked(&db, "SELECT n FROM t ORDER BY n", &acked)
        .await;
    // It keeps replicating from the log afterwards.
    write(&db, &mut next, 5, &mut acked).await;
    cluster
        .wait_all_acked(&db, "SELECT n FROM t ORDER BY n", &acked)
        .await;

    // Again, and then the two other miners restart before the lagging one
    // returns; after their restart both purge again (any snapshot they
    // build then is past everything the lagging one holds), and whichever
    // leads sends the snapshot it kept on disk.
    let leader = cluster.wait_leader(&db).await;
    let lagging = (0..3).find(|i| *i != leader).unwrap();
    cluster.kill(lagging);
    write(&db, &mut next, WRITES_WHILE_DOWN, &mut acked).await;
    let others: Vec<usize> = (0..3).filter(|i| *i != lagging).collect();
    for i in &others {
        cluster.kill(*i);
    }
    let purged: Vec<(usize, usize, usize)> = others
        .iter()
        .map(|i| (*i, log_count(&cluster, *i, PURGED), 1))
        .collect();
    for i in &others {
        cluster.restart(*i);
    }
    // The first write after the restarts waits for an election.
    let attempt = std::cell::Cell::new(next);
    let first = poll("a write after the restarts", CONVERGE_TIMEOUT, || {
        let v = attempt.replace(attempt.get() + 1);
        let db = &db;
        async move {
            let args = Args::Positional(vec![Value::Integer(v)]);
            db.exec("INSERT INTO t (n) VALUES (?)", args)
                .await
                .ok()
                .map(|_| v)
        }
    })
    .await;
    acked.insert(first);
    next = first + 1;
    write_until_purged(&cluster, &db, &mut next, &mut acked, &purged).await;
    let installed = log_count(&cluster, lagging, "installed a snapshot");
    cluster.restart(lagging);
    wait_installed(&cluster, lagging, installed).await;
    write(&db, &mut next, 5, &mut acked).await;
    cluster
        .wait_all_acked(&db, "SELECT n FROM t ORDER BY n", &acked)
        .await;
}

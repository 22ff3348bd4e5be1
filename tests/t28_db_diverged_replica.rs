//! A replica whose chain differs from its group's (here: the hash of its
//! head block altered while its miner was down) refuses every block the
//! leader seals. Its miner then answers 503 on `/readyz`, naming the
//! database and the section of `docs/deploy-miner.md` to follow, while the
//! other two stay ready and keep taking writes. Following it (stop the miner,
//! delete the database's folder, start it) rebuilds the replica from its
//! group: it holds the same rows and head, and `/readyz` is 200 again.

mod common;

use std::time::Duration;

use common::cluster::{CONVERGE_TIMEOUT, DbCluster};
use common::poll;
use covenant::client::{Args, ClientOptions, Database, Value};
use tokio::time::Instant;

async fn insert(db: &Database, n: i64) {
    db.exec(
        "INSERT INTO t (n) VALUES (?)",
        Args::Positional(vec![Value::Integer(n)]),
    )
    .await
    .unwrap_or_else(|e| panic!("insert {n}: {e}"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_diverged_replica_is_reported_and_rebuilt_from_its_group() {
    let mut cluster = DbCluster::start(3, false).await;
    let client = cluster.client(ClientOptions::default());
    let db = cluster.open(&client).await;
    db.exec("CREATE TABLE t (n INTEGER NOT NULL)", Args::default())
        .await
        .expect("create table");
    let mut n = 0;
    while n < 10 {
        insert(&db, n).await;
        n += 1;
    }
    cluster.wait_same_head(&db).await;
    let leader = cluster.wait_leader(&db).await;
    let f = (0..3).find(|i| *i != leader).expect("a follower");
    let folder = cluster.miners[f].root_dir().join(db.id().to_hex());

    // Alter the follower's head block while its miner is down.
    cluster.kill(f);
    let conn = rusqlite::Connection::open(folder.join("data.db")).expect("open the replica");
    let altered = conn
        .execute(
            "UPDATE _covenant_blocks SET hash = randomblob(32)
             WHERE count = (SELECT MAX(count) FROM _covenant_blocks)",
            [],
        )
        .expect("alter the head block");
    assert_eq!(altered, 1);
    drop(conn);
    cluster.restart(f);

    // Writes go on (so the leader seals); the follower's miner reports it.
    let deadline = Instant::now() + CONVERGE_TIMEOUT;
    let reason = loop {
        insert(&db, n).await;
        n += 1;
        if let Some((503, body)) = cluster.miners[f].http_status("/readyz")
            && body.contains(&db.id().to_hex())
        {
            break body;
        }
        assert!(
            Instant::now() < deadline,
            "the diverged replica's miner still says {:?}",
            cluster.miners[f].http_status("/readyz")
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    eprintln!("/readyz on the diverged replica: {reason}");
    assert!(reason.contains("A replica that diverged"), "{reason}");
    for i in (0..3).filter(|i| *i != f) {
        assert_eq!(
            cluster.miners[i].http_status("/readyz").map(|s| s.0),
            Some(200),
            "miner {i} holds the group's chain"
        );
    }

    // The guide's way out: stop, delete the database's folder, start.
    cluster.kill(f);
    std::fs::remove_dir_all(&folder).expect("delete the replica's folder");
    cluster.restart(f);
    insert(&db, n).await;
    let rows = cluster
        .wait_converged(&db, "SELECT n FROM t ORDER BY n", |rows| {
            rows.len() == n as usize + 1
        })
        .await;
    assert_eq!(rows.last(), Some(&vec![Value::Integer(n)]));
    cluster.wait_same_head(&db).await;
    poll(
        "the rebuilt replica's miner to be ready",
        CONVERGE_TIMEOUT,
        || async { (cluster.miners[f].http_status("/readyz")?.0 == 200).then_some(()) },
    )
    .await;
}

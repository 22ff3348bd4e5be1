//! Quorum of a strong three-node database: with one follower killed writes
//! go on; with two of the three miners killed (either the leader and a
//! follower, or both followers) writes fail within the client's deadline
//! with an error that names the cause (no quorum) and what to do; after a
//! restart the group heals, and no acknowledged write is lost.

mod common;

use std::collections::BTreeSet;
use std::time::Duration;

use common::cluster::{CONVERGE_TIMEOUT, DbCluster};
use common::poll;
use covenant::client::core::ErrorCode;
use covenant::client::{Args, ClientError, ClientOptions, Database, Value};
use tokio::time::Instant;

/// The client's deadline for one operation.
const OP_TIMEOUT: Duration = Duration::from_secs(4);
/// How long after losing its quorum the database may take to say so clearly
/// (the first write may still be waiting for a majority that is gone).
const NO_QUORUM_DEADLINE: Duration = Duration::from_secs(12);

fn insert(n: i64) -> (&'static str, Args) {
    (
        "INSERT INTO t (n) VALUES (?)",
        Args::Positional(vec![Value::Integer(n)]),
    )
}

/// Whether `e` says there is no quorum and what to do about it.
fn is_clear_no_quorum(e: &ClientError) -> bool {
    let text = e.to_string();
    matches!(e, ClientError::DatabaseUnavailable { .. })
        && e.is(ErrorCode::NoQuorum)
        && e.retryable()
        && text.contains("no quorum")
        && text.contains("restart the stopped miners")
}

/// Writes (values from `n` on) until one fails with a clear no-quorum
/// error; `Err` lists what happened instead when the deadline passes.
/// Writes whose outcome is unknown may yet be applied after the restart.
async fn fails_with_no_quorum(db: &Database, n: &mut i64) -> Result<ClientError, String> {
    let started = Instant::now();
    let mut seen = Vec::new();
    while started.elapsed() < NO_QUORUM_DEADLINE {
        let (sql, args) = insert(*n);
        let attempt = Instant::now();
        let r = db.exec(sql, args).await;
        *n += 1;
        match r {
            Ok(_) => panic!("write {} was acknowledged without a quorum", *n - 1),
            Err(e) if is_clear_no_quorum(&e) => {
                eprintln!("no quorum after {:?}: {e}", started.elapsed());
                return Ok(e);
            }
            Err(e) => seen.push(format!("after {:?}: {e:?}", attempt.elapsed())),
        }
    }
    Err(format!(
        "no clear no-quorum error within {NO_QUORUM_DEADLINE:?}; the writes failed with:\n  {}",
        seen.join("\n  ")
    ))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_quorum_fails_clearly_and_heals() {
    let mut cluster = DbCluster::start(3, false).await;
    let client = cluster.client(ClientOptions {
        op_timeout: OP_TIMEOUT,
        call_timeout: Duration::from_secs(2),
        ..ClientOptions::default()
    });
    let db = cluster.open(&client).await;
    db.exec(
        "CREATE TABLE t (id INTEGER PRIMARY KEY, n INTEGER NOT NULL)",
        Args::default(),
    )
    .await
    .unwrap();
    let mut acked = BTreeSet::new();
    let mut n = 0i64;

    // One follower down: writes go on.
    let leader = cluster.wait_leader(&db).await;
    let follower = (0..3).find(|i| *i != leader).unwrap();
    cluster.kill(follower);
    for _ in 0..10 {
        let (sql, args) = insert(n);
        db.exec(sql, args)
            .await
            .unwrap_or_else(|e| panic!("a write with one follower down failed: {e}"));
        acked.insert(n);
        n += 1;
    }

    // The leader down too: the follower left cannot elect itself.
    cluster.kill(leader);
    fails_with_no_quorum(&db, &mut n)
        .await
        .unwrap_or_else(|e| panic!("with only a follower left: {e}"));
    cluster.restart(leader);
    cluster.restart(follower);
    n = heal(&mut cluster, &db, n, &mut acked).await;

    // Both followers down: the leader alone cannot commit.
    let leader = cluster.wait_leader(&db).await;
    for i in (0..3).filter(|i| *i != leader) {
        cluster.kill(i);
    }
    let leader_alone = fails_with_no_quorum(&db, &mut n).await;
    for i in (0..3).filter(|i| *i != leader) {
        cluster.restart(i);
    }
    heal(&mut cluster, &db, n, &mut acked).await;
    if let Err(e) = leader_alone {
        panic!("with only the leader left: {e}");
    }
}

/// Polls until a write succeeds, then checks every acknowledged write is on
/// every replica exactly once and the chains agree; returns the next value.
async fn heal(
    cluster: &mut DbCluster,
    db: &Database,
    mut n: i64,
    acked: &mut BTreeSet<i64>,
) -> i64 {
    let next = &mut n;
    let done = poll(
        "a write to succeed after the restart",
        CONVERGE_TIMEOUT,
        || {
            let v = *next;
            *next += 1;
            async move {
                let (sql, args) = insert(v);
                db.exec(sql, args).await.ok().map(|_| v)
            }
        },
    )
    .await;
    acked.insert(done);
    cluster
        .wait_all_acked(db, "SELECT n FROM t ORDER BY id", acked)
        .await;
    done + 1
}

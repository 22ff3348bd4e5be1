//! Linearizability across leader failover: client tasks read and write a
//! handful of keys (`UPDATE kv SET v = ? WHERE k = ?`, `SELECT v FROM kv
//! WHERE k = ?`, default read level) on a strong three-node database while
//! the leader miner is killed twice; the recorded history (writes whose
//! answer was lost count as maybe applied) must be linearizable.

mod common;
#[path = "common/linearizability.rs"]
mod linearizability;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use common::cluster::{CONVERGE_TIMEOUT, DbCluster};
use common::poll;
use covenant::client::{Args, ClientError, ClientOptions, Database, Value};
use linearizability::{Action, History, Op};
use tokio::sync::Mutex;

/// Keys of the register map.
const KEYS: u32 = 4;
/// Client tasks.
const CLIENTS: usize = 5;
/// Operations recorded between two events (start, kills, end).
const OPS_PER_PHASE: usize = 70;

/// Whether a failed write certainly changed nothing (the miner ran it and
/// refused it, or it never left the client).
fn certainly_not_applied(e: &ClientError) -> bool {
    matches!(
        e,
        ClientError::Sql { .. }
            | ClientError::PermissionDenied { .. }
            | ClientError::StaleRequest { .. }
            | ClientError::InvalidArgument(_)
    )
}

/// Reads key `k` once; the value, or the error.
async fn read(db: &Database, k: u32) -> Result<i64, ClientError> {
    let r = db
        .query(
            "SELECT v FROM kv WHERE k = ?",
            Args::Positional(vec![Value::Integer(k.into())]),
        )
        .await?;
    match r.rows.as_slice() {
        [row] => match row.as_slice() {
            [Value::Integer(v)] => Ok(*v),
            other => panic!("key {k}: unexpected row {other:?}"),
        },
        other => panic!("key {k}: expected one row, got {other:?}"),
    }
}

/// One client: random reads and writes of random keys until `stop`.
async fn client(
    id: usize,
    db: Arc<Database>,
    history: Arc<History>,
    stop: Arc<AtomicBool>,
    refused: Arc<Mutex<Vec<String>>>,
) {
    let mut rng = 0x9e37_79b9_7f4a_7c15u64 ^ (id as u64 + 1).wrapping_mul(0x2545_f491_4f6c_dd1d);
    let mut next = move || {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        rng
    };
    let mut n = 0i64;
    while !stop.load(Ordering::Relaxed) {
        let key = (next() % u64::from(KEYS)) as u32;
        if next() % 2 == 0 {
            n += 1;
            let value = (id as i64 + 1) * 1_000_000 + n;
            let args = Args::Positional(vec![Value::Integer(value), Value::Integer(key.into())]);
            let call = history.now();
            let r = db.exec("UPDATE kv SET v = ? WHERE k = ?", args).await;
            let ret = history.now();
            let ret = match r {
                Ok(r) => {
                    assert_eq!(r.affected_rows, 1, "key {key} exists");
                    Some(ret)
                }
                Err(e) if certainly_not_applied(&e) => {
                    refused.lock().await.push(e.to_string());
                    continue;
                }
                Err(_) => None,
            };
            history.push(Op {
                client: id,
                key,
                action: Action::Write(value),
                call,
                ret,
            });
        } else {
            let call = history.now();
            let r = read(&db, key).await;
            let ret = history.now();
            if let Ok(v) = r {
                history.push(Op {
                    client: id,
                    key,
                    action: Action::Read(v),
                    call,
                    ret: Some(ret),
                });
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reads_and_writes_stay_linearizable_across_leader_kills() {
    let started = std::time::Instant::now();
    let mut cluster = DbCluster::start(3, false).await;
    eprintln!("cluster up after {:?}", started.elapsed());
    let client_handle = cluster.client(ClientOptions::default());
    let db = Arc::new(cluster.open(&client_handle).await);
    db.exec(
        "CREATE TABLE kv (k INTEGER PRIMARY KEY, v INTEGER NOT NULL)",
        Args::default(),
    )
    .await
    .unwrap();
    for k in 0..KEYS {
        db.exec(
            "INSERT INTO kv (k, v) VALUES (?, 0)",
            Args::Positional(vec![Value::Integer(k.into())]),
        )
        .await
        .unwrap();
    }

    let history = Arc::new(History::new());
    let stop = Arc::new(AtomicBool::new(false));
    let refused = Arc::new(Mutex::new(Vec::new()));
    let tasks: Vec<_> = (0..CLIENTS)
        .map(|id| {
            tokio::spawn(client(
                id,
                db.clone(),
                history.clone(),
                stop.clone(),
                refused.clone(),
            ))
        })
        .collect();
    let h = &history;
    let wait_ops = |n: usize, what: &'static str| async move {
        poll(what, CONVERGE_TIMEOUT, || async move {
            (h.ops().len() >= n).then_some(())
        })
        .await
    };

    wait_ops(OPS_PER_PHASE, "operations before the first kill").await;
    for round in 0..2 {
        let leader = cluster.wait_leader(&db).await;
        eprintln!("kill {round} after {:?}", started.elapsed());
        cluster.kill(leader);
        let seen = history.ops().len();
        wait_ops(seen + OPS_PER_PHASE, "operations after a leader kill").await;
        eprintln!("recovered after {:?}", started.elapsed());
        cluster.restart(leader);
        if round == 0 {
            // All three back before the next kill, so two remain a majority.
            cluster.wait_leader(&db).await;
        }
    }
    eprintln!("stopping after {:?}", started.elapsed());
    stop.store(true, Ordering::Relaxed);
    for t in tasks {
        t.await.unwrap();
    }
    // A last read of every key, with every miner back.
    for k in 0..KEYS {
        let call = history.now();
        let v = read(&db, k).await.unwrap();
        history.push(Op {
            client: CLIENTS,
            key: k,
            action: Action::Read(v),
            call,
            ret: Some(history.now()),
        });
    }

    let refused = refused.lock().await.clone();
    assert!(refused.is_empty(), "writes refused: {refused:?}");
    let ops = history.ops();
    let unknown = ops.iter().filter(|o| o.ret.is_none()).count();
    let writes = ops
        .iter()
        .filter(|o| matches!(o.action, Action::Write(_)))
        .count();
    eprintln!(
        "history: {} operations ({writes} writes, {unknown} with unknown outcome)",
        ops.len()
    );
    assert!(ops.len() >= 3 * OPS_PER_PHASE);
    if let Err(e) = linearizability::check(&ops, 0) {
        panic!("{e}");
    }
}

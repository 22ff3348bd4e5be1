//! A database's chain: blocks appear while it is used and every block
//! verifies and links to its parent; `/debug/vars` carries exactly the
//! seed's keys; after SIGKILL and a restart of the miner every committed
//! row is still there and the chain continues from the same head.

mod common;

use std::time::Duration;

use common::miner::DbNet;
use common::{assert_ok, poll};
use covenant::client::core::sqlchain::block::SqlBlock;
use covenant::client::{Args, Database, Value};

/// Every block from 0 to the head verifies and links to its parent; returns the blocks.
async fn verified_chain(db: &Database) -> Vec<SqlBlock> {
    let head = db
        .head()
        .await
        .expect("db.head")
        .head
        .expect("a sealed block");
    let mut blocks: Vec<SqlBlock> = Vec::new();
    for n in 0..=head.count {
        let block = db.block(n).await.expect("db.block").expect("block exists");
        block.verify().expect("block verifies");
        if let Some(prev) = blocks.last() {
            block
                .verify_follows(prev)
                .expect("block follows its parent");
        }
        blocks.push(block);
    }
    blocks
}

/// Polls until the head's count exceeds `after`, reading meanwhile (blocks
/// are sealed only when there were requests).
async fn wait_for_block_after(db: &Database, after: u64) {
    poll("a new block", Duration::from_secs(20), || async move {
        db.query("SELECT 1", Args::default()).await.ok()?;
        (db.head().await.ok()?.head?.count > after).then_some(())
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn blocks_metrics_and_restart() {
    let mut net = DbNet::start().await;
    let o = net.console(
        &net.user_cfg,
        "CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT); INSERT INTO t (v) VALUES ('a'),('b')",
    );
    assert_ok(&o, "cql console (set-up)");
    let client = net.user_client();
    let db = client.open_database(&net.dsn).await.unwrap();

    // Blocks appear and verify.
    let first = db.head().await.unwrap().head.map_or(0, |h| h.count);
    wait_for_block_after(&db, first + 1).await;
    verified_chain(&db).await;

    // /debug/vars carries exactly the seed's keys.
    let body = net.miner.http_get("/debug/vars").expect("GET /debug/vars");
    let vars: serde_json::Value = serde_json::from_str(&body).expect("JSON");
    let obj = vars.as_object().expect("an object");
    let mut keys: Vec<&str> = obj.keys().map(String::as_str).collect();
    keys.sort_unstable();
    assert_eq!(
        keys,
        [
            "service:miner:addr",
            "service:miner:chain",
            "service:miner:db:count",
            "service:miner:disk:root",
            "service:miner:disk:usage",
            "service:miner:node",
            "service:miner:wallet",
        ]
    );
    assert_eq!(obj["service:miner:addr"], net.miner.addr.as_str());
    assert_eq!(
        obj["service:miner:wallet"],
        net.miner.wallet.to_string().as_str()
    );
    assert_eq!(
        obj["service:miner:node"],
        db.miners()[0].to_string().as_str()
    );
    assert_eq!(obj["service:miner:db:count"], 1);
    let chain = &obj["service:miner:chain"][db.id().to_hex().as_str()];
    assert!(
        chain["head:count"].as_u64().is_some_and(|c| c >= 1),
        "{chain}"
    );

    // SIGKILL and restart: the rows and the chain survive.
    let before = db.head().await.unwrap().head.unwrap();
    net.miner.kill();
    net.miner.spawn();
    let db = client.open_database(&net.dsn).await.unwrap();
    db.wait_ready(Duration::from_secs(30))
        .await
        .unwrap_or_else(|e| {
            panic!(
                "database not ready after restart: {e}\n{}",
                net.miner.log_tail(40)
            )
        });
    let r = db
        .query("SELECT id, v FROM t ORDER BY id", Args::default())
        .await
        .unwrap();
    assert_eq!(
        r.rows,
        [
            [Value::Integer(1), Value::Text("a".into())],
            [Value::Integer(2), Value::Text("b".into())]
        ]
    );
    wait_for_block_after(&db, before.count).await;
    let blocks = verified_chain(&db).await;
    let old = usize::try_from(before.count).unwrap();
    assert_eq!(
        blocks[old].hash().unwrap(),
        before.hash,
        "the old head was kept"
    );
    net.miner.assert_alive();
}

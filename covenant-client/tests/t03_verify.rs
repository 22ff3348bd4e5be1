//! Verifiable history against an in-process network (1 block producer,
//! 1 miner, real TLS on loopback): a client's acknowledged writes are proved
//! in the database's blocks; a trusted head is extended by later heads and a
//! head that does not extend it is refused; a block altered on the miner's
//! disk is caught, naming the block and the check that failed.

use std::future::Future;
use std::path::{Path, PathBuf};
use std::process::Output;
use std::time::{Duration, Instant};

use covenant_client::core::codec;
use covenant_client::core::config::{CONFIG_FILE_NAME, PRIVATE_KEY_FILE_NAME};
use covenant_client::core::crypto::write_key_file;
use covenant_client::core::hash::{Tag, hash};
use covenant_client::core::sqlchain::block::SqlBlock;
use covenant_client::core::sqlchain::ledger;
use covenant_client::{
    Args, Client, ClientError, CreateOptions, Database, Value, VerifiedHead, VerifyOptions,
    VerifyReport,
};
use covenant_miner::localnet::{LocalNet, LocalNetOptions};

/// Polls `f` until it yields a value, for at most 20 s.
async fn eventually<T, F, Fut>(what: &str, mut f: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let end = Instant::now() + Duration::from_secs(20);
    loop {
        if let Some(v) = f().await {
            return v;
        }
        assert!(Instant::now() < end, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// A one-miner network and a one-node database on it, ready for SQL.
async fn network(dir: &Path) -> (LocalNet, Client, Database) {
    let net = LocalNet::start(
        dir,
        LocalNetOptions {
            sql_chain_period: Duration::from_millis(200),
            ..LocalNetOptions::default()
        },
    )
    .await
    .unwrap();
    let client = net.super_client().unwrap();
    net.wait_for_providers(Duration::from_secs(20))
        .await
        .unwrap();
    let id = client
        .create_database(CreateOptions {
            node_count: 1,
            target_miners: net.miner_addresses(),
            ..CreateOptions::default()
        })
        .await
        .unwrap();
    let db = client.open_database(&id.to_dsn()).await.unwrap();
    db.wait_ready(Duration::from_secs(20)).await.unwrap();
    (net, client, db)
}

/// Verifies until every acknowledged write is sealed in a block.
async fn verify_all_sealed(db: &Database, trusted: Option<VerifiedHead>) -> VerifyReport {
    eventually("every acknowledged write to be sealed", || async {
        let report = db
            .verify(VerifyOptions {
                trusted,
                ..VerifyOptions::default()
            })
            .await
            .unwrap();
        // A block sealed between reading the head and locating the writes
        // proves them outside the walked range; ask again until the head
        // covers them.
        let head = report.head.map(|h| h.count);
        let covered = report.proofs.iter().all(|p| Some(p.count) <= head);
        (report.writes_unsealed == 0 && covered).then_some(report)
    })
    .await
}

/// Writes the super client's config and key for `cql` into `dir`; returns the config path.
fn cql_config(net: &LocalNet, dir: &Path) -> PathBuf {
    std::fs::create_dir_all(dir).unwrap();
    let identity = net.super_identity();
    let mut config = net.client_config_for(identity);
    config.set_config_dir(dir);
    let path = dir.join(CONFIG_FILE_NAME);
    config.save(&path).unwrap();
    write_key_file(
        &dir.join(PRIVATE_KEY_FILE_NAME),
        identity.private_key(),
        b"",
    )
    .unwrap();
    path
}

/// Runs `cql verify -config CONFIG ARGS...`.
async fn cql_verify(config: &Path, args: &[&str]) -> (Output, String) {
    let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_cql"))
        .arg("verify")
        .arg("-config")
        .arg(config)
        .args(args)
        .output()
        .await
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out, text)
}

async fn insert(db: &Database, from: i64, to: i64) {
    for i in from..to {
        db.exec(
            "INSERT INTO t (id, name) VALUES (?, ?)",
            Args::Positional(vec![Value::Integer(i), Value::from(format!("row {i}"))]),
        )
        .await
        .unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn writes_are_proved_heads_extend_and_an_altered_block_is_caught() {
    let dir = tempfile::tempdir().unwrap();
    let (mut net, _client, db) = network(dir.path()).await;

    db.exec(
        "CREATE TABLE t (id INTEGER PRIMARY KEY, name TEXT)",
        Args::default(),
    )
    .await
    .unwrap();
    insert(&db, 0, 10).await;
    // A failed write is answered too, and its block records the failure.
    let e = db
        .exec("INSERT INTO missing VALUES (1)", Args::default())
        .await
        .unwrap_err();
    assert!(matches!(e, ClientError::Sql { .. }), "{e}");
    assert_eq!(db.acknowledged_writes().len(), 12);

    // Every acknowledged write is proved in a checked block.
    let first = verify_all_sealed(&db, None).await;
    assert_eq!(first.writes_acknowledged, 12);
    assert_eq!(first.writes_proved(), 12, "{first}");
    let (from, to) = first.range.unwrap();
    assert_eq!(from, 0);
    assert_eq!(first.blocks.len() as u64, to + 1);
    assert!(first.blocks.iter().all(|b| b.parent_checked));
    let proved: Vec<_> = first.proofs.iter().map(|p| p.request).collect();
    assert_eq!(proved.len(), 12);
    for r in db.acknowledged_writes() {
        assert!(proved.contains(&r), "write {r} not proved");
    }
    let text = first.to_string();
    assert!(
        text.contains("12 proved in blocks") && text.contains("verified head: block"),
        "{text}"
    );
    eprintln!("{first}");
    let trusted = first.head.unwrap();
    assert_eq!(trusted.count, to);

    // One miner's copy verifies the same.
    let miner = net.miner_ids()[0];
    let at = db.verify_at(miner, VerifyOptions::default()).await.unwrap();
    assert!(at.range.unwrap().1 >= to);

    // Later heads extend the trusted one; the walk starts from it.
    insert(&db, 10, 15).await;
    let second = verify_all_sealed(&db, Some(trusted)).await;
    assert!(second.extends_trusted());
    assert_eq!(second.range.unwrap().0, trusted.count);
    assert!(second.head.unwrap().count > trusted.count, "{second}");
    assert!(
        second.to_string().contains("the head extends it"),
        "{second}"
    );

    // A trusted head the chain does not extend is refused.
    let forged = VerifiedHead {
        hash: hash(Tag::Message, b"another history"),
        ..trusted
    };
    let e = db
        .verify(VerifyOptions {
            trusted: Some(forged),
            ..VerifyOptions::default()
        })
        .await
        .unwrap_err();
    assert!(
        matches!(&e, ClientError::HistoryRewritten { count, .. } if *count == trusted.count),
        "{e}"
    );
    assert!(
        e.to_string().contains("rewrote or rolled back history"),
        "{e}"
    );
    let ahead = VerifiedHead {
        count: trusted.count + 1_000,
        ..trusted
    };
    let e = db
        .verify(VerifyOptions {
            trusted: Some(ahead),
            ..VerifyOptions::default()
        })
        .await
        .unwrap_err();
    assert!(matches!(e, ClientError::HistoryRewritten { .. }), "{e}");

    // The same from the command line, which keeps the verified head in a file.
    let config = cql_config(&net, &dir.path().join("cql"));
    let dsn = db.dsn();
    let head_file = dir.path().join("cql/.verified").join(db.id().to_hex());
    let (out, text) = cql_verify(&config, &[&dsn]).await;
    assert!(out.status.success(), "{text}");
    assert!(
        text.contains("no verified head")
            && text.contains("merkle root recomputed")
            && text.contains("verification passed"),
        "{text}"
    );
    let saved = VerifiedHead::load(&head_file).unwrap();
    assert!(saved.count >= second.head.unwrap().count, "{text}");
    let (out, text) = cql_verify(&config, &[&dsn]).await;
    assert!(out.status.success(), "{text}");
    assert!(
        text.contains(&format!("trusted head from {}", head_file.display()))
            && text.contains("the head extends it"),
        "{text}"
    );

    // Alter, on the miner's disk, a block holding one of our writes (not the head).
    let victim = first.proofs[3].count;
    assert!(victim < second.head.unwrap().count);
    net.stop_miner(0).await.unwrap();
    let file = dir
        .path()
        .join("miner_0/data")
        .join(db.id().to_hex())
        .join("data.db");
    {
        let conn = rusqlite::Connection::open(&file).unwrap();
        let mut block: SqlBlock = ledger::block_by_count(&conn, victim).unwrap().unwrap();
        let query = &mut block.writes[0].request.body.queries[0];
        query.sql.push_str(" -- altered");
        let altered = codec::encode_versioned(&block).unwrap();
        // Stored whole, as the ledger reads a row without `split`.
        conn.execute(
            "UPDATE _covenant_blocks SET data = ?1, split = NULL WHERE count = ?2",
            rusqlite::params![altered, victim as i64],
        )
        .unwrap();
    }
    net.restart_miner(0).await.unwrap();
    let e = eventually(
        "verification to run against the restarted miner",
        || async {
            match db.verify(VerifyOptions::default()).await {
                Err(e) if e.retryable() => None,
                other => Some(other),
            }
        },
    )
    .await
    .unwrap_err();
    match &e {
        ClientError::Verification { count, what, .. } => {
            assert_eq!(*count, victim, "{e}");
            assert!(what.contains("merkle root"), "{e}");
        }
        other => panic!("expected a verification failure, got {other}"),
    }
    let text = e.to_string();
    eprintln!("{text}");
    assert!(
        text.contains(&format!("block {victim} (height "))
            && text.contains("merkle root")
            && text.contains("altered or is corrupt"),
        "{text}"
    );
    // `cql verify` fails too, with a non-zero exit (from block 0: the saved
    // head is past the altered block).
    let (out, text) = cql_verify(&config, &["-from", "0", &dsn]).await;
    assert!(!out.status.success(), "{text}");
    assert!(
        text.contains(&format!("block {victim} (height ")) && text.contains("merkle root"),
        "{text}"
    );
    assert_eq!(VerifiedHead::load(&head_file).unwrap(), saved);
    net.shutdown().await;
}

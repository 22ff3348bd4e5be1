//! Who may use a database: a user without permission is refused, `cql grant
//! -perm Read` allows reads but not writes, a JSON whitelist allows only its
//! statements, and stale, forged or tampered requests (built by hand with
//! the library) are refused.

mod common;

use std::time::Duration;

use common::miner::DbNet;
use common::{assert_ok, cql, poll, s, stderr};
use covenant::client::core::ErrorCode;
use covenant::client::core::api::database::Query as QueryMethod;
use covenant::client::core::crypto::PrivateKey;
use covenant::client::core::sqlchain::request::SignedRequest;
use covenant::client::{Args, Client, ClientError, Query, QueryKind, Value};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn permissions_and_request_checks() {
    let db = DbNet::start().await;
    let dsn = db.dsn.clone();
    let o = db.console(
        &db.user_cfg,
        "CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT); INSERT INTO t (v) VALUES ('a'),('b')",
    );
    assert_ok(&o, "cql console (set-up)");

    // No permission: refused.
    let (reader_cfg, reader) = db.net.generate_user("reader");
    let o = db.console(&reader_cfg, "SELECT * FROM t");
    assert!(!o.status.success(), "reader without permission could read");
    assert!(stderr(&o).contains("permission denied"), "{}", stderr(&o));

    let grant = |perm: &str| {
        let o = cql(&[
            "grant",
            "-config",
            s(&db.user_cfg),
            "-to-user",
            &reader.to_string(),
            "-to-dsn",
            &dsn,
            "-perm",
            perm,
        ]);
        assert_ok(&o, "cql grant");
    };

    // Read: reads work (once the miner learned the grant), writes do not.
    grant("Read");
    let reader_client = Client::from_config_file(&reader_cfg, b"").unwrap();
    let reader_db = reader_client.open_database(&dsn).await.unwrap();
    let rows = poll(
        "the miner to apply the Read grant",
        Duration::from_secs(20),
        || {
            let db = &reader_db;
            async move {
                db.query("SELECT v FROM t ORDER BY id", Args::default())
                    .await
                    .ok()
            }
        },
    )
    .await;
    assert_eq!(
        rows.rows,
        [[Value::Text("a".into())], [Value::Text("b".into())]]
    );
    let e = reader_db
        .exec("INSERT INTO t (v) VALUES ('c')", Args::default())
        .await
        .unwrap_err();
    assert!(matches!(e, ClientError::PermissionDenied { .. }), "{e}");

    // A JSON whitelist: only the listed statement runs.
    let allowed = "SELECT v FROM t WHERE id = 1";
    grant(&format!(r#"{{"role":"Read","patterns":["{allowed}"]}}"#));
    poll(
        "the miner to apply the whitelist",
        Duration::from_secs(20),
        || {
            let db = &reader_db;
            async move {
                matches!(
                    db.query("SELECT * FROM t", Args::default()).await,
                    Err(ClientError::PermissionDenied { .. })
                )
                .then_some(())
            }
        },
    )
    .await;
    let r = reader_db.query(allowed, Args::default()).await.unwrap();
    assert_eq!(r.rows, [[Value::Text("a".into())]]);

    // Stale, forged and tampered requests are refused.
    let user_client = db.user_client();
    let owner_db = user_client.open_database(&dsn).await.unwrap();
    let good = owner_db
        .sign(QueryKind::Read, vec![Query::new("SELECT 1")])
        .unwrap();
    owner_db.send(&good).await.expect("a fresh request runs");
    let mut stale = good.body.clone();
    stale.timestamp -= 60 * 60 * 1000;
    let stale = user_client.sign_request(stale).unwrap();
    let e = owner_db.send(&stale).await.unwrap_err();
    assert!(matches!(e, ClientError::StaleRequest { .. }), "{e}");
    let forger = PrivateKey::generate().unwrap();
    let forged = SignedRequest::sign(good.body.clone(), &forger).unwrap();
    let e = owner_db.call::<QueryMethod>(&forged).await.unwrap_err();
    assert!(e.is(ErrorCode::BadSignature), "{e}");
    let mut tampered = good.clone();
    tampered.body.queries[0].sql = "SELECT 2".into();
    let e = owner_db.call::<QueryMethod>(&tampered).await.unwrap_err();
    assert!(e.is(ErrorCode::BadSignature), "{e}");
}

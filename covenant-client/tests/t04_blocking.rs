//! The blocking facade from a plain `#[test]` (no async in the test's own
//! code): account operations, create a database, insert and select with
//! `?` parameters, rows into structs with serde, verify the writes. The
//! network itself runs in-process on a runtime of its own.

use std::time::{Duration, Instant};

use covenant_client::blocking::Client;
use covenant_client::core::crypto::PrivateKey;
use covenant_client::{
    Args, ClientError, CreateOptions, Query, QueryKind, RowsExt as _, Token, TxState, Value,
    VerifyOptions,
};
use covenant_miner::localnet::{LocalNet, LocalNetOptions};
use serde::Deserialize;

#[derive(Debug, PartialEq, Deserialize)]
struct Person {
    id: i64,
    name: String,
    email: Option<String>,
    photo: Option<Vec<u8>>,
}

/// Polls `f` until it yields a value, for at most 20 s.
fn eventually<T>(what: &str, mut f: impl FnMut() -> Option<T>) -> T {
    let end = Instant::now() + Duration::from_secs(20);
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(Instant::now() < end, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn blocking_client_creates_writes_reads_and_verifies() {
    let dir = tempfile::tempdir().unwrap();
    let network_rt = tokio::runtime::Runtime::new().unwrap();
    let net = network_rt
        .block_on(LocalNet::start(
            dir.path(),
            LocalNetOptions {
                sql_chain_period: Duration::from_millis(200),
                ..LocalNetOptions::default()
            },
        ))
        .unwrap();
    let me = net.super_identity().clone();
    let client = Client::new(net.client_config_for(&me), me.private_key().clone()).unwrap();
    assert_eq!(client.address(), me.address());

    // Account operations.
    let before = client.balance(Token::Particle).unwrap();
    assert!(before > 0);
    let someone = PrivateKey::generate().unwrap().public_key().address();
    let tx = client.transfer(someone, Token::Particle, 1_000).unwrap();
    let status = client.wait_for_tx(&tx, Duration::from_secs(20)).unwrap();
    assert_eq!(status.state, TxState::Confirmed);
    assert_eq!(
        client
            .account(&someone)
            .unwrap()
            .balances
            .get(Token::Particle),
        1_000
    );

    network_rt
        .block_on(net.wait_for_providers(Duration::from_secs(20)))
        .unwrap();
    let id = client
        .create_database(CreateOptions {
            node_count: 1,
            target_miners: net.miner_addresses(),
            ..CreateOptions::default()
        })
        .unwrap();
    let db = client.open_database(&id.to_dsn()).unwrap();
    assert_eq!(db.id(), id);
    db.wait_ready(Duration::from_secs(20)).unwrap();

    db.exec(
        "CREATE TABLE people (id INTEGER PRIMARY KEY, name TEXT NOT NULL, email TEXT, photo BLOB)",
        Args::default(),
    )
    .unwrap();
    let r = db
        .exec(
            "INSERT INTO people (name, email, photo) VALUES (?, ?, ?)",
            Args::Positional(vec![
                Value::from("Ann"),
                Value::from("ann@example.com"),
                Value::Blob(vec![0, 1, 0]),
            ]),
        )
        .unwrap();
    assert_eq!((r.affected_rows, r.last_insert_id), (1, 1));
    // A batch in one atomic request.
    let results = db
        .execute(
            QueryKind::Write,
            vec![
                Query::positional(
                    "INSERT INTO people (name) VALUES (?)",
                    vec![Value::from("Bo")],
                ),
                Query::named(
                    "INSERT INTO people (name, email) VALUES (:name, :email)",
                    vec![("name", Value::from("Cy")), ("email", Value::Null)],
                ),
            ],
        )
        .unwrap();
    assert_eq!(results.len(), 2);

    let rows = db
        .query(
            "SELECT id, name, email, photo FROM people WHERE id >= ? ORDER BY id",
            Args::Positional(vec![Value::Integer(1)]),
        )
        .unwrap();
    let people: Vec<Person> = rows.rows_as().unwrap();
    assert_eq!(
        people,
        [
            Person {
                id: 1,
                name: "Ann".into(),
                email: Some("ann@example.com".into()),
                photo: Some(vec![0, 1, 0]),
            },
            Person {
                id: 2,
                name: "Bo".into(),
                email: None,
                photo: None,
            },
            Person {
                id: 3,
                name: "Cy".into(),
                email: None,
                photo: None,
            },
        ]
    );
    // A type that does not fit is a typed error naming the column.
    let e: ClientError = rows.rows_as::<(i64, i64, i64, i64)>().unwrap_err().into();
    assert!(e.to_string().contains("`name`"), "{e}");

    // The writes are proved in the database's blocks.
    assert_eq!(db.acknowledged_writes().len(), 3);
    let report = eventually("the writes to be sealed", || {
        let r = db.verify(VerifyOptions::default()).unwrap();
        (r.writes_unsealed == 0).then_some(r)
    });
    assert_eq!(report.writes_proved(), 3, "{report}");

    drop(db);
    drop(client);
    network_rt.block_on(net.shutdown());
}

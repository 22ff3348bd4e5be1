//! The client library against an in-process local network (1 block producer,
//! miners over real TLS on loopback): values of every type round-trip with
//! positional, numbered and named parameters; NULLs, blobs with zero bytes,
//! unicode and an 8 MiB row come back intact; results carry column names,
//! declared types, affected rows and the last insert id; a batch is atomic;
//! failures are the right [`ClientError`] variants; and a write after the
//! leader miner stopped succeeds on the new leader without the caller
//! retrying.
//!
//! What plain SQLite does is the reference: values and messages are compared
//! with an in-memory rusqlite connection running the same SQL.

use std::time::Duration;

use covenant_client::core::ErrorCode;
use covenant_client::core::net::NodeIdentity;
use covenant_client::{
    Args, Client, ClientError, CreateOptions, Database, DatabaseId, Permission, Query, QueryKind,
    QueryResult, Roles, Value, VerifyOptions,
};
use covenant_miner::localnet::{LocalNet, LocalNetOptions};
use tokio::time::Instant;

/// How long a network may take to offer service, elect a leader or apply a grant.
const START: Duration = Duration::from_secs(15);

/// Polls `check` every 50 ms until it yields, failing the test after `timeout`.
async fn poll<T, F, Fut>(what: &str, timeout: Duration, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(v) = check().await {
            return v;
        }
        assert!(
            Instant::now() < deadline,
            "timed out after {timeout:?} waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// A local network with one database on all its miners, owned by the super client.
struct Net {
    net: LocalNet,
    owner: Client,
    db: Database,
    _dir: tempfile::TempDir,
}

impl Net {
    async fn start(miners: usize) -> Net {
        Net::start_with(LocalNetOptions {
            miners,
            ..LocalNetOptions::default()
        })
        .await
    }

    async fn start_with(options: LocalNetOptions) -> Net {
        let miners = options.miners;
        let dir = tempfile::tempdir().unwrap();
        let net = LocalNet::start(dir.path(), options).await.unwrap();
        let owner = net.super_client().unwrap();
        net.wait_for_providers(START).await.unwrap();
        let id = owner
            .create_database(CreateOptions {
                node_count: u16::try_from(miners).unwrap(),
                target_miners: net.miner_addresses(),
                ..CreateOptions::default()
            })
            .await
            .unwrap();
        let db = owner.open_database(&id.to_dsn()).await.unwrap();
        db.wait_ready(START).await.unwrap();
        Net {
            net,
            owner,
            db,
            _dir: dir,
        }
    }

    /// A client for a fresh identity on this network (no tokens, no grants).
    fn stranger(&self) -> Client {
        let id = NodeIdentity::mine_weak(LocalNetOptions::default().difficulty).unwrap();
        Client::new(self.net.client_config_for(&id), id.private_key().clone()).unwrap()
    }
}

fn p(v: Vec<Value>) -> Args {
    Args::Positional(v)
}

fn named(v: &[(&str, Value)]) -> Args {
    Args::Named(v.iter().map(|(k, v)| (k.to_string(), v.clone())).collect())
}

/// Equality that tells `-0.0` from `0.0` and compares NaNs by their bits.
fn same(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Real(x), Value::Real(y)) => x.to_bits() == y.to_bits(),
        _ => a == b,
    }
}

fn same_rows(a: &[Vec<Value>], b: &[Vec<Value>]) -> bool {
    a.len() == b.len()
        && a.iter()
            .zip(b)
            .all(|(x, y)| x.len() == y.len() && x.iter().zip(y).all(|(v, w)| same(v, w)))
}

/// What plain SQLite answers to `sql` with `args` bound positionally.
fn sqlite_says(sql: &str, args: &[Value]) -> Vec<Vec<Value>> {
    let conn = rusqlite::Connection::open_in_memory().unwrap();
    let mut stmt = conn.prepare(sql).unwrap();
    let n = stmt.column_count();
    let params = rusqlite::params_from_iter(args.iter().map(local));
    stmt.query_map(params, |row| {
        (0..n)
            .map(|i| row.get_ref(i).map(remote))
            .collect::<rusqlite::Result<Vec<_>>>()
    })
    .unwrap()
    .collect::<rusqlite::Result<Vec<_>>>()
    .unwrap()
}

fn local(v: &Value) -> rusqlite::types::Value {
    use rusqlite::types::Value as V;
    match v {
        Value::Null => V::Null,
        Value::Integer(i) => V::Integer(*i),
        Value::Real(r) => V::Real(*r),
        Value::Text(t) => V::Text(t.clone()),
        Value::Blob(b) => V::Blob(b.clone()),
    }
}

fn remote(v: rusqlite::types::ValueRef<'_>) -> Value {
    use rusqlite::types::ValueRef as V;
    match v {
        V::Null => Value::Null,
        V::Integer(i) => Value::Integer(i),
        V::Real(r) => Value::Real(r),
        V::Text(t) => Value::Text(String::from_utf8(t.to_vec()).unwrap()),
        V::Blob(b) => Value::Blob(b.to_vec()),
    }
}

/// Every kind of value the tests send: edge integers, reals SQLite treats
/// specially, NULL, blobs with zero bytes, and unicode text.
fn samples() -> Vec<Value> {
    vec![
        Value::Null,
        Value::Integer(0),
        Value::Integer(-1),
        Value::Integer(i64::MIN),
        Value::Integer(i64::MAX),
        Value::Real(0.0),
        Value::Real(-0.0),
        Value::Real(-2.5),
        Value::Real(1.0),
        Value::Real(f64::MIN_POSITIVE),
        Value::Real(-1.5e-300),
        Value::Real(f64::MAX),
        Value::Real(f64::INFINITY),
        Value::Real(f64::NEG_INFINITY),
        Value::Real(f64::NAN),
        Value::Text(String::new()),
        Value::Text("plain ascii".into()),
        Value::Text("日本語のテキスト".into()),
        Value::Text("emoji 🦀👩‍👩‍👧 and combining é".into()),
        Value::Text("עברית مرحبا RTL".into()),
        Value::Text("nul \0 inside".into()),
        Value::Text("quote ' and \" and ; -- not a comment".into()),
        Value::Blob(Vec::new()),
        Value::Blob(vec![0]),
        Value::Blob(vec![0, 0, 1, 0, 255, 0]),
        Value::Blob((0..=255u8).collect()),
    ]
}

async fn rows(db: &Database, sql: &str, args: Args) -> Vec<Vec<Value>> {
    db.query(sql, args).await.unwrap().rows
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn values_results_batches_and_errors() {
    let n = Net::start(1).await;
    let db = &n.db;

    // Parameters: every sample through `?`, `?1` and `:name`, as plain SQLite answers.
    for v in samples() {
        let want = sqlite_says("SELECT ?", std::slice::from_ref(&v));
        let got = rows(db, "SELECT ?", p(vec![v.clone()])).await;
        assert!(
            same_rows(&got, &want),
            "SELECT ? with {v:?}: {got:?} != {want:?}"
        );
        let got = rows(db, "SELECT ?1, typeof(?1)", p(vec![v.clone()])).await;
        let want = sqlite_says("SELECT ?1, typeof(?1)", std::slice::from_ref(&v));
        assert!(same_rows(&got, &want), "?1 with {v:?}: {got:?} != {want:?}");
        for key in ["v", ":v"] {
            let got = rows(
                db,
                "SELECT :v, @w",
                named(&[(key, v.clone()), ("w", v.clone())]),
            )
            .await;
            assert!(
                same_rows(&got, &[vec![want[0][0].clone(), want[0][0].clone()]]),
                "named {key} with {v:?}: {got:?}"
            );
        }
    }
    // SQLite binds NaN as NULL; the infinities stay reals.
    assert_eq!(
        rows(db, "SELECT ?", p(vec![Value::Real(f64::NAN)])).await,
        [[Value::Null]]
    );
    // Numbered parameters reuse and reorder; `$name` works too.
    assert_eq!(
        rows(
            db,
            "SELECT ?2, ?1, ?2",
            p(vec![Value::Integer(1), Value::Text("two".into())])
        )
        .await,
        [[
            Value::Text("two".into()),
            Value::Integer(1),
            Value::Text("two".into())
        ]]
    );
    assert_eq!(
        rows(db, "SELECT $a + 1", named(&[("a", Value::Integer(41))])).await,
        [[Value::Integer(42)]]
    );

    // Stored and read back: exact storage classes in an untyped column,
    // column names and declared types, affected rows, last insert id.
    let r = db
        .exec(
            "CREATE TABLE v (id INTEGER PRIMARY KEY, x, name varchar(255), r REAL, b BLOB)",
            Args::default(),
        )
        .await
        .unwrap();
    assert_eq!(r.affected_rows, 0);
    let mut ids = Vec::new();
    for v in samples() {
        let r = db
            .exec("INSERT INTO v (x) VALUES (?)", p(vec![v]))
            .await
            .unwrap();
        assert_eq!(r.affected_rows, 1);
        ids.push(r.last_insert_id);
    }
    assert_eq!(ids, (1..=samples().len() as i64).collect::<Vec<_>>());
    let got = rows(db, "SELECT x FROM v ORDER BY id", Args::default()).await;
    let want: Vec<Vec<Value>> = samples()
        .into_iter()
        .map(|v| match v {
            Value::Real(r) if r.is_nan() => vec![Value::Null],
            v => vec![v],
        })
        .collect();
    assert!(same_rows(&got, &want), "{got:?}");
    let got = rows(
        db,
        "SELECT count(*) FROM v WHERE x IS NULL",
        Args::default(),
    )
    .await;
    assert_eq!(got, [[Value::Integer(2)]], "NULL and NaN stored as NULL");

    let r: QueryResult = db
        .query(
            "SELECT id, x AS renamed, name, r, b, 1 + 1 AS expr FROM v WHERE id = ?",
            p(vec![Value::Integer(1)]),
        )
        .await
        .unwrap();
    assert_eq!(r.columns, ["id", "renamed", "name", "r", "b", "expr"]);
    assert_eq!(
        r.decl_types,
        ["INTEGER", "", "VARCHAR(255)", "REAL", "BLOB", ""]
    );
    assert_eq!(r.affected_rows, 0);

    let r = db
        .exec(
            "INSERT INTO v (name) VALUES (:a), (:b), (:a)",
            named(&[("a", "one".into()), ("b", "two".into())]),
        )
        .await
        .unwrap();
    assert_eq!(r.affected_rows, 3);
    let last = samples().len() as i64 + 3;
    assert_eq!(r.last_insert_id, last);
    let r = db
        .exec(
            "UPDATE v SET name = upper(name) WHERE name = ?",
            p(vec!["one".into()]),
        )
        .await
        .unwrap();
    assert_eq!(r.affected_rows, 2);
    let r = db
        .exec(
            "DELETE FROM v WHERE id > ?",
            p(vec![Value::Integer(last - 1)]),
        )
        .await
        .unwrap();
    assert_eq!(r.affected_rows, 1);

    // A batch: one result per statement, all or nothing.
    db.exec(
        "CREATE TABLE b (k INTEGER PRIMARY KEY, t TEXT NOT NULL)",
        Args::default(),
    )
    .await
    .unwrap();
    let results = db
        .execute(
            QueryKind::Write,
            vec![
                Query::positional("INSERT INTO b (t) VALUES (?)", vec!["a".into()]),
                Query::positional(
                    "INSERT INTO b (t) VALUES (?), (?)",
                    vec!["b".into(), "c".into()],
                ),
                Query::new("UPDATE b SET t = t || '!'"),
            ],
        )
        .await
        .unwrap();
    let affected: Vec<u64> = results.iter().map(|r| r.affected_rows).collect();
    assert_eq!(affected, [1, 2, 3]);
    let e = db
        .execute(
            QueryKind::Write,
            vec![
                Query::positional("INSERT INTO b (t) VALUES (?)", vec!["d".into()]),
                Query::positional("INSERT INTO b (t) VALUES (?)", vec![Value::Null]),
            ],
        )
        .await
        .unwrap_err();
    assert!(
        matches!(&e, ClientError::Sql { message, .. } if message.contains("NOT NULL constraint failed: b.t")),
        "{e}"
    );
    assert_eq!(
        rows(db, "SELECT count(*) FROM b", Args::default()).await,
        [[Value::Integer(3)]],
        "the batch left a row"
    );
    // Statements separated by `;` in one query are one request too.
    let e = db
        .exec(
            "INSERT INTO b (t) VALUES ('e'); INSERT INTO nosuch VALUES (1)",
            Args::default(),
        )
        .await
        .unwrap_err();
    assert!(matches!(e, ClientError::Sql { .. }), "{e}");
    assert_eq!(
        rows(db, "SELECT count(*) FROM b", Args::default()).await,
        [[Value::Integer(3)]],
        "the batch left a row"
    );

    // SQL errors carry SQLite's own message.
    let sqlite = rusqlite::Connection::open_in_memory()
        .unwrap()
        .prepare("SELECT * FROM nosuch")
        .unwrap_err()
        .to_string();
    assert_eq!(sqlite, "no such table: nosuch");
    let e = db
        .query("SELECT * FROM nosuch", Args::default())
        .await
        .unwrap_err();
    match &e {
        ClientError::Sql { code, message } => {
            assert!(message.contains(&sqlite), "{message}");
            assert_eq!(*code, ErrorCode::SqlExecution.as_u32());
        }
        other => panic!("expected ClientError::Sql, got {other:?}"),
    }
    assert!(!e.retryable());
    assert!(e.to_string().contains("no such table: nosuch"), "{e}");
    let e = db.query("SELEC 1", Args::default()).await.unwrap_err();
    assert!(
        matches!(&e, ClientError::Sql { message, .. } if message.contains("syntax error")),
        "{e}"
    );
    // Too few arguments is an error, not a silent NULL.
    let e = db
        .query("SELECT ?, ?", p(vec![Value::Integer(1)]))
        .await
        .unwrap_err();
    assert!(matches!(e, ClientError::Sql { .. }), "{e:?}");

    // A user without a grant: permission denied, with the miner's reason.
    let stranger = n.stranger();
    let theirs = stranger.open_database(&db.dsn()).await.unwrap();
    let e = theirs.query("SELECT 1", Args::default()).await.unwrap_err();
    assert!(matches!(e, ClientError::PermissionDenied { .. }), "{e:?}");
    assert!(e.is(ErrorCode::PermissionDenied));
    assert!(!e.retryable());
    assert!(e.to_string().starts_with("permission denied"), "{e}");

    // A read-only user reads, and its write is refused.
    n.owner
        .grant(&db.id(), stranger.address(), Permission::new(Roles::READ))
        .await
        .unwrap();
    let got = poll("the miner to apply the Read grant", START, || {
        let theirs = &theirs;
        async move {
            theirs
                .query("SELECT count(*) FROM b", Args::default())
                .await
                .ok()
        }
    })
    .await;
    assert_eq!(got.rows, [[Value::Integer(3)]]);
    let e = theirs
        .exec("INSERT INTO b (t) VALUES ('x')", Args::default())
        .await
        .unwrap_err();
    assert!(matches!(e, ClientError::PermissionDenied { .. }), "{e:?}");

    // A DSN nobody created.
    let random = DatabaseId::from_dsn(&"ab".repeat(32)).unwrap();
    let e = n.owner.open_database(&random.to_dsn()).await.unwrap_err();
    assert!(
        matches!(&e, ClientError::DatabaseNotFound { database } if *database == random.to_hex()),
        "{e:?}"
    );
    assert!(e.is(ErrorCode::UnknownDatabase));
    // Not a DSN at all.
    let e = n
        .owner
        .open_database("covenantsql://nope")
        .await
        .unwrap_err();
    assert!(matches!(e, ClientError::InvalidArgument(_)), "{e:?}");

    // A deadline that has passed before anything was sent: a timeout the caller may retry.
    let e = db.wait_ready(Duration::ZERO).await.unwrap_err();
    assert!(e.is(ErrorCode::Timeout), "{e:?}");
    assert!(e.retryable(), "{e:?}");
    n.net.shutdown().await;
}

/// Takes a few seconds (the root Cargo.toml optimises covenant-core in
/// debug builds: SHA3 hashes the 8 MiB request about twenty times on its way).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_8_mib_row_round_trips() {
    let n = Net::start(3).await;
    let db = &n.db;
    db.exec(
        "CREATE TABLE big (id INTEGER PRIMARY KEY, t TEXT, b BLOB)",
        Args::default(),
    )
    .await
    .unwrap();
    // 8 MiB of multi-byte text (every other character is 3 bytes), and a blob of the same size.
    let unit = "a€";
    let text: String = unit.repeat((8 << 20) / unit.len());
    assert_eq!(text.len(), 8 << 20);
    let blob: Vec<u8> = (0..8u32 << 20).map(|i| (i % 251) as u8).collect();
    let r = db
        .exec(
            "INSERT INTO big (t) VALUES (?)",
            p(vec![Value::Text(text.clone())]),
        )
        .await
        .unwrap();
    assert_eq!(r.affected_rows, 1);
    let got = db
        .query("SELECT t, length(t) FROM big WHERE id = 1", Args::default())
        .await
        .unwrap();
    assert_eq!(
        got.rows[0][1],
        Value::Integer(i64::try_from(text.chars().count()).unwrap())
    );
    assert!(
        got.rows[0][0] == Value::Text(text),
        "the 8 MiB text changed"
    );
    db.exec(
        "INSERT INTO big (b) VALUES (?)",
        p(vec![Value::Blob(blob.clone())]),
    )
    .await
    .unwrap();
    let got = db
        .query("SELECT b FROM big WHERE id = 2", Args::default())
        .await
        .unwrap();
    assert!(
        got.rows[0][0] == Value::Blob(blob),
        "the 8 MiB blob changed"
    );
    // Both rows were replicated, sealed into blocks and can be fetched and verified.
    poll("the big writes to be sealed", START, || async {
        let h = db.head().await.ok()?;
        (h.head.is_some() && h.pending == 0).then_some(())
    })
    .await;
    let report = db.verify(VerifyOptions::default()).await.unwrap();
    assert_eq!(
        report.writes_proved(),
        report.writes_acknowledged,
        "{report}"
    );
    for m in db.miners() {
        let want = report.head;
        poll(
            "every replica to verify up to the same head",
            START,
            || async move {
                let opts = VerifyOptions {
                    to: want.as_ref().map(|h| h.count),
                    ..VerifyOptions::default()
                };
                let r = db.verify_at(*m, opts).await.ok()?;
                (r.head == want).then_some(())
            },
        )
        .await;
    }
    n.net.shutdown().await;
}

/// Two 8 MiB writes in one period (more than the 16 MiB RPC frame together)
/// must still be sealed, replicated, fetched and verified, and the database
/// must keep serving writes: the leader puts them in consecutive blocks, each
/// small enough to fetch.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sixteen_mib_of_writes_in_one_period_are_sealed() {
    // A period long enough for both writes to be pending together.
    let n = Net::start_with(LocalNetOptions {
        miners: 3,
        sql_chain_period: Duration::from_secs(4),
        ..LocalNetOptions::default()
    })
    .await;
    let db = &n.db;
    db.exec("CREATE TABLE big (b BLOB)", Args::default())
        .await
        .unwrap();
    let insert = |byte: u8| {
        db.exec(
            "INSERT INTO big VALUES (?)",
            p(vec![Value::Blob(vec![byte; 8 << 20])]),
        )
    };
    let (a, b) = tokio::join!(insert(1), insert(2));
    a.unwrap();
    b.unwrap();
    poll("the two 8 MiB writes to be sealed", START, || async {
        let h = db.head().await.ok()?;
        (h.head.is_some() && h.pending == 0).then_some(())
    })
    .await;
    let report = db.verify(VerifyOptions::default()).await.unwrap();
    assert_eq!(report.writes_proved(), 3, "{report}");
    let block_of = |request| {
        report
            .proofs
            .iter()
            .find(|w| w.request == request)
            .map(|w| w.count)
    };
    let acked = db.acknowledged_writes();
    assert_eq!(acked.len(), 3);
    let (first, second) = (block_of(acked[1]).unwrap(), block_of(acked[2]).unwrap());
    assert_eq!(
        first.abs_diff(second),
        1,
        "the two big writes should be in consecutive blocks: {report}"
    );
    db.exec("INSERT INTO big VALUES (x'00')", Args::default())
        .await
        .unwrap();
    n.net.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn writes_follow_a_leader_change() {
    let mut n = Net::start(3).await;
    n.db.exec("CREATE TABLE w (n INTEGER PRIMARY KEY)", Args::default())
        .await
        .unwrap();
    for i in 0..3 {
        n.db.exec("INSERT INTO w VALUES (?)", p(vec![Value::Integer(i)]))
            .await
            .unwrap();
    }
    let old = n.db.head().await.unwrap().leader.expect("a leader");
    let at = n
        .net
        .miners
        .iter()
        .position(|m| m.node_id() == old)
        .expect("the leader is one of the miners");
    n.net.stop_miner(at).await.unwrap();

    // The next writes succeed without the caller retrying.
    for i in 3..6 {
        let r =
            n.db.exec("INSERT INTO w VALUES (?)", p(vec![Value::Integer(i)]))
                .await;
        assert!(r.is_ok(), "write {i} after the leader stopped: {r:?}");
    }
    let new = n.db.leader_guess().unwrap();
    assert_ne!(new, old, "still routed to the stopped leader");
    assert_eq!(n.db.head().await.unwrap().leader, Some(new));
    let got = rows(&n.db, "SELECT n FROM w ORDER BY n", Args::default()).await;
    assert_eq!(
        got,
        (0..6).map(|i| vec![Value::Integer(i)]).collect::<Vec<_>>()
    );
    n.net.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_group_elects_its_founding_member_once() {
    // One member (chosen by hashing the members' Raft ids with the
    // database's id) founds the group and leads it; the others join its
    // leader instead of campaigning at the same time.
    let n = Net::start(3).await;
    n.db.exec("CREATE TABLE f (x)", Args::default())
        .await
        .unwrap();
    use covenant_client::core::consensus::{founding::founder, types::raft_id};
    let ids = n.net.miner_ids();
    let founding = founder(ids.iter().map(raft_id), n.db.id().0.as_bytes()).unwrap();
    let founder = ids.into_iter().find(|m| raft_id(m) == founding).unwrap();
    // Had every member campaigned, any of them could lead. (The founder
    // may need a second term if the others were not serving yet.)
    assert_eq!(n.db.head().await.unwrap().leader, Some(founder));
    for m in &n.net.miners {
        let host = m.database(&n.db.id()).expect("every miner hosts it");
        poll("every replica to follow the founder", START, || async {
            (host.leader() == Some(founder)).then_some(())
        })
        .await;
    }
    n.net.shutdown().await;
}

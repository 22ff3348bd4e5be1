//! Deterministic writes under [`DeterminismPolicy::Resolve`]: replicas and
//! replays that run the same stamped requests hold identical rows.

use super::tests::open_with;
use super::*;
use crate::codec;
use crate::crypto::{NodeId, Nonce, PrivateKey};
use crate::hash::Hash;
use crate::sqlchain::block::{BlockEntry, SqlBlock, Stamp};
use crate::sqlchain::request::{Outcome, QueryKind, ReadLevel, RequestBody, SignedRequest};
use crate::types::DatabaseId;

fn stamp(i: u8) -> WriteEnv {
    WriteEnv {
        timestamp_ms: 1_700_000_000_000 + u64::from(i) * 86_399_123,
        seed: [i; 32],
    }
}

fn int(i: i64) -> Value {
    Value::Integer(i)
}

fn text(s: &str) -> Value {
    Value::Text(s.to_owned())
}

/// The first statement's rows of a write request.
fn write_rows(ex: &mut Executor, sql: &str, env: &WriteEnv) -> Vec<Vec<Value>> {
    ex.write(&[Query::new(sql)], env)
        .unwrap()
        .into_iter()
        .next()
        .unwrap()
        .rows
}

/// Ordinary SQL using randomness and the clock: defaults, a trigger, a
/// view, a bound `'now'`, `ORDER BY random()`.
fn workload() -> Vec<Query> {
    let q = Query::new;
    vec![
        q("CREATE TABLE ev (
             id INTEGER PRIMARY KEY,
             kind TEXT NOT NULL,
             r INTEGER DEFAULT (random()),
             id_blob BLOB DEFAULT (randomblob(16)),
             created_at TEXT DEFAULT CURRENT_TIMESTAMP,
             day TEXT DEFAULT CURRENT_DATE,
             at_time TEXT DEFAULT CURRENT_TIME);
           CREATE TABLE log (at TEXT, what TEXT, tag BLOB);
           CREATE TRIGGER ev_log AFTER INSERT ON ev BEGIN
             INSERT INTO log VALUES (strftime('%Y-%m-%d %H:%M:%f', 'now'), NEW.kind, randomblob(4));
           END;
           CREATE VIEW dice AS SELECT abs(random()) % 6 + 1 AS roll"),
        q("INSERT INTO ev (kind) VALUES ('a'), ('b'), ('c')"),
        q("INSERT INTO ev (kind, r, created_at) VALUES ('d', random(), datetime('now', '+1 day'));
           INSERT INTO ev (kind, r, created_at) VALUES ('e', unixepoch(), julianday('now'));
           INSERT INTO ev (kind, r, created_at) VALUES ('f', strftime('%s', 'now'), date('now'))"),
        Query::positional(
            "INSERT INTO ev (kind, created_at, id_blob) VALUES (?, datetime(?), randomblob(?))",
            vec![text("g"), text("now"), int(40)],
        ),
        q("UPDATE ev SET r = abs(random()) % 1000 WHERE kind IN ('a', 'b');
           INSERT INTO ev (kind, r) SELECT 'roll', roll FROM dice"),
        q("DELETE FROM ev WHERE id = (SELECT id FROM ev ORDER BY random() LIMIT 1)"),
    ]
}

/// Runs the workload, one request per query, request `i` stamped with `stamp(first + i)`.
fn run_workload(ex: &mut Executor, first: u8) {
    for (i, q) in (first..).zip(workload()) {
        ex.write(std::slice::from_ref(&q), &stamp(i))
            .unwrap_or_else(|e| panic!("{}: {e}", q.sql));
    }
}

fn table<'d>(dump: &'d Dump, name: &str) -> &'d [Vec<Value>] {
    &dump.iter().find(|(t, _)| t == name).unwrap().1
}

#[test]
fn replicas_and_replays_hold_identical_rows() {
    let (_a, mut one) = open_with(DeterminismPolicy::Resolve);
    let (_b, mut two) = open_with(DeterminismPolicy::Resolve);
    run_workload(&mut one, 1);
    run_workload(&mut two, 1);
    let dump = one.dump().unwrap();
    assert_eq!(two.dump().unwrap(), dump);

    // The values really come from the stamps: 16-byte blobs, varied randoms,
    // one log row per insert with the time of its request.
    let ev = table(&dump, "ev");
    assert_eq!(ev.len(), 7, "{ev:?}");
    let blobs: Vec<&Value> = ev.iter().map(|r| &r[3]).collect();
    assert!(
        blobs
            .iter()
            .all(|b| matches!(b, Value::Blob(x) if x.len() == 16 || x.len() == 40))
    );
    let mut distinct = blobs.clone();
    distinct.dedup();
    assert_eq!(distinct.len(), blobs.len(), "blobs repeat: {blobs:?}");
    let log = table(&dump, "log");
    assert_eq!(log.len(), 8);
    // The first insert is request 2 (Python: datetime.fromtimestamp(1700172798.246, utc)).
    assert_eq!(log[0][0], text("2023-11-16 22:13:18.246"));

    // Replaying the same stamped requests into an empty file reproduces it,
    // also across a restart halfway.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("replay.db");
    let mut replay = Executor::open(&path).unwrap();
    let all = workload();
    for (i, q) in (1u8..).zip(&all[..3]) {
        replay.write(std::slice::from_ref(q), &stamp(i)).unwrap();
    }
    replay.close().unwrap();
    let mut replay = Executor::open(&path).unwrap();
    for (i, q) in (4u8..).zip(&all[3..]) {
        replay.write(std::slice::from_ref(q), &stamp(i)).unwrap();
    }
    assert_eq!(replay.dump().unwrap(), dump);

    // Other stamps give other rows (so the comparison above can fail).
    let (_c, mut other) = open_with(DeterminismPolicy::Resolve);
    run_workload(&mut other, 2);
    let other = other.dump().unwrap();
    let (ev2, log2) = (table(&other, "ev"), table(&other, "log"));
    assert_ne!(ev2.first().map(|r| &r[3]), ev.first().map(|r| &r[3]));
    assert_ne!(log2[0][0], log[0][0]);
}

#[test]
fn same_seed_same_draws_new_seed_new_draws() {
    let (_d, mut ex) = open_with(DeterminismPolicy::Resolve);
    let sql = "SELECT random(), random(), randomblob(8), (SELECT roll FROM (SELECT abs(random()) % 6 + 1 AS roll))";
    let a = write_rows(&mut ex, sql, &stamp(1));
    assert_eq!(write_rows(&mut ex, sql, &stamp(1)), a);
    assert_ne!(a[0][0], a[0][1], "two calls in a request draw twice");
    let b = write_rows(&mut ex, sql, &stamp(2));
    assert_ne!(a[0][0], b[0][0]);
    assert_ne!(a[0][2], b[0][2]);
    // The first draw is the stream's first 8 bytes, as SQLite maps them.
    let mut first = entropy::Stream::new(&[1; 32]);
    assert_eq!(a[0][0], int(first.next_random()));
}

#[test]
fn the_clock_is_the_stamp_everywhere_sqlite_reads_it() {
    let (_d, mut ex) = open_with(DeterminismPolicy::Resolve);
    let env = WriteEnv {
        timestamp_ms: 1_700_000_000_123,
        seed: [0; 32],
    };
    let got = write_rows(
        &mut ex,
        "SELECT CURRENT_TIMESTAMP, CURRENT_DATE, CURRENT_TIME, date('now'), time(), \
         datetime('now', '+1 hour'), strftime('%s', 'now'), strftime('%f'), unixepoch(), \
         unixepoch('now', 'subsec'), julianday('now'), timediff('now', '2023-11-14 00:00:00')",
        &env,
    );
    let julian = clock::julian_ms(env.timestamp_ms) as f64 / 86_400_000.0;
    assert_eq!(
        got,
        vec![vec![
            text("2023-11-14 22:13:20"),
            text("2023-11-14"),
            text("22:13:20"),
            text("2023-11-14"),
            text("22:13:20"),
            text("2023-11-14 23:13:20"),
            text("1700000000"),
            text("20.123"),
            int(1_700_000_000),
            Value::Real(1_700_000_000_123.0 / 1000.0),
            Value::Real(julian),
            text("+0000-00-00 22:13:20.123"),
        ]]
    );
    // Column defaults too, in the same request and through a trigger.
    let res = ex
        .write(
            &[Query::new(
                "CREATE TABLE t (id INTEGER PRIMARY KEY, at TEXT DEFAULT CURRENT_TIMESTAMP, \
                   ms TEXT DEFAULT (strftime('%H:%M:%f', 'now')));
                 CREATE TABLE src (x);
                 CREATE TRIGGER tr AFTER INSERT ON src BEGIN INSERT INTO t (id) VALUES (NEW.x); END;
                 INSERT INTO t DEFAULT VALUES;
                 INSERT INTO src VALUES (10);
                 SELECT id, at, ms FROM t ORDER BY id",
            )],
            &env,
        )
        .unwrap();
    assert_eq!(
        res.last().unwrap().rows,
        vec![
            vec![int(1), text("2023-11-14 22:13:20"), text("22:13:20.123")],
            vec![int(10), text("2023-11-14 22:13:20"), text("22:13:20.123")],
        ]
    );
}

#[test]
fn reads_and_the_executors_own_sql_use_the_real_clock() {
    let (_d, mut ex) = open_with(DeterminismPolicy::Resolve);
    let env = WriteEnv {
        timestamp_ms: 0,
        seed: [0; 32],
    };
    assert_eq!(
        write_rows(&mut ex, "SELECT date('now')", &env),
        vec![vec![text("1970-01-01")]]
    );
    let read = ex.read(&[Query::new("SELECT date('now')")]).unwrap();
    assert_ne!(read[0].rows, vec![vec![text("1970-01-01")]]);
    let own: String =
        ex.with_connection(|c| c.query_row("SELECT date('now')", [], |r| r.get(0)).unwrap());
    assert_ne!(own, "1970-01-01");
    // record runs inside the write: it sees the stamp.
    let (_, seen) = ex
        .write_with(&[Query::new("SELECT 1")], &env, |c, _| {
            c.query_row("SELECT date('now')", [], |r| r.get::<_, String>(0))
                .map_err(SqlError::storage("record"))
        })
        .unwrap();
    assert_eq!(seen, "1970-01-01");
}

#[test]
fn what_no_stamp_can_fix_is_still_refused() {
    let (_d, mut ex) = open_with(DeterminismPolicy::Resolve);
    let env = stamp(1);
    ex.write(&[Query::new("CREATE TABLE t (a, b)")], &env)
        .unwrap();
    for (sql, why) in [
        (
            "INSERT INTO t VALUES (datetime('now', 'localtime'), 1)",
            "time zone",
        ),
        (
            "INSERT INTO t VALUES (datetime('2024-01-01', 'utc'), 1)",
            "time zone",
        ),
        (
            "INSERT INTO t VALUES (total_changes(), 1)",
            "total_changes()",
        ),
        ("INSERT INTO t VALUES (sqlite_version(), 1)", "version"),
        (
            "CREATE VIEW v AS SELECT date('now', 'localtime') AS d",
            "time zone",
        ),
        (
            "CREATE TABLE d (a DEFAULT (datetime('now', 'localtime')))",
            "time zone",
        ),
    ] {
        let err = ex.write(&[Query::new(sql)], &env).unwrap_err();
        assert!(
            matches!(&err, SqlError::NonDeterministic { reason, .. } if reason.contains(why)),
            "{sql}: {err}"
        );
        assert!(
            err.to_string().contains("replayed on every replica"),
            "{err}"
        );
    }
    let err = ex
        .write(
            &[Query::positional(
                "INSERT INTO t VALUES (datetime('now', ?), 1)",
                vec![text("localtime")],
            )],
            &env,
        )
        .unwrap_err();
    assert!(matches!(err, SqlError::NonDeterministic { .. }), "{err}");
    // An inherited default in local time is refused when an insert relies on it.
    ex.with_connection(|c| {
        c.execute_batch("CREATE TABLE loc (a, at DEFAULT (datetime('now', 'localtime')))")
    })
    .unwrap();
    let err = ex
        .write(&[Query::new("INSERT INTO loc (a) VALUES (1)")], &env)
        .unwrap_err();
    assert!(
        matches!(&err, SqlError::NonDeterministic { reason, .. } if reason.contains("column at")),
        "{err}"
    );
    ex.write(
        &[Query::new("INSERT INTO loc VALUES (1, '2024-01-01')")],
        &env,
    )
    .unwrap();
    let rows = ex.read(&[Query::new("SELECT count(*) FROM t")]).unwrap();
    assert_eq!(rows[0].rows, vec![vec![int(0)]]);
}

#[test]
fn the_largest_rowid_is_refused_as_it_makes_rowids_random() {
    let (_d, mut ex) = open_with(DeterminismPolicy::Resolve);
    let env = stamp(1);
    let w = |ex: &mut Executor, sql: &str| ex.write(&[Query::new(sql)], &env);
    w(
        &mut ex,
        "CREATE TABLE m (id INTEGER PRIMARY KEY, v); \
         CREATE TABLE k (id INTEGER PRIMARY KEY, v) WITHOUT ROWID; \
         CREATE TABLE src (x); \
         CREATE TRIGGER up AFTER INSERT ON src BEGIN INSERT INTO m VALUES (NEW.x, 't'); END",
    )
    .unwrap();
    for sql in [
        "INSERT INTO m VALUES (9223372036854775807, 'top'), (NULL, 'next')",
        "INSERT INTO m VALUES (9223372036854775807, 'top')",
        "INSERT INTO m VALUES (1, 'a'); UPDATE m SET id = 9223372036854775807",
        "INSERT INTO src VALUES (9223372036854775807)",
    ] {
        let err = w(&mut ex, sql).unwrap_err();
        assert!(
            matches!(&err, SqlError::NonDeterministic { reason, .. }
                if reason.contains("table m would hold the largest rowid")),
            "{sql}: {err}"
        );
    }
    w(&mut ex, "INSERT INTO m (v) VALUES ('x')").unwrap();
    w(
        &mut ex,
        "INSERT INTO k VALUES (9223372036854775807, 'fine')",
    )
    .unwrap();
    // A table that already holds it (the executor's own SQL wrote it)
    // refuses every insert from then on.
    ex.with_connection(|c| c.execute_batch("INSERT INTO m VALUES (9223372036854775807, 'old')"))
        .unwrap();
    let err = w(&mut ex, "INSERT INTO m (v) VALUES ('y')").unwrap_err();
    assert!(
        matches!(&err, SqlError::NonDeterministic { reason, .. }
            if reason.contains("table m holds the largest rowid")),
        "{err}"
    );
    w(&mut ex, "INSERT INTO k VALUES (1, 'other tables are fine')").unwrap();
    let n = ex.read(&[Query::new("SELECT count(*) FROM m")]).unwrap();
    assert_eq!(n[0].rows, vec![vec![int(2)]]);
}

#[test]
fn a_file_holding_the_largest_rowid_is_checked_from_the_start() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("old.db");
    let allow = ExecutorOptions {
        determinism: DeterminismPolicy::Allow,
        ..Default::default()
    };
    let mut ex = Executor::open_with(&path, allow).unwrap();
    ex.write(
        &[Query::new(
            "CREATE TABLE m (v); INSERT INTO m (rowid, v) VALUES (9223372036854775807, 'top'); \
             INSERT INTO m (v) VALUES ('random rowid')",
        )],
        &stamp(1),
    )
    .unwrap();
    ex.close().unwrap();
    let mut ex = Executor::open(&path).unwrap();
    let err = ex
        .write(&[Query::new("INSERT INTO m (v) VALUES ('x')")], &stamp(2))
        .unwrap_err();
    assert!(matches!(err, SqlError::NonDeterministic { .. }), "{err}");
    ex.write(&[Query::new("DELETE FROM m WHERE v = 'top'")], &stamp(3))
        .unwrap();
}

/// Runs a stamped write as the database's state machine does, returning the block entry.
fn apply(ex: &mut Executor, request: SignedRequest, stamp: Stamp) -> BlockEntry {
    let env = WriteEnv {
        timestamp_ms: stamp.timestamp_ms,
        seed: stamp.seed,
    };
    let outcome = match ex.write(&request.body.queries, &env) {
        Ok(results) => Outcome::Ok(results),
        Err(e) => Outcome::Failed {
            code: e.code().as_u32(),
            message: e.to_string(),
        },
    };
    BlockEntry {
        request,
        response_digest: outcome.digest().unwrap(),
        stamp: Some(stamp),
    }
}

#[test]
fn replaying_a_sealed_block_into_an_empty_database_reproduces_it() {
    let client = PrivateKey::generate().unwrap();
    let miner = PrivateKey::generate().unwrap();
    let database = DatabaseId(Hash::ZERO);
    let (_l, mut leader) = open_with(DeterminismPolicy::Resolve);
    let mut queries = workload();
    // A refused write is in the block too, and must be refused on replay.
    queries.push(Query::new(
        "INSERT INTO ev (kind) VALUES (datetime('now', 'localtime'))",
    ));
    let mut writes = Vec::new();
    for (i, q) in (1u8..).zip(queries) {
        let env = stamp(i);
        let body = RequestBody {
            database,
            user: client.public_key().address(),
            timestamp: env.timestamp_ms,
            sequence: u64::from(i),
            kind: QueryKind::Write,
            read_level: ReadLevel::default(),
            queries: vec![q],
        };
        let request = SignedRequest::sign(body, &client).unwrap();
        let s = Stamp {
            timestamp_ms: env.timestamp_ms,
            seed: env.seed,
        };
        writes.push(apply(&mut leader, request, s));
    }
    let producer = NodeId::compute(&miner.public_key(), &Nonce::default());
    let block = SqlBlock::seal(
        database,
        1,
        1,
        Hash::ZERO,
        0,
        writes,
        vec![],
        producer,
        &miner,
    )
    .unwrap();
    let bytes = codec::encode_versioned(&block).unwrap();

    let block: SqlBlock = codec::decode_versioned(&bytes).unwrap();
    block.verify().unwrap();
    let (_r, mut replica) = open_with(DeterminismPolicy::Resolve);
    for entry in &block.writes {
        let replayed = apply(&mut replica, entry.request.clone(), entry.stamp.unwrap());
        assert_eq!(
            replayed.response_digest, entry.response_digest,
            "{:?}",
            entry.request.body.queries
        );
    }
    assert_eq!(replica.dump().unwrap(), leader.dump().unwrap());
}

#[test]
fn a_rolled_back_schema_change_does_not_hide_a_default() {
    let (_d, mut ex) = open_with(DeterminismPolicy::Resolve);
    let env = stamp(1);
    ex.with_connection(|c| {
        c.execute_batch("CREATE TABLE loc (a, at DEFAULT (datetime('now', 'localtime')))")
    })
    .unwrap();
    ex.write(&[Query::new("CREATE TABLE z (x)")], &env).unwrap();
    let refused = |ex: &mut Executor| {
        let err = ex
            .write(&[Query::new("INSERT INTO loc (a) VALUES (1)")], &env)
            .unwrap_err();
        assert!(
            matches!(&err, SqlError::NonDeterministic { reason, .. } if reason.contains("column at")),
            "{err}"
        );
    };
    refused(&mut ex);
    // Without the column the insert is fine, but the request fails and
    // takes the schema change back with it...
    let err = ex
        .write(
            &[Query::new(
                "ALTER TABLE loc DROP COLUMN at; INSERT INTO loc (a) VALUES (1); SELECT * FROM nope",
            )],
            &env,
        )
        .unwrap_err();
    assert!(err.to_string().contains("nope"), "{err}");
    // ...and later changes bring the schema version back to the one the
    // dropped column's absence was read under (changes that insert no row,
    // so no lookup in between sees the older version): the default still
    // counts.
    for i in 0..3 {
        ex.write(
            &[Query::new(format!("ALTER TABLE z ADD COLUMN y{i}"))],
            &env,
        )
        .unwrap();
        refused(&mut ex);
    }
}

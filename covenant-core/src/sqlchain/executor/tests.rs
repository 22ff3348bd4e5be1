//! Executor behaviour on a real SQLite file in a temporary directory.

use super::*;
use crate::sqlchain::query::Args;

fn open() -> (tempfile::TempDir, Executor) {
    let dir = tempfile::tempdir().unwrap();
    let ex = Executor::open(&dir.path().join("db").join("data.db")).unwrap();
    (dir, ex)
}

pub(super) fn open_with(policy: DeterminismPolicy) -> (tempfile::TempDir, Executor) {
    let dir = tempfile::tempdir().unwrap();
    let opts = ExecutorOptions {
        determinism: policy,
        ..Default::default()
    };
    let ex = Executor::open_with(&dir.path().join("data.db"), opts).unwrap();
    (dir, ex)
}

fn env() -> WriteEnv {
    WriteEnv {
        timestamp_ms: 1_700_000_000_000,
        seed: [7; 32],
    }
}

fn w(ex: &mut Executor, sql: &str) -> Result<Vec<QueryResult>, SqlError> {
    ex.write(&[Query::new(sql)], &env())
}

fn r(ex: &Executor, sql: &str) -> Result<Vec<QueryResult>, SqlError> {
    ex.read(&[Query::new(sql)])
}

fn rows(ex: &Executor, sql: &str) -> Vec<Vec<Value>> {
    r(ex, sql).unwrap().pop().unwrap().rows
}

fn int(i: i64) -> Value {
    Value::Integer(i)
}

fn text(s: &str) -> Value {
    Value::Text(s.to_owned())
}

#[test]
fn round_trip_every_value_type() {
    let (_d, mut ex) = open();
    w(&mut ex, "CREATE TABLE v (id INTEGER PRIMARY KEY, x)").unwrap();
    let big = "ü".repeat(4 << 20); // 8 MiB of UTF-8
    let values = vec![
        Value::Null,
        int(i64::MIN),
        int(i64::MAX),
        Value::Real(-1.5e300),
        Value::Real(0.1),
        text("héllo, 世界 🎉"),
        text(""),
        Value::Blob(vec![0, 1, 0, 255, 0]),
        Value::Blob(vec![]),
        Value::Text(big),
    ];
    for v in &values {
        ex.write(
            &[Query::positional(
                "INSERT INTO v (x) VALUES (?)",
                vec![v.clone()],
            )],
            &env(),
        )
        .unwrap();
    }
    let got: Vec<Value> = rows(&ex, "SELECT x FROM v ORDER BY id")
        .into_iter()
        .map(|mut r| r.remove(0))
        .collect();
    assert_eq!(got, values);
    let types = rows(&ex, "SELECT typeof(x) FROM v ORDER BY id");
    assert_eq!(types[1], vec![text("integer")]);
    assert_eq!(types[7], vec![text("blob")]);
}

#[test]
fn positional_and_named_parameters() {
    let (_d, mut ex) = open();
    w(&mut ex, "CREATE TABLE p (a, b)").unwrap();
    let res = ex
        .write(
            &[Query::positional(
                "INSERT INTO p VALUES (?, ?); INSERT INTO p VALUES (?2, ?1)",
                vec![int(1), int(2), int(3), int(4)],
            )],
            &env(),
        )
        .unwrap();
    assert_eq!(res.len(), 2);
    for (sql, key) in [
        ("INSERT INTO p VALUES (:a, 0)", ":a"),
        ("INSERT INTO p VALUES (@a, 0)", "a"),
        ("INSERT INTO p VALUES ($a, 0)", "$a"),
    ] {
        ex.write(&[Query::named(sql, vec![(key, int(9))])], &env())
            .unwrap();
    }
    assert_eq!(
        rows(&ex, "SELECT a, b FROM p ORDER BY rowid"),
        vec![
            vec![int(1), int(2)],
            vec![int(4), int(3)],
            vec![int(9), int(0)],
            vec![int(9), int(0)],
            vec![int(9), int(0)],
        ]
    );
    let err = ex
        .read(&[Query::positional("SELECT ?", vec![])])
        .unwrap_err();
    assert_eq!(
        err,
        SqlError::ArgCount {
            expected: 1,
            got: 0
        }
    );
}

#[test]
fn multi_statement_write_is_atomic() {
    let (_d, mut ex) = open();
    w(
        &mut ex,
        "CREATE TABLE a (id INTEGER PRIMARY KEY, v TEXT NOT NULL)",
    )
    .unwrap();
    let err = w(
        &mut ex,
        "INSERT INTO a VALUES (1, 'x'); INSERT INTO a VALUES (2, NULL)",
    )
    .unwrap_err();
    assert!(
        matches!(&err, SqlError::Sqlite { message, statement }
        if message.contains("NOT NULL") && statement.contains("(2, NULL)")),
        "{err}"
    );
    assert!(rows(&ex, "SELECT * FROM a").is_empty());
    // Across queries of one request too, and a schema change is undone as well.
    let err = ex
        .write(
            &[
                Query::new("CREATE TABLE b (x)"),
                Query::new("INSERT INTO nope VALUES (1)"),
            ],
            &env(),
        )
        .unwrap_err();
    assert_eq!(err.code(), crate::error::ErrorCode::SqlExecution);
    assert!(rows(&ex, "SELECT name FROM sqlite_master WHERE name = 'b'").is_empty());
    // The writer is usable afterwards.
    w(&mut ex, "INSERT INTO a VALUES (1, 'ok')").unwrap();
    assert_eq!(rows(&ex, "SELECT v FROM a"), vec![vec![text("ok")]]);
}

#[test]
fn results_carry_columns_decl_types_affected_rows_and_last_id() {
    let (_d, mut ex) = open();
    let res = w(
        &mut ex,
        "CREATE TABLE t (id integer PRIMARY KEY, name varchar(255), at datetime, n);
         INSERT INTO t (name) VALUES ('a'), ('b'), ('c');
         UPDATE t SET n = 1 WHERE id > 1;
         SELECT id, name, at, n + 1 AS n1, 7 FROM t WHERE id = 3",
    )
    .unwrap();
    assert_eq!(res.len(), 4);
    assert_eq!(
        (
            res[0].affected_rows,
            res[1].affected_rows,
            res[2].affected_rows
        ),
        (0, 3, 2)
    );
    assert_eq!(res[1].last_insert_id, 3);
    let sel = &res[3];
    assert_eq!(sel.columns, vec!["id", "name", "at", "n1", "7"]);
    assert_eq!(
        sel.decl_types,
        vec!["INTEGER", "VARCHAR(255)", "DATETIME", "", ""]
    );
    assert_eq!(
        sel.rows,
        vec![vec![int(3), text("c"), Value::Null, int(2), int(7)]]
    );
    assert_eq!(sel.affected_rows, 0);
    let read = r(&ex, "SELECT count(*) FROM t").unwrap();
    assert_eq!((read[0].affected_rows, read[0].rows.len()), (0, 1));
}

#[test]
fn reads_refuse_writes_and_change_nothing() {
    let (_d, mut ex) = open();
    w(&mut ex, "CREATE TABLE t (a); INSERT INTO t VALUES (1)").unwrap();
    for sql in [
        "INSERT INTO t VALUES (2)",
        "SELECT 1; DELETE FROM t",
        "UPDATE t SET a = 5",
        "CREATE TABLE u (a)",
        "DROP TABLE t",
        "PRAGMA user_version = 5",
        "CREATE TEMP TABLE x (a)",
    ] {
        let err = r(&ex, sql).unwrap_err();
        assert!(
            matches!(err, SqlError::ReadOnlyViolation { .. }),
            "{sql}: {err}"
        );
        assert!(
            err.to_string()
                .contains("send it as a write request (exec)")
        );
    }
    assert_eq!(rows(&ex, "SELECT a FROM t"), vec![vec![int(1)]]);
    assert_eq!(rows(&ex, "PRAGMA user_version"), vec![vec![int(0)]]);
    // A multi-statement read returns every statement's rows.
    let res = r(&ex, "SELECT 1; SELECT a FROM t").unwrap();
    assert_eq!(res.len(), 2);
}

#[test]
fn another_reader_sees_committed_writes() {
    let (_d, mut ex) = open();
    let reader = ex.reader().unwrap();
    w(&mut ex, "CREATE TABLE t (a); INSERT INTO t VALUES (1)").unwrap();
    let got = std::thread::spawn(move || reader.read(&[Query::new("SELECT a FROM t")]).unwrap())
        .join()
        .unwrap();
    assert_eq!(got[0].rows, vec![vec![int(1)]]);
}

#[test]
fn refuse_policy_refuses_every_non_deterministic_write() {
    let (_d, mut ex) = open_with(DeterminismPolicy::Refuse);
    w(&mut ex, "CREATE TABLE t (a, now_col)").unwrap();
    for sql in [
        "INSERT INTO t VALUES (random(), 1)",
        "INSERT INTO t VALUES (randomblob(8), 1)",
        "INSERT INTO t VALUES (CURRENT_TIMESTAMP, 1)",
        "INSERT INTO t VALUES (CURRENT_DATE, 1)",
        "INSERT INTO t VALUES (CURRENT_TIME, 1)",
        "INSERT INTO t VALUES (julianday('now'), 1)",
        "INSERT INTO t VALUES (date('now'), 1)",
        "INSERT INTO t VALUES (strftime('%s', 'now'), 1)",
        "INSERT INTO t VALUES (unixepoch(), 1)",
        "INSERT INTO t VALUES (datetime('2020-01-01', 'localtime'), 1)",
        "UPDATE t SET a = random()",
        "SELECT random()",
        "CREATE TABLE d (a, at DEFAULT CURRENT_TIMESTAMP)",
        "CREATE VIEW v AS SELECT date('now') AS d",
    ] {
        let err = w(&mut ex, sql).unwrap_err();
        assert!(
            matches!(err, SqlError::NonDeterministic { .. }),
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
                "INSERT INTO t VALUES (date(?), 1)",
                vec![text("now")],
            )],
            &env(),
        )
        .unwrap_err();
    assert!(matches!(err, SqlError::NonDeterministic { .. }), "{err}");
    assert!(rows(&ex, "SELECT * FROM t").is_empty());
    assert!(
        rows(
            &ex,
            "SELECT name FROM sqlite_master WHERE name IN ('d', 'v')"
        )
        .is_empty()
    );
    // Near misses run.
    w(&mut ex, "INSERT INTO t VALUES ('nowhere', 'now')").unwrap();
    w(
        &mut ex,
        "INSERT INTO t (now_col, a) VALUES (date('2024-02-28', '+1 day'), 'random()')",
    )
    .unwrap();
    assert_eq!(
        rows(&ex, "SELECT now_col FROM t WHERE a = 'random()'"),
        vec![vec![text("2024-02-29")]]
    );
    // Reads may use them.
    assert_eq!(
        r(&ex, "SELECT random(), CURRENT_TIMESTAMP").unwrap()[0]
            .rows
            .len(),
        1
    );
}

#[test]
fn refuse_policy_refuses_inherited_clock_defaults() {
    let (_d, mut ex) = open_with(DeterminismPolicy::Refuse);
    // A table from before the rule (or another tool) with a clock default.
    ex.with_connection(|c| {
        c.execute_batch(
            "CREATE TABLE log (id INTEGER PRIMARY KEY, msg, at DEFAULT CURRENT_TIMESTAMP);
             CREATE TABLE src (m);
             CREATE TRIGGER tr AFTER INSERT ON src BEGIN INSERT INTO log (msg, at) VALUES (NEW.m, 0); END;",
        )
    })
    .unwrap();
    for sql in [
        "INSERT INTO log (msg) VALUES ('x')",
        "INSERT INTO log DEFAULT VALUES",
    ] {
        let err = w(&mut ex, sql).unwrap_err();
        assert!(
            matches!(&err, SqlError::NonDeterministic { reason, .. } if reason.contains("at")),
            "{err}"
        );
    }
    // Giving the column a value, or every column, is deterministic.
    w(
        &mut ex,
        "INSERT INTO log (msg, at) VALUES ('x', '2024-01-01')",
    )
    .unwrap();
    w(&mut ex, "INSERT INTO log VALUES (10, 'y', '2024-01-01')").unwrap();
    // A trigger inserting into it is refused conservatively.
    let err = w(&mut ex, "INSERT INTO src VALUES ('z')").unwrap_err();
    assert!(
        matches!(&err, SqlError::NonDeterministic { reason, .. } if reason.contains("trigger")),
        "{err}"
    );
    assert_eq!(rows(&ex, "SELECT count(*) FROM log"), vec![vec![int(2)]]);
}

#[test]
fn allow_policy_runs_them() {
    let dir = tempfile::tempdir().unwrap();
    let opts = ExecutorOptions {
        determinism: DeterminismPolicy::Allow,
        ..Default::default()
    };
    let mut ex = Executor::open_with(&dir.path().join("d.db"), opts).unwrap();
    w(
        &mut ex,
        "CREATE TABLE t (a, at DEFAULT CURRENT_TIMESTAMP); INSERT INTO t (a) VALUES (random())",
    )
    .unwrap();
    assert_eq!(rows(&ex, "SELECT count(at) FROM t"), vec![vec![int(1)]]);
}

#[test]
fn transaction_control_and_dangerous_statements_are_refused() {
    let (_d, mut ex) = open();
    w(&mut ex, "CREATE TABLE t (a)").unwrap();
    for sql in [
        "BEGIN",
        "begin transaction",
        "COMMIT",
        "END",
        "ROLLBACK",
        "SAVEPOINT s",
        "RELEASE s",
    ] {
        let err = w(&mut ex, sql).unwrap_err();
        assert!(
            matches!(err, SqlError::TransactionControl { .. }),
            "{sql}: {err}"
        );
        assert!(err.to_string().contains("one atomic transaction"));
        assert!(
            matches!(r(&ex, sql), Err(SqlError::TransactionControl { .. })),
            "{sql}"
        );
    }
    for sql in [
        "ATTACH DATABASE '/tmp/x.db' AS x",
        "DETACH x",
        "VACUUM",
        "VACUUM INTO '/tmp/copy.db'",
        "SELECT load_extension('/tmp/evil')",
        "PRAGMA journal_mode = DELETE",
        "PRAGMA synchronous = OFF",
        "PRAGMA foreign_keys = OFF",
        "PRAGMA writable_schema = ON",
        "CREATE TEMP TABLE tt (a)",
    ] {
        let err = w(&mut ex, sql).unwrap_err();
        assert!(matches!(err, SqlError::NotAllowed { .. }), "{sql}: {err}");
    }
    // Read-only pragmas work in both.
    assert_eq!(rows(&ex, "PRAGMA foreign_keys"), vec![vec![int(1)]]);
    assert_eq!(r(&ex, "PRAGMA table_info(t)").unwrap()[0].rows.len(), 1);
    assert_eq!(w(&mut ex, "PRAGMA index_list(t)").unwrap()[0].rows.len(), 0);
    w(&mut ex, "PRAGMA user_version = 7").unwrap();
    assert_eq!(rows(&ex, "PRAGMA user_version"), vec![vec![int(7)]]);
}

#[test]
fn chain_tables_are_hidden_from_user_sql() {
    let (_d, mut ex) = open();
    ex.with_connection(|c| {
        c.execute_batch(
            "CREATE TABLE _covenant_blocks (x); INSERT INTO _covenant_blocks VALUES (1)",
        )
    })
    .unwrap();
    w(&mut ex, "CREATE TABLE t (a)").unwrap();
    for sql in [
        "SELECT * FROM _covenant_blocks",
        "DESC _covenant_blocks",
        "PRAGMA table_info(_covenant_blocks)",
    ] {
        assert!(
            matches!(r(&ex, sql), Err(SqlError::NotAllowed { .. })),
            "{sql}"
        );
    }
    for sql in [
        "DELETE FROM _covenant_blocks",
        "DROP TABLE _Covenant_Blocks",
        "CREATE TRIGGER x AFTER INSERT ON _covenant_blocks BEGIN SELECT 1; END",
        "CREATE VIEW peek AS SELECT * FROM _covenant_blocks",
    ] {
        assert!(
            matches!(w(&mut ex, sql), Err(SqlError::NotAllowed { .. })),
            "{sql}"
        );
    }
    assert_eq!(rows(&ex, "SHOW TABLES"), vec![vec![text("t")]]);
    assert!(
        ex.dump()
            .unwrap()
            .iter()
            .all(|(t, _)| !t.starts_with("_covenant"))
    );
}

#[test]
fn show_and_desc_forms() {
    let (_d, mut ex) = open();
    w(
        &mut ex,
        "CREATE TABLE users (id INTEGER PRIMARY KEY, name VARCHAR(64) NOT NULL DEFAULT 'x');
         CREATE INDEX users_name ON users (name);
         CREATE TABLE \"Odd Name\" (a);
         INSERT INTO users (name) VALUES ('a')",
    )
    .unwrap();
    let res = r(&ex, "SHOW TABLES;").unwrap();
    assert_eq!(res[0].columns, vec!["name"]);
    assert_eq!(
        res[0].rows,
        vec![vec![text("Odd Name")], vec![text("users")]]
    );
    let create = r(&ex, "show create table USERS").unwrap();
    assert_eq!(create[0].columns, vec!["sql"]);
    assert!(matches!(&create[0].rows[0][0], Value::Text(s) if s.starts_with("CREATE TABLE users")));
    for sql in ["SHOW INDEX FROM TABLE users", "SHOW INDEX FROM users"] {
        assert_eq!(rows(&ex, sql), vec![vec![text("users_name")]], "{sql}");
    }
    for sql in [
        "SHOW TABLE users",
        "SHOW COLUMNS FROM users",
        "DESC users",
        "describe `users`;",
    ] {
        let res = r(&ex, sql).unwrap();
        assert_eq!(
            res[0].columns,
            vec!["cid", "name", "type", "notnull", "dflt_value", "pk"],
            "{sql}"
        );
        assert_eq!(
            res[0].rows[1][1..4],
            [text("name"), text("VARCHAR(64)"), int(1)],
            "{sql}"
        );
    }
    assert_eq!(r(&ex, "DESC \"Odd Name\"").unwrap()[0].rows.len(), 1);
    assert!(matches!(
        r(&ex, "SHOW DATABASES"),
        Err(SqlError::UnsupportedShow { .. })
    ));
    // A SHOW between other statements, in a write too.
    let res = w(
        &mut ex,
        "INSERT INTO users (name) VALUES ('b'); SHOW TABLES",
    )
    .unwrap();
    assert_eq!(res[1].rows.len(), 2);
}

#[test]
fn last_insert_id_and_changes_start_at_zero_in_every_request() {
    let (_d, mut ex) = open();
    w(&mut ex, "CREATE TABLE t (id INTEGER PRIMARY KEY, v)").unwrap();
    w(&mut ex, "INSERT INTO t (v) VALUES (1), (2)").unwrap();
    let res = w(&mut ex, "SELECT last_insert_rowid(), changes()").unwrap();
    assert_eq!(res[0].rows, vec![vec![int(0), int(0)]]);
    assert_eq!(res[0].last_insert_id, 0);
}

#[test]
fn limits_stop_runaway_requests() {
    let dir = tempfile::tempdir().unwrap();
    let limits = Limits {
        max_rows: 10,
        max_result_bytes: 1000,
        read_timeout: Duration::from_millis(50),
        write_vm_steps: 200_000,
    };
    let opts = ExecutorOptions {
        limits,
        ..Default::default()
    };
    let mut ex = Executor::open_with(&dir.path().join("d.db"), opts).unwrap();
    let endless =
        "WITH RECURSIVE n(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM n) SELECT count(*) FROM n";
    assert!(matches!(r(&ex, endless), Err(SqlError::Timeout { .. })));
    assert!(matches!(
        r(
            &ex,
            "WITH RECURSIVE n(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM n LIMIT 11) SELECT x FROM n"
        ),
        Err(SqlError::TooManyRows { limit: 10 })
    ));
    assert!(matches!(
        r(&ex, "SELECT zeroblob(2000)"),
        Err(SqlError::ResultTooLarge { .. })
    ));
    w(&mut ex, "CREATE TABLE t (x)").unwrap();
    let err = w(&mut ex, &format!("INSERT INTO t {endless}")).unwrap_err();
    assert!(
        matches!(
            err,
            SqlError::StepBudget {
                budget: 200_000,
                ..
            }
        ),
        "{err}"
    );
    // The interrupted write left nothing behind and the executor still works.
    w(&mut ex, "INSERT INTO t VALUES (1)").unwrap();
    assert_eq!(rows(&ex, "SELECT count(*) FROM t"), vec![vec![int(1)]]);
    assert_eq!(r(&ex, "SELECT 1").unwrap()[0].rows, vec![vec![int(1)]]);
}

#[test]
fn empty_requests_and_syntax_errors() {
    let (_d, mut ex) = open();
    assert_eq!(w(&mut ex, "  ;; -- nothing\n"), Err(SqlError::Empty));
    assert_eq!(ex.read(&[]), Err(SqlError::Empty));
    let err = r(&ex, "SELEC 1").unwrap_err();
    assert!(
        matches!(&err, SqlError::Sqlite { message, statement } if message.contains("syntax error") && statement == "SELEC 1")
    );
    // A trigger body with semicolons is one statement.
    w(
        &mut ex,
        "CREATE TABLE a (x); CREATE TABLE b (y);
         CREATE TRIGGER ab AFTER INSERT ON a BEGIN INSERT INTO b VALUES (NEW.x); INSERT INTO b VALUES (NEW.x * 2); END;
         INSERT INTO a VALUES (5)",
    )
    .unwrap();
    assert_eq!(
        rows(&ex, "SELECT y FROM b ORDER BY y"),
        vec![vec![int(5)], vec![int(10)]]
    );
}

#[test]
fn write_with_records_in_the_same_transaction_even_when_the_request_fails() {
    let (_d, mut ex) = open();
    ex.with_connection(|c| c.execute_batch("CREATE TABLE _covenant_log (ok)"))
        .unwrap();
    w(&mut ex, "CREATE TABLE t (a NOT NULL)").unwrap();
    let record = |c: &Connection, out: &Result<Vec<QueryResult>, SqlError>| {
        c.execute("INSERT INTO _covenant_log VALUES (?)", [out.is_ok()])
            .map_err(SqlError::storage("record"))
    };
    let (out, _) = ex
        .write_with(&[Query::new("INSERT INTO t VALUES (1)")], &env(), record)
        .unwrap();
    assert!(out.is_ok());
    let (out, _) = ex
        .write_with(
            &[Query::new(
                "INSERT INTO t VALUES (2); INSERT INTO t VALUES (NULL)",
            )],
            &env(),
            record,
        )
        .unwrap();
    assert!(out.is_err());
    // A failing record undoes everything.
    let failed: Result<(_, ()), SqlError> =
        ex.write_with(&[Query::new("INSERT INTO t VALUES (3)")], &env(), |_, _| {
            Err(SqlError::Storage {
                op: "record",
                message: "disk".into(),
            })
        });
    assert!(failed.is_err());
    assert_eq!(rows(&ex, "SELECT a FROM t"), vec![vec![int(1)]]);
    let log = ex.with_connection(|c| {
        c.prepare("SELECT ok FROM _covenant_log ORDER BY rowid")
            .unwrap()
            .query_map([], |r| r.get::<_, bool>(0))
            .unwrap()
            .collect::<Result<Vec<_>, _>>()
            .unwrap()
    });
    assert_eq!(log, vec![true, false]);
}

#[test]
fn dump_orders_tables_and_rows() {
    let (_d, mut ex) = open();
    w(
        &mut ex,
        "CREATE TABLE z (a); CREATE TABLE k (id TEXT PRIMARY KEY, v) WITHOUT ROWID;
         INSERT INTO z VALUES ('second'); INSERT INTO k VALUES ('b', 2), ('a', 1);
         INSERT INTO z VALUES ('third'); UPDATE z SET a = 'first' WHERE a = 'second'",
    )
    .unwrap();
    let dump = ex.dump().unwrap();
    let names: Vec<&str> = dump.iter().map(|(t, _)| t.as_str()).collect();
    assert_eq!(names, vec!["sqlite_schema", "k", "z"]);
    assert_eq!(
        dump[1].1,
        vec![vec![text("a"), int(1)], vec![text("b"), int(2)]]
    );
    assert_eq!(dump[2].1, vec![vec![text("first")], vec![text("third")]]);
    // Same writes on a second replica give the same dump.
    let (_d2, mut other) = open();
    w(
        &mut other,
        "CREATE TABLE z (a); CREATE TABLE k (id TEXT PRIMARY KEY, v) WITHOUT ROWID;
         INSERT INTO z VALUES ('second'); INSERT INTO k VALUES ('b', 2), ('a', 1);
         INSERT INTO z VALUES ('third'); UPDATE z SET a = 'first' WHERE a = 'second'",
    )
    .unwrap();
    assert_eq!(other.dump().unwrap(), dump);
}

#[test]
fn reopen_keeps_data_and_close_reports() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("d.db");
    let mut ex = Executor::open(&path).unwrap();
    w(&mut ex, "CREATE TABLE t (a); INSERT INTO t VALUES ('kept')").unwrap();
    ex.close().unwrap();
    let ex = Executor::open(&path).unwrap();
    assert_eq!(rows(&ex, "SELECT a FROM t"), vec![vec![text("kept")]]);
    assert_eq!(ex.path(), path.as_path());
    let _ = Args::default();
}

#[test]
fn executor_and_reader_can_move_to_other_threads() {
    fn assert_send<T: Send>() {}
    assert_send::<Executor>();
    assert_send::<Reader>();
}

/// An executor with a small write step budget and a table `t (x INTEGER PRIMARY KEY)`.
fn budgeted_table_t() -> (tempfile::TempDir, Executor) {
    let dir = tempfile::tempdir().unwrap();
    let opts = ExecutorOptions {
        limits: Limits {
            write_vm_steps: 200_000,
            ..Limits::default()
        },
        ..Default::default()
    };
    let mut ex = Executor::open_with(&dir.path().join("d.db"), opts).unwrap();
    w(&mut ex, "CREATE TABLE t (x INTEGER PRIMARY KEY)").unwrap();
    (dir, ex)
}

/// An insert into `t` that runs past the step budget: SQLite drops the whole transaction.
const ENDLESS: &str = "INSERT INTO t WITH RECURSIVE n(x) AS (SELECT 100 UNION ALL SELECT x + 1 FROM n) \
                       SELECT x FROM n";

/// One batch item per request, all with the same stamp.
fn batch_items(reqs: &[Vec<Query>]) -> Vec<BatchItem<'_>> {
    reqs.iter()
        .map(|q| BatchItem {
            queries: q,
            env: env(),
        })
        .collect()
}

#[test]
fn a_batch_gives_the_outcomes_of_running_its_requests_one_by_one() {
    let (_dir, mut ex) = budgeted_table_t();
    let reqs = [
        vec![Query::new("INSERT INTO t VALUES (1)")],
        vec![Query::new("INSERT INTO t VALUES (1)")], // constraint: undoes itself
        vec![Query::new("INSERT INTO t VALUES (2)")],
        vec![Query::new(ENDLESS)], // interrupted: SQLite drops the whole transaction
        vec![Query::new("INSERT INTO t VALUES (3)")],
    ];
    let items = batch_items(&reqs);
    let mut recorded = Vec::new();
    let out = ex
        .write_batch(
            &items,
            |i, _, outcome: &Result<Vec<QueryResult>, SqlError>| {
                recorded.push((i, outcome.is_ok()));
                Ok::<_, SqlError>(i)
            },
            |_| Ok(()),
        )
        .unwrap();
    let oks: Vec<bool> = out.iter().map(|(o, _)| o.is_ok()).collect();
    assert_eq!(oks, vec![true, false, true, false, true]);
    assert!(
        matches!(out[3].0, Err(SqlError::StepBudget { .. })),
        "{:?}",
        out[3].0
    );
    assert_eq!(
        rows(&ex, "SELECT x FROM t ORDER BY x"),
        vec![vec![int(1)], vec![int(2)], vec![int(3)]]
    );
    // The requests before the interrupted one were recorded again on the retry.
    assert_eq!(recorded.last(), Some(&(4, true)));
}

#[test]
fn admit_decides_in_the_batch_transaction_and_is_asked_again_on_a_retry() {
    let (_dir, mut ex) = budgeted_table_t();
    let reqs = [
        vec![Query::new("INSERT INTO t VALUES (1)")],
        vec![Query::new("INSERT INTO t VALUES (2)")], // refused by admit
        vec![Query::new(ENDLESS)],                    // drops the transaction: a retry
        vec![Query::new("INSERT INTO t VALUES (3)")],
    ];
    let items = batch_items(&reqs);
    // (request, rows admit saw in the transaction), in call order.
    let mut asked = Vec::new();
    let out = ex
        .write_batch_admitting(
            &items,
            |i, c| {
                let n: i64 = c
                    .query_row("SELECT COUNT(*) FROM t", [], |r| r.get(0))
                    .map_err(SqlError::storage("count"))?;
                asked.push((i, n));
                Ok::<_, SqlError>(if i == 1 { Err("refused") } else { Ok(()) })
            },
            |i, _, _| Ok::<_, SqlError>(i),
            |_| Ok(()),
        )
        .unwrap();
    let summary: Vec<String> = out
        .iter()
        .map(|b| match b {
            Batched::Ran(o, i) => format!("ran {i} {}", o.is_ok()),
            Batched::Refused(s) => format!("refused {s}"),
        })
        .collect();
    assert_eq!(
        summary,
        vec!["ran 0 true", "refused refused", "ran 2 false", "ran 3 true"]
    );
    // Request 0's row is visible to the next admit; the retry asks again
    // from the start, on a fresh transaction.
    assert_eq!(
        asked,
        vec![(0, 0), (1, 1), (2, 1), (0, 0), (1, 1), (2, 1), (3, 1)]
    );
    assert_eq!(
        rows(&ex, "SELECT x FROM t ORDER BY x"),
        vec![vec![int(1)], vec![int(3)]]
    );
}

#[test]
fn values_larger_than_the_limit_are_refused_and_change_nothing() {
    let (_d, mut ex) = open();
    w(&mut ex, "CREATE TABLE t (x)").unwrap();
    let max = MAX_VALUE_BYTES;
    // A row holds its values and a few bytes of header.
    let fits = max - 16;
    w(&mut ex, &format!("INSERT INTO t VALUES (zeroblob({fits}))")).unwrap();
    for sql in [
        format!("INSERT INTO t VALUES (zeroblob({}))", max + 1),
        format!("INSERT INTO t VALUES (randomblob({}))", max + 1),
        "UPDATE t SET x = x || x".to_string(),
    ] {
        let err = w(&mut ex, &sql).unwrap_err();
        assert!(err.to_string().contains("at most 16 MiB"), "{sql}: {err}");
    }
    let err = r(&ex, &format!("SELECT length(zeroblob({}))", max + 1)).unwrap_err();
    assert!(err.to_string().contains("too big"), "{err}");
    assert_eq!(
        rows(&ex, "SELECT count(*), max(length(x)) FROM t"),
        vec![vec![int(1), int(fits as i64)]]
    );
}

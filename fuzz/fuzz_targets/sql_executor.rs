//! Arbitrary SQL through the miner's SQLite executor, as user requests
//! arrive: `read` and `write` of one `Query` return results or a typed error,
//! never panic; and whatever a request did, the executor keeps serving (a
//! trivial read and write still succeed afterwards). The determinism lexer,
//! statement splitter, SHOW/DESC translation and guards all see this input.
//!
//! One executor per process (a fixture schema on a temporary file, reopened
//! every `RESET_EVERY` runs so the file stays small), with tight limits so a
//! costly statement ends quickly: the limits are the public `Limits`, the
//! same knobs a miner sets, not a weakened module.
//!
//! Input: `[flags][SQL, UTF-8 lossy]`; bit 0 of `flags`: write (1) or read
//! (0); bits 1-2 pick the arguments (none, positional with `'now'`,
//! positional mixed, named).
#![no_main]

use std::path::PathBuf;
use std::sync::{Mutex, OnceLock};
use std::time::Duration;

use covenant_core::sqlchain::executor::{Executor, ExecutorOptions, Limits, SqlError, WriteEnv};
use covenant_core::sqlchain::query::{Args, Query};
use covenant_core::sqlchain::value::Value;
use libfuzzer_sys::fuzz_target;

/// Runs between two fresh databases.
const RESET_EVERY: u64 = 20_000;

const SCHEMA: &str = "
    CREATE TABLE t(a INTEGER PRIMARY KEY, b TEXT, c REAL, d BLOB);
    CREATE TABLE u(x, y DEFAULT 5, FOREIGN KEY (x) REFERENCES t(a));
    CREATE INDEX u_y ON u(y);
    CREATE VIEW v AS SELECT a, b FROM t;
    INSERT INTO t(b, c, d) VALUES ('one', 1.5, x'01'), ('two', NULL, NULL), (NULL, -2, x'');
    INSERT INTO u(x) VALUES (1), (2);
";

struct Fixture {
    dir: PathBuf,
    executor: Option<Executor>,
    runs: u64,
}

impl Fixture {
    fn open(&mut self) -> &mut Executor {
        if self.runs.is_multiple_of(RESET_EVERY) || self.executor.is_none() {
            if let Some(old) = self.executor.take() {
                let _ = old.close();
            }
            let _ = std::fs::remove_dir_all(&self.dir);
            let options = ExecutorOptions {
                limits: Limits {
                    max_rows: 1_000,
                    max_result_bytes: 1 << 20,
                    read_timeout: Duration::from_millis(250),
                    write_vm_steps: 200_000,
                },
                ..ExecutorOptions::default()
            };
            let mut exec = Executor::open_with(&self.dir.join("db.sqlite"), options)
                .expect("the fixture database opens");
            exec.write(&[Query::new(SCHEMA)], &WriteEnv::default())
                .expect("the fixture schema applies");
            self.executor = Some(exec);
        }
        self.runs += 1;
        self.executor.as_mut().expect("opened above")
    }
}

fn fixture() -> &'static Mutex<Fixture> {
    static FIXTURE: OnceLock<Mutex<Fixture>> = OnceLock::new();
    FIXTURE.get_or_init(|| {
        let dir = std::env::temp_dir().join(format!("covenant-fuzz-sql-{}", std::process::id()));
        Mutex::new(Fixture {
            dir,
            executor: None,
            runs: 0,
        })
    })
}

fn describe(e: &SqlError) {
    let _ = (e.code(), e.retryable());
    assert!(!e.to_string().is_empty());
    assert!(
        !matches!(e, SqlError::Storage { .. }),
        "user SQL caused a storage failure: {e}"
    );
}

fuzz_target!(|data: &[u8]| {
    let Some((&flags, rest)) = data.split_first() else {
        return;
    };
    let sql = String::from_utf8_lossy(rest).into_owned();
    let args = match (flags >> 1) & 3 {
        0 => Args::default(),
        1 => Args::Positional(vec![Value::Text("now".into())]),
        2 => Args::Positional(vec![
            Value::Integer(1),
            Value::Null,
            Value::Blob(vec![0; 4]),
        ]),
        _ => Args::Named(vec![
            (":a".into(), Value::Real(0.5)),
            ("b".into(), Value::Text("x".into())),
        ]),
    };
    let query = Query { sql, args };
    let mut guard = fixture().lock().unwrap_or_else(|p| p.into_inner());
    let exec = guard.open();
    let env = WriteEnv {
        timestamp_ms: 1_700_000_000_000,
        seed: [7; 32],
    };
    let outcome = if flags & 1 == 1 {
        exec.write(std::slice::from_ref(&query), &env)
    } else {
        exec.read(std::slice::from_ref(&query))
    };
    if let Err(e) = &outcome {
        describe(e);
    }
    // Whatever the request did, the executor still serves.
    let probe = [Query::new("SELECT 1")];
    if let Err(e) = exec.write(&probe, &env) {
        panic!("after {query:?}, a trivial write fails: {e}");
    }
    if let Err(e) = exec.read(&probe) {
        panic!("after {query:?}, a trivial read fails: {e}");
    }
});

//! Golden SQL cases for the database executor: `tests/sql/<case>.sql` runs
//! against a fresh database and its output must equal `tests/sql/<case>.result`.
//!
//! Writes run under the default policy (`DeterminismPolicy::Resolve`), all
//! with the same `WriteEnv` (time 2023-11-14 22:13:20 UTC, seed `[1; 32]`), so
//! `random()`, `randomblob()` and `'now'` in writes have fixed results here;
//! reads use the real clock, so a case must not print their times.
//!
//! A `.sql` file is a list of requests separated by blank lines. A request
//! whose first line is `-- read` runs as a read request, otherwise as a
//! write. The output echoes each request, then each statement's result (a
//! `|`-separated table with declared types, or `affected_rows`/
//! `last_insert_id`), or the error's code and message.
//!
//! After an intended change, regenerate with
//! `COVENANT_BLESS=1 cargo test -p covenant-core --test sql_golden` and review the diff.

use std::fmt::Write as _;
use std::path::Path;

use covenant_core::sqlchain::executor::{Executor, WriteEnv};
use covenant_core::sqlchain::query::{Query, QueryResult};

fn render(out: &mut String, results: &[QueryResult]) {
    for r in results {
        if r.columns.is_empty() {
            let _ = writeln!(
                out,
                "affected_rows: {}, last_insert_id: {}",
                r.affected_rows, r.last_insert_id
            );
            continue;
        }
        let head: Vec<String> = r
            .columns
            .iter()
            .zip(&r.decl_types)
            .map(|(c, t)| {
                if t.is_empty() {
                    c.clone()
                } else {
                    format!("{c} {t}")
                }
            })
            .collect();
        let _ = writeln!(out, "{}", head.join(" | "));
        for row in &r.rows {
            let cells: Vec<String> = row.iter().map(ToString::to_string).collect();
            let _ = writeln!(out, "{}", cells.join(" | "));
        }
        let _ = writeln!(out, "({} rows)", r.rows.len());
    }
}

fn run_case(sql_path: &Path) -> String {
    let dir = tempfile::tempdir().unwrap();
    let mut ex = Executor::open(&dir.path().join("golden.db")).unwrap();
    let env = WriteEnv {
        timestamp_ms: 1_700_000_000_000,
        seed: [1; 32],
    };
    let text = std::fs::read_to_string(sql_path).unwrap();
    let mut out = String::new();
    for request in text.split("\n\n").map(str::trim).filter(|r| !r.is_empty()) {
        let _ = writeln!(out, "{request}");
        let read = request.starts_with("-- read");
        let queries = [Query::new(request)];
        let outcome = if read {
            ex.read(&queries)
        } else {
            ex.write(&queries, &env)
        };
        match outcome {
            Ok(results) => render(&mut out, &results),
            Err(e) => {
                let _ = writeln!(out, "Error {}: {e}", e.code());
            }
        }
        out.push('\n');
    }
    out
}

#[test]
fn golden_sql_cases() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests")
        .join("sql");
    let bless = std::env::var_os("COVENANT_BLESS").is_some();
    let mut cases: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "sql"))
        .collect();
    cases.sort();
    assert!(!cases.is_empty(), "no cases in {}", dir.display());
    let mut failed = Vec::new();
    for case in &cases {
        let got = run_case(case);
        let expected_path = case.with_extension("result");
        if bless {
            std::fs::write(&expected_path, &got).unwrap();
            continue;
        }
        let expected = std::fs::read_to_string(&expected_path).unwrap_or_default();
        if got != expected {
            eprintln!("--- {} differs; got:\n{got}", case.display());
            failed.push(case.display().to_string());
        }
    }
    assert!(failed.is_empty(), "golden cases differ: {failed:?}");
}

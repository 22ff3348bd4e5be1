//! A console session on one open database: runs [`Item`]s (statements as
//! read or write requests, meta-commands) and prints their results through
//! [`Output`] (the console's stdout, plus the `-out` file). The shell and
//! the non-interactive run share it; neither reads input here.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use covenant_core::sqlchain::query::{Args as SqlArgs, Query, QueryResult};
use covenant_core::sqlchain::request::QueryKind;
use tokio::runtime::Runtime;

use super::input::Item;
use super::meta::{HELP, Meta};
use super::statements::Statement;
use super::table;
use crate::Database;
use crate::cli::error::CliError;

/// Where results go: the console's `out` and, with `-out FILE`, also the file.
pub(crate) struct Output<'a> {
    out: &'a mut dyn Write,
    copy: Option<(PathBuf, std::fs::File)>,
}

impl<'a> Output<'a> {
    /// Results to `out`, and to a new (truncated) `copy` file if given.
    pub(crate) fn new(out: &'a mut dyn Write, copy: Option<&Path>) -> Result<Self, CliError> {
        let copy = match copy {
            Some(path) => {
                let file = std::fs::File::create(path).map_err(|error| CliError::Io {
                    action: "create",
                    path: path.to_path_buf(),
                    error,
                })?;
                Some((path.to_path_buf(), file))
            }
            None => None,
        };
        Ok(Output { out, copy })
    }

    /// Writes `lines` (each with a line break) to both places and flushes.
    pub(crate) fn lines<S: AsRef<str>>(&mut self, lines: &[S]) -> Result<(), CliError> {
        let mut text = String::new();
        for line in lines {
            text.push_str(line.as_ref());
            text.push('\n');
        }
        self.out
            .write_all(text.as_bytes())
            .and_then(|()| self.out.flush())
            .map_err(CliError::Output)?;
        if let Some((path, file)) = &mut self.copy {
            file.write_all(text.as_bytes())
                .map_err(|error| CliError::Io {
                    action: "write",
                    path: path.clone(),
                    error,
                })?;
        }
        Ok(())
    }
}

/// What the session does after an item.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Flow {
    /// Go on with the next item.
    Continue,
    /// `\q`: stop.
    Quit,
    /// Ctrl-C stopped waiting for a statement's answer.
    Interrupted,
}

/// One database's console session; see the module doc.
pub(crate) struct Session<'a> {
    db: &'a Database,
    rt: &'a Runtime,
    out: Output<'a>,
    /// Whether each statement's time is printed (`\timing`).
    timing: bool,
    /// Whether Ctrl-C stops waiting for a statement (the shell) instead of
    /// ending the process (a script).
    interruptible: bool,
}

impl<'a> Session<'a> {
    /// A session on `db`, run on `rt`, printing to `out`.
    pub(crate) fn new(
        db: &'a Database,
        rt: &'a Runtime,
        out: Output<'a>,
        timing: bool,
        interruptible: bool,
    ) -> Self {
        Session {
            db,
            rt,
            out,
            timing,
            interruptible,
        }
    }

    /// Whether statement times are shown.
    pub(crate) fn timing(&self) -> bool {
        self.timing
    }

    /// Runs one item and prints its result.
    pub(crate) fn run(&mut self, item: &Item) -> Result<Flow, CliError> {
        match item {
            Item::Sql(st) => self.statement(st),
            Item::Meta(m) => self.meta(m),
            Item::BadMeta(e) => Err(CliError::InvalidArgument {
                flag: "meta-command",
                reason: e.to_string(),
            }),
        }
    }

    fn meta(&mut self, m: &Meta) -> Result<Flow, CliError> {
        match m {
            Meta::Quit => return Ok(Flow::Quit),
            Meta::Help => self.out.lines(&HELP.lines().collect::<Vec<_>>())?,
            Meta::ListTables => return self.statement(&Statement::new("SHOW TABLES".into())),
            Meta::Describe(table) => {
                return self.statement(&Statement::new(format!("DESC {table}")));
            }
            Meta::Timing(set) => {
                self.timing = set.unwrap_or(!self.timing);
                let state = if self.timing { "on" } else { "off" };
                self.out.lines(&[format!("Timing is {state}.")])?;
            }
        }
        Ok(Flow::Continue)
    }

    /// Sends `st` as one read or write request and prints its result.
    fn statement(&mut self, st: &Statement) -> Result<Flow, CliError> {
        let kind = if st.read {
            QueryKind::Read
        } else {
            QueryKind::Write
        };
        let query = Query {
            sql: st.sql.clone(),
            args: SqlArgs::default(),
        };
        let started = Instant::now();
        let request = self.db.execute(kind, vec![query]);
        let answer = if self.interruptible {
            self.rt.block_on(async {
                tokio::select! {
                    r = request => Some(r),
                    () = ctrl_c() => None,
                }
            })
        } else {
            Some(self.rt.block_on(request))
        };
        let Some(results) = answer else {
            return Ok(Flow::Interrupted);
        };
        let elapsed = started.elapsed();
        let results = results?;
        let mut lines = Vec::new();
        for r in &results {
            lines.extend(result_lines(st, r));
        }
        if self.timing {
            lines.push(time_line(elapsed));
        }
        self.out.lines(&lines)?;
        Ok(Flow::Continue)
    }
}

/// Resolves on Ctrl-C; never if the handler cannot be installed.
async fn ctrl_c() {
    if tokio::signal::ctrl_c().await.is_err() {
        std::future::pending::<()>().await;
    }
}

/// The lines showing `r`, the result of `st`: a table for anything that
/// returns columns (or any read), else the write summary.
fn result_lines(st: &Statement, r: &QueryResult) -> Vec<String> {
    if st.read || !r.columns.is_empty() {
        table::read_lines(r)
    } else {
        vec![table::write_line(r)]
    }
}

/// `Time: 3.2 ms`.
fn time_line(elapsed: Duration) -> String {
    format!("Time: {:.1} ms", elapsed.as_secs_f64() * 1000.0)
}

/// `e` and its causes joined by ": ", skipping a cause the text already holds.
pub(crate) fn error_text(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut cause = e.source();
    while let Some(c) = cause {
        let part = c.to_string();
        if !text.contains(&part) {
            text.push_str(": ");
            text.push_str(&part);
        }
        cause = c.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn output_goes_to_both_places() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("out.txt");
        let mut buf = Vec::new();
        {
            let mut out = Output::new(&mut buf, Some(&file)).unwrap();
            out.lines(&["a", "b"]).unwrap();
            out.lines(&[String::from("c")]).unwrap();
        }
        assert_eq!(String::from_utf8(buf).unwrap(), "a\nb\nc\n");
        assert_eq!(std::fs::read_to_string(&file).unwrap(), "a\nb\nc\n");
        let e = Output::new(&mut Vec::new(), Some(&dir.path().join("no/such/dir/x")))
            .err()
            .unwrap();
        assert!(e.to_string().contains("cannot create"), "{e}");
    }

    #[test]
    fn results_show_as_tables_or_summaries() {
        let rows = QueryResult {
            columns: vec!["id".into()],
            rows: vec![vec![covenant_core::sqlchain::value::Value::Integer(7)]],
            ..QueryResult::default()
        };
        let write = Statement::new("INSERT INTO t VALUES (7) RETURNING id".into());
        assert!(!write.read);
        // A write that returns rows shows them.
        assert_eq!(result_lines(&write, &rows), ["id", "--", "7", "(1 row)"]);
        let done = QueryResult {
            affected_rows: 1,
            last_insert_id: 7,
            ..QueryResult::default()
        };
        assert_eq!(
            result_lines(&write, &done),
            ["OK, 1 rows affected, last insert id 7"]
        );
        assert_eq!(time_line(Duration::from_micros(3_240)), "Time: 3.2 ms");
    }

    #[test]
    fn error_text_joins_causes_once() {
        #[derive(Debug, thiserror::Error)]
        #[error("outer")]
        struct Outer(#[source] std::io::Error);
        let e = Outer(std::io::Error::other("inner"));
        assert_eq!(error_text(&e), "outer: inner");
    }
}

//! `cql console`: run SQL against a database. Non-interactive for now:
//! `-command SQL` or SQL on stdin (when stdin is not a terminal). The input
//! is split into statements (`split`); each runs as its own read or write
//! request and its result is printed (`table`). The first failure stops the
//! run with a non-zero exit. The interactive shell will reuse
//! [`Session::run_statement`] line by line.

mod split;
mod table;

use std::io::{IsTerminal as _, Read as _, Write};
use std::path::{Path, PathBuf};

use clap::Args;
use covenant_core::sqlchain::query::{Args as SqlArgs, Query};
use covenant_core::sqlchain::request::QueryKind;

use super::error::CliError;
use super::{GlobalArgs, config_path, dsn, open_client, runtime};
use crate::Database;

/// Arguments of `cql console`.
#[derive(Debug, Args)]
pub(crate) struct ConsoleArgs {
    /// The database: covenantsql://<id> or the bare id
    #[arg(value_name = "DSN")]
    dsn: Option<String>,
    /// SQL to run (statements separated by `;`); without it, SQL is read from stdin
    #[arg(long, value_name = "SQL")]
    command: Option<String>,
    /// Also write the output to this file
    #[arg(long, value_name = "FILE")]
    out: Option<PathBuf>,
    /// Config file [default: ~/.cql/config.yaml]
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
}

/// What the user must do when there is nothing to run non-interactively.
fn needs_input(config: &Path, what: &str) -> Result<CliError, CliError> {
    let known = dsn::list(&dsn::dsn_file(config))?;
    let list = if known.is_empty() {
        "no database recorded in .dsn yet (create one with `cql create -db-node 1`)".to_string()
    } else {
        format!("databases recorded in .dsn:\n  {}", known.join("\n  "))
    };
    Ok(CliError::InvalidArgument {
        flag: "DSN",
        reason: format!("{what}; the interactive console comes later; {list}"),
    })
}

pub(crate) fn run(
    args: &ConsoleArgs,
    global: &GlobalArgs,
    out: &mut dyn Write,
) -> Result<(), CliError> {
    let path = config_path(args.config.as_deref())?;
    let Some(dsn_arg) = &args.dsn else {
        return Err(needs_input(
            &path,
            "give the database's DSN, e.g. `cql console -command \"SELECT 1\" covenantsql://<id>`",
        )?);
    };
    let id = dsn::parse_dsn("DSN", dsn_arg)?;
    let sql = match &args.command {
        Some(c) => c.clone(),
        None if !std::io::stdin().is_terminal() => {
            let mut s = String::new();
            std::io::stdin()
                .read_to_string(&mut s)
                .map_err(|error| CliError::Terminal { error })?;
            s
        }
        None => {
            return Err(needs_input(&path, "give SQL with -command or on stdin")?);
        }
    };
    let statements = split::statements(&sql);
    let client = open_client(Some(&path), global)?;
    let rt = runtime()?;
    let db = rt.block_on(client.open_database(&id.to_dsn()))?;
    let mut session = Session {
        db: &db,
        transcript: String::new(),
    };
    let mut result = Ok(());
    for st in &statements {
        let lines = rt.block_on(session.run_statement(st));
        match lines {
            Ok(lines) => {
                for line in lines {
                    writeln!(out, "{line}").map_err(CliError::Output)?;
                    session.transcript.push_str(&line);
                    session.transcript.push('\n');
                }
            }
            Err(e) => {
                result = Err(e);
                break;
            }
        }
    }
    if let Some(file) = &args.out {
        std::fs::write(file, &session.transcript).map_err(|error| CliError::Io {
            action: "write",
            path: file.clone(),
            error,
        })?;
    }
    result
}

/// A console's connection and what it printed so far.
struct Session<'a> {
    db: &'a Database,
    transcript: String,
}

impl Session<'_> {
    /// Runs one statement; returns the lines showing its result.
    async fn run_statement(&self, st: &split::Statement) -> Result<Vec<String>, CliError> {
        let kind = if st.read {
            QueryKind::Read
        } else {
            QueryKind::Write
        };
        let query = Query {
            sql: st.sql.clone(),
            args: SqlArgs::default(),
        };
        let results = self.db.execute(kind, vec![query]).await?;
        let mut lines = Vec::new();
        for r in &results {
            if st.read {
                lines.extend(table::read_lines(r));
            } else {
                lines.push(table::write_line(r));
            }
        }
        Ok(lines)
    }
}

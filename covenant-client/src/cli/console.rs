//! `cql console [-config F] [-command SQL] [-out FILE] [DSN]`: SQL against
//! one database.
//!
//! - Interactive when stdin is a terminal and there is no `-command`: a
//!   line-editing shell with history (`repl`), statements over several
//!   lines, meta-commands (`meta`), timing on by default.
//! - Otherwise the SQL of `-command` or of stdin runs as a script (`batch`),
//!   timing off, stopping at the first failure with a non-zero exit.
//! - Without a DSN, the databases in the `.dsn` file are offered (`pick`).
//!
//! Both modes read through `input` (statements split by `statements`,
//! which also tells reads from writes) and run through `session`, which
//! prints results (`table`) to stdout and the `-out` file. Must not import
//! node-side modules (chain, consensus); the network is reached only
//! through [`crate::Client`].

mod batch;
mod input;
mod meta;
mod pick;
mod repl;
mod session;
mod statements;
mod table;

use std::io::{IsTerminal as _, Write};
use std::path::{Path, PathBuf};

use clap::Args;
use tokio::runtime::Runtime;

use super::error::CliError;
use super::{GlobalArgs, config_path, dsn, open_client, runtime};
use session::{Output, Session};

/// The history file's name, in the config's folder.
const HISTORY_FILE: &str = ".console_history";

/// Arguments of `cql console`.
#[derive(Debug, Args)]
pub(crate) struct ConsoleArgs {
    /// The database: covenantsql://<id> or the bare id [default: pick one from .dsn]
    #[arg(value_name = "DSN")]
    dsn: Option<String>,
    /// SQL to run (statements separated by `;`); without it, SQL is read
    /// from stdin, or an interactive shell starts when stdin is a terminal
    #[arg(long, value_name = "SQL")]
    command: Option<String>,
    /// Also write the results to this file
    #[arg(long, value_name = "FILE")]
    out: Option<PathBuf>,
    /// Config file [default: ~/.cql/config.yaml]
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
}

/// The history file for the config at `config`.
fn history_file(config: &Path) -> PathBuf {
    config
        .parent()
        .unwrap_or_else(|| Path::new("."))
        .join(HISTORY_FILE)
}

/// A runtime for the shell: one worker thread keeps the connections served
/// while the user types.
fn shell_runtime() -> Result<Runtime, CliError> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .map_err(CliError::Runtime)
}

pub(crate) fn run(
    args: &ConsoleArgs,
    global: &GlobalArgs,
    out: &mut dyn Write,
) -> Result<(), CliError> {
    let path = config_path(args.config.as_deref())?;
    let terminal = std::io::stdin().is_terminal();
    let interactive = terminal && args.command.is_none();
    let dsn_text = match &args.dsn {
        Some(d) => d.clone(),
        None => pick::choose(
            &path,
            terminal,
            &mut std::io::stdin().lock(),
            &mut std::io::stderr(),
        )?,
    };
    // The DSN may carry settings (`?use_follower=true`); check it all here.
    let id = dsn::parse_dsn("DSN", dsn_text.split('?').next().unwrap_or(""))?;
    dsn_text
        .parse::<crate::Dsn>()
        .map_err(|e| CliError::InvalidArgument {
            flag: "DSN",
            reason: e.to_string(),
        })?;
    let client = open_client(Some(&path), global)?;
    let rt = if interactive {
        shell_runtime()?
    } else {
        runtime()?
    };
    if interactive {
        eprintln!("Connecting to {} ...", id.to_dsn());
    }
    let db = rt.block_on(client.open_database(dsn_text.trim()))?;
    let output = Output::new(out, args.out.as_deref())?;
    let mut session = Session::new(&db, &rt, output, interactive, interactive);
    if interactive {
        eprintln!(
            "Connected to {} as {}.\nType \\? for help, \\q to quit. Timing is {}.",
            id.to_dsn(),
            client.address(),
            if session.timing() { "on" } else { "off" }
        );
        let hex = id.to_hex();
        let name = hex.get(..8).unwrap_or(&hex);
        return repl::run(&mut session, name, Some(&history_file(&path)));
    }
    match &args.command {
        Some(sql) => batch::run(&mut session, batch::Source::Text(sql)),
        None => batch::run(
            &mut session,
            batch::Source::Reader(&mut std::io::stdin().lock()),
        ),
    }
}

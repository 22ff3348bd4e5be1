//! `cql drop DSN`: drop a database (a Super user only), wait until the
//! main chain confirms it, and forget it in `.dsn`.

use std::io::Write;
use std::path::PathBuf;

use clap::Args;

use super::error::CliError;
use super::{GlobalArgs, config_path, dsn, open_client, runtime};

/// Arguments of `cql drop`.
#[derive(Debug, Args)]
pub(crate) struct DropArgs {
    /// The database: covenantsql://<id> or the bare id
    #[arg(value_name = "DSN")]
    dsn: String,
    /// Config file [default: ~/.cql/config.yaml]
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
}

pub(crate) fn run(
    args: &DropArgs,
    global: &GlobalArgs,
    out: &mut dyn Write,
) -> Result<(), CliError> {
    let id = dsn::parse_dsn("DSN", &args.dsn)?;
    let path = config_path(args.config.as_deref())?;
    let client = open_client(Some(&path), global)?;
    let hash = runtime()?.block_on(client.drop_database(&id))?;
    dsn::remove(&dsn::dsn_file(&path), &id.to_dsn())?;
    writeln!(out, "tx hash: {hash}")
        .and_then(|()| writeln!(out, "database {} dropped", id.to_dsn()))
        .map_err(CliError::Output)
}

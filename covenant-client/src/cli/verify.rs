//! `cql verify [-config F] [-from N] [-to N] [-trusted-head FILE] [-miner
//! NODE_ID] DSN`: check a database's blocks (producer signatures, parent
//! links, merkle roots, request signatures) and print what was checked.
//!
//! The last verified head is kept in a file (default
//! `<config dir>/.verified/<database id>`); the next run starts from it and
//! fails if the chain no longer extends it. All checking is
//! [`Database::verify`](crate::Database::verify); this module only picks
//! the files and prints.

use std::io::Write;
use std::path::{Path, PathBuf};

use clap::Args;
use covenant_core::crypto::NodeId;
use covenant_core::types::DatabaseId;

use super::error::CliError;
use super::{GlobalArgs, config_path, dsn, open_client, runtime};
use crate::verify::{VerifiedHead, VerifyOptions};

/// The folder, beside the config, holding one verified-head file per database.
pub(crate) const VERIFIED_DIR: &str = ".verified";

/// Arguments of `cql verify`.
#[derive(Debug, Args)]
pub(crate) struct VerifyArgs {
    /// The database: covenantsql://<id> or the bare id
    #[arg(value_name = "DSN")]
    dsn: String,
    /// Config file [default: ~/.cql/config.yaml]
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
    /// First block to check [default: the last verified head's block, else 0]
    #[arg(long, value_name = "N")]
    from: Option<u64>,
    /// Last block to check [default: the current head]
    #[arg(long, value_name = "N")]
    to: Option<u64>,
    /// Verified-head file to check against and update [default: <config dir>/.verified/<database id>]
    #[arg(long = "trusted-head", value_name = "FILE")]
    trusted_head: Option<PathBuf>,
    /// Check this miner's copy (its node id) instead of the leader's
    #[arg(long, value_name = "NODE_ID")]
    miner: Option<String>,
    /// Do not save the verified head
    #[arg(long = "no-save")]
    no_save: bool,
    /// List every block checked (by default the middle of a long range is elided)
    #[arg(long)]
    all: bool,
}

/// The default verified-head file of database `id` for the config at `config`.
pub(crate) fn head_file(config: &Path, id: &DatabaseId) -> PathBuf {
    config
        .parent()
        .unwrap_or_else(|| Path::new("."))
        .join(VERIFIED_DIR)
        .join(id.to_hex())
}

pub(crate) fn run(
    args: &VerifyArgs,
    global: &GlobalArgs,
    out: &mut dyn Write,
) -> Result<(), CliError> {
    let id = dsn::parse_dsn("DSN", &args.dsn)?;
    let miner = args
        .miner
        .as_deref()
        .map(|m| {
            m.parse::<NodeId>().map_err(|e| CliError::InvalidArgument {
                flag: "-miner",
                reason: format!("{m:?} is not a node id: {e}"),
            })
        })
        .transpose()?;
    let path = config_path(args.config.as_deref())?;
    let file = args
        .trusted_head
        .clone()
        .unwrap_or_else(|| head_file(&path, &id));
    let trusted = VerifiedHead::load_if_exists(&file)?;
    if let Some(t) = &trusted
        && t.database != id
    {
        return Err(CliError::InvalidArgument {
            flag: "-trusted-head",
            reason: format!(
                "{} holds a head of database {}, not {}",
                file.display(),
                t.database.to_dsn(),
                id.to_dsn()
            ),
        });
    }
    let mut lines = Vec::new();
    match &trusted {
        Some(t) => lines.push(format!(
            "trusted head from {}: block {} {}",
            file.display(),
            t.count,
            t.hash
        )),
        None => lines.push(format!(
            "no verified head in {} yet: checking from block {}",
            file.display(),
            args.from.unwrap_or(0)
        )),
    }
    for line in lines {
        writeln!(out, "{line}").map_err(CliError::Output)?;
    }
    let client = open_client(Some(&path), global)?;
    let rt = runtime()?;
    let opts = VerifyOptions {
        from: args.from,
        to: args.to,
        trusted,
    };
    let report = rt.block_on(async {
        let db = client.open_database(&id.to_dsn()).await?;
        match miner {
            Some(m) => db.verify_at(m, opts).await,
            None => db.verify(opts).await,
        }
    })?;
    let text = if args.all {
        format!("{report:#}")
    } else {
        report.to_string()
    };
    write!(out, "{text}").map_err(CliError::Output)?;
    if let Some(head) = report.head.filter(|_| !args.no_save) {
        head.save(&file)?;
        writeln!(out, "saved the verified head to {}", file.display()).map_err(CliError::Output)?;
    }
    writeln!(out, "verification passed").map_err(CliError::Output)
}

#[cfg(test)]
mod tests {
    use super::*;
    use covenant_core::hash::{Tag, hash};

    #[test]
    fn the_head_file_sits_beside_the_config() {
        let id = DatabaseId(hash(Tag::Message, b"db"));
        let f = head_file(Path::new("/x/config.yaml"), &id);
        assert_eq!(f, Path::new("/x/.verified").join(id.to_hex()));
    }

    #[test]
    fn a_bad_miner_id_is_refused_before_anything_runs() {
        let mut out = Vec::new();
        let hex = "ab".repeat(32);
        let e = crate::cli::run(
            [
                "cql",
                "verify",
                "-miner",
                "nope",
                "-config",
                "/nonexistent/c.yaml",
                &hex,
            ],
            &mut out,
        )
        .unwrap_err();
        assert_eq!(e.exit_code(), 2, "{e}");
        assert!(e.to_string().contains("-miner"), "{e}");
    }
}

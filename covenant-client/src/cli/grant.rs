//! `cql grant`: set a user's permission on a database (a Super user only)
//! and wait until the main chain confirms it. `-perm` is a role
//! (`Read`, `Write`, `Super`, `Admin`, `Void`, or a set like `Read,Write`)
//! or JSON with a SQL whitelist: `{"role":"Read","patterns":["SELECT * FROM t"]}`.

use std::io::Write;
use std::path::PathBuf;
use std::str::FromStr as _;

use clap::Args;
use covenant_core::crypto::Address;
use covenant_core::types::Permission;

use super::error::CliError;
use super::{GlobalArgs, dsn, open_client, runtime};

/// Arguments of `cql grant`.
#[derive(Debug, Args)]
pub(crate) struct GrantArgs {
    /// The user's wallet address
    #[arg(long = "to-user", value_name = "ADDR")]
    to_user: String,
    /// The database: covenantsql://<id> or the bare id
    #[arg(long = "to-dsn", value_name = "DSN")]
    to_dsn: String,
    /// Read, Write, Super, Admin, Void, or JSON {"role":"Read","patterns":["SQL", ...]}
    #[arg(long, value_name = "PERM")]
    perm: String,
    /// Config file [default: ~/.cql/config.yaml]
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
}

fn check(
    args: &GrantArgs,
) -> Result<(Address, covenant_core::types::DatabaseId, Permission), CliError> {
    let user = Address::from_str(args.to_user.trim()).map_err(|_| CliError::InvalidArgument {
        flag: "-to-user",
        reason: format!(
            "{:?} is not a wallet address: expected 64 hex characters",
            args.to_user
        ),
    })?;
    let id = dsn::parse_dsn("-to-dsn", &args.to_dsn)?;
    let perm = args
        .perm
        .parse::<Permission>()
        .map_err(|e| CliError::InvalidArgument {
            flag: "-perm",
            reason: e.to_string(),
        })?;
    Ok((user, id, perm))
}

pub(crate) fn run(
    args: &GrantArgs,
    global: &GlobalArgs,
    out: &mut dyn Write,
) -> Result<(), CliError> {
    let (user, id, perm) = check(args)?;
    let client = open_client(args.config.as_deref(), global)?;
    let hash = runtime()?.block_on(client.grant(&id, user, perm.clone()))?;
    writeln!(out, "tx hash: {hash}")
        .and_then(|()| writeln!(out, "granted {perm} on {} to user {user}", id.to_dsn()))
        .map_err(CliError::Output)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(perm: &str) -> GrantArgs {
        GrantArgs {
            to_user: "ab".repeat(32),
            to_dsn: format!("covenantsql://{}", "cd".repeat(32)),
            perm: perm.to_string(),
            config: None,
        }
    }

    #[test]
    fn permissions_parse_plain_and_json() {
        let (_, _, p) = check(&args("Read")).unwrap();
        assert!(p.can_read() && !p.can_write());
        let (_, _, p) = check(&args(r#"{"role":"Read","patterns":["SELECT * FROM t"]}"#)).unwrap();
        assert_eq!(p.patterns, ["SELECT * FROM t"]);
        let e = check(&args("Owner")).unwrap_err();
        assert!(e.to_string().contains("-perm"), "{e}");
        let mut bad = args("Read");
        bad.to_user = "nope".into();
        assert!(check(&bad).unwrap_err().to_string().contains("-to-user"));
    }
}

//! `cql create`: ask the main chain for a database on `-db-node` miners,
//! print its DSN as the seed does and record it in `.dsn`; with
//! `-wait-tx-confirm` also wait until the database answers queries.

use std::io::Write;
use std::path::PathBuf;
use std::str::FromStr as _;
use std::time::Duration;

use clap::Args;
use covenant_core::crypto::Address;
use covenant_core::types::{Consistency, Token, parse_amount};

use super::error::CliError;
use super::{GlobalArgs, config_path, dsn, open_client, runtime};
use crate::CreateOptions;

/// Arguments of `cql create`.
#[derive(Debug, Args)]
pub(crate) struct CreateArgs {
    /// How many miners replicate the database
    #[arg(long = "db-node", value_name = "N", default_value_t = 1)]
    db_node: u16,
    /// Miners to use first: wallet addresses separated by commas ("a, b")
    #[arg(long = "db-target-miners", value_name = "ADDRS")]
    db_target_miners: Option<String>,
    /// Replicate with eventual instead of strong consistency
    #[arg(long = "db-eventual-consistency")]
    db_eventual_consistency: bool,
    /// Advance payment moved into the database's account
    #[arg(
        long = "db-advance-payment",
        value_name = "N",
        default_value = "20000000"
    )]
    db_advance_payment: String,
    /// Highest price per billed row accepted
    #[arg(long = "db-gas-price", value_name = "N", default_value = "1")]
    db_gas_price: String,
    /// The token the database is paid in
    #[arg(long, value_name = "TOKEN", default_value = "Particle")]
    token: String,
    /// Also wait until the database answers queries
    #[arg(long = "wait-tx-confirm")]
    wait_tx_confirm: bool,
    /// How long to wait for the creation and, with -wait-tx-confirm, for the database
    #[arg(long = "wait-timeout", value_name = "DURATION", default_value = "60s", value_parser = humantime::parse_duration)]
    wait_timeout: Duration,
    /// Config file [default: ~/.cql/config.yaml]
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
}

fn invalid(flag: &'static str, reason: String) -> CliError {
    CliError::InvalidArgument { flag, reason }
}

/// Parses `-db-target-miners`: comma-separated wallet addresses, spaces allowed.
fn parse_targets(given: Option<&str>) -> Result<Vec<Address>, CliError> {
    let Some(text) = given else {
        return Ok(Vec::new());
    };
    text.split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|s| {
            Address::from_str(s).map_err(|_| {
                invalid(
                    "-db-target-miners",
                    format!("{s:?} is not a wallet address: expected 64 hex characters"),
                )
            })
        })
        .collect()
}

/// Checks every argument; nothing has been sent yet.
fn check(args: &CreateArgs) -> Result<CreateOptions, CliError> {
    if args.db_node == 0 {
        return Err(invalid("-db-node", "must be at least 1".to_string()));
    }
    let advance_payment = parse_amount(&args.db_advance_payment)
        .map_err(|e| invalid("-db-advance-payment", e.to_string()))?;
    let gas_price = args
        .db_gas_price
        .trim()
        .parse::<u64>()
        .map_err(|e| invalid("-db-gas-price", e.to_string()))?;
    let token = args
        .token
        .parse::<Token>()
        .map_err(|e| invalid("-token", e.to_string()))?;
    Ok(CreateOptions {
        node_count: args.db_node,
        target_miners: parse_targets(args.db_target_miners.as_deref())?,
        consistency: if args.db_eventual_consistency {
            Consistency::Eventual
        } else {
            Consistency::Strong
        },
        advance_payment,
        gas_price,
        token,
        confirm_timeout: args.wait_timeout,
    })
}

pub(crate) fn run(
    args: &CreateArgs,
    global: &GlobalArgs,
    out: &mut dyn Write,
) -> Result<(), CliError> {
    let opts = check(args)?;
    let path = config_path(args.config.as_deref())?;
    let client = open_client(Some(&path), global)?;
    let rt = runtime()?;
    let out_err = CliError::Output;
    eprintln!("create database requested; waiting for the main chain to confirm it...");
    let id = rt.block_on(client.create_database(opts))?;
    let dsn = id.to_dsn();
    dsn::add(&dsn::dsn_file(&path), &dsn)?;
    writeln!(out, "The newly created database is: \"{dsn}\"").map_err(out_err)?;
    writeln!(
        out,
        "The connecting string beginning with 'covenantsql://' could be used as a dsn for `cql console`"
    )
    .map_err(out_err)?;
    writeln!(
        out,
        " or any command, or by the client library (Client::open_database)"
    )
    .map_err(out_err)?;
    out.flush().map_err(out_err)?;
    if args.wait_tx_confirm {
        eprintln!("waiting for the database's miners to serve it...");
        rt.block_on(async {
            let db = client.open_database(&dsn).await?;
            db.wait_ready(args.wait_timeout).await
        })?;
        eprintln!("database {dsn} is ready");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const A: &str = "eb46e59dbc4eac17b51762f051937a0082ff7423742866e4baff6c6053719451";
    const B: &str = "00a8d2d5a5d6d3e3c0d3eaf5b3b8e0c5a0f6e2d0c6b2a4d8e0f2a4c6e8a0b2c4";

    fn args(node: u16, targets: Option<&str>) -> CreateArgs {
        CreateArgs {
            db_node: node,
            db_target_miners: targets.map(str::to_string),
            db_eventual_consistency: false,
            db_advance_payment: "20000000".into(),
            db_gas_price: "1".into(),
            token: "Particle".into(),
            wait_tx_confirm: false,
            wait_timeout: Duration::from_secs(1),
            config: None,
        }
    }

    #[test]
    fn target_miners_split_on_commas_with_spaces() {
        let t = parse_targets(Some(&format!("{A}, {B} ,"))).unwrap();
        assert_eq!(t.len(), 2);
        assert_eq!(t[0].to_string(), A);
        assert_eq!(t[1].to_string(), B);
        assert!(parse_targets(None).unwrap().is_empty());
        let e = parse_targets(Some("abc")).unwrap_err();
        assert!(e.to_string().contains("-db-target-miners"), "{e}");
    }

    #[test]
    fn arguments_are_checked_before_sending() {
        let o = check(&args(3, Some(A))).unwrap();
        assert_eq!(o.node_count, 3);
        assert_eq!(o.consistency, Consistency::Strong);
        assert_eq!(o.target_miners.len(), 1);
        let e = check(&args(0, None)).unwrap_err();
        assert!(e.to_string().contains("-db-node"), "{e}");
        let mut bad = args(1, None);
        bad.token = "Dogecoin".into();
        assert_eq!(check(&bad).unwrap_err().exit_code(), 2);
    }
}

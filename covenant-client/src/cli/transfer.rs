//! `cql transfer`: send tokens to a wallet or a database, optionally waiting until the
//! transfer is confirmed in a block and applied.
//!
//! Every argument is checked before anything is sent. With
//! `-wait-tx-confirm` the command succeeds only when the transfer is
//! confirmed *and* applied; a refused, failed, expired or lost transfer is
//! an error with the reason. `-to-dsn` pays into a database's account
//! instead of a wallet (an advance payment, or settling arrears).

use std::io::{IsTerminal as _, Write};
use std::path::PathBuf;
use std::str::FromStr as _;
use std::time::Duration;

use clap::Args;
use covenant_core::api::chain::TxStatus;
use covenant_core::crypto::Address;
use covenant_core::types::{Token, parse_amount};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use super::error::CliError;
use super::{GlobalArgs, open_client, runtime};

/// Arguments of `cql transfer`.
#[derive(Debug, Args)]
pub(crate) struct TransferArgs {
    /// Wallet address (64 hex characters) that receives the tokens
    #[arg(
        long = "to-user",
        value_name = "ADDR",
        required_unless_present = "to_dsn",
        conflicts_with = "to_dsn"
    )]
    to_user: Option<String>,
    /// Database (covenantsql://<id>) whose account receives the tokens (its advance payment)
    #[arg(long = "to-dsn", value_name = "DSN")]
    to_dsn: Option<String>,
    /// How many token units to send (a positive whole number)
    #[arg(long, value_name = "N", allow_hyphen_values = true)]
    amount: String,
    /// Which token: Particle, Wave, Ether, EOS or Bitcoin
    #[arg(long, value_name = "TOKEN", default_value = "Particle")]
    token: String,
    /// Wait until the transfer is confirmed in a block and applied
    #[arg(long = "wait-tx-confirm")]
    wait_tx_confirm: bool,
    /// How long -wait-tx-confirm waits
    #[arg(long = "wait-timeout", value_name = "DURATION", default_value = "60s", value_parser = humantime::parse_duration)]
    wait_timeout: Duration,
    /// Config file [default: ~/.cql/config.yaml]
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
}

/// Who receives a transfer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Recipient {
    /// A wallet (`-to-user`).
    User(Address),
    /// A database's account (`-to-dsn`).
    Database(covenant_core::types::DatabaseId),
}

impl Recipient {
    fn address(self) -> Address {
        match self {
            Recipient::User(a) => a,
            Recipient::Database(id) => id.account_address(),
        }
    }
}

/// The checked arguments.
#[derive(Debug, PartialEq, Eq)]
struct Transfer {
    to: Recipient,
    amount: u64,
    token: Token,
}

fn invalid(flag: &'static str, reason: String) -> CliError {
    CliError::InvalidArgument { flag, reason }
}

/// Checks every argument; nothing has been sent yet.
fn check(args: &TransferArgs) -> Result<Transfer, CliError> {
    let to = match (&args.to_dsn, &args.to_user) {
        (Some(d), _) => Recipient::Database(super::dsn::parse_dsn("-to-dsn", d)?),
        (None, Some(user)) => Recipient::User(check_user(user)?),
        (None, None) => {
            return Err(invalid(
                "-to-user",
                "give the receiving wallet (-to-user) or database (-to-dsn)".to_string(),
            ));
        }
    };
    let amount = parse_amount(&args.amount).map_err(|e| invalid("-amount", e.to_string()))?;
    let token = args
        .token
        .parse::<Token>()
        .map_err(|e| invalid("-token", e.to_string()))?;
    Ok(Transfer { to, amount, token })
}

/// Checks the `-to-user` wallet address.
fn check_user(given: &str) -> Result<Address, CliError> {
    let given = given.trim();
    Address::from_str(given).map_err(|_| {
        invalid(
            "-to-user",
            format!(
                "{given:?} is not a wallet address: expected 64 hex characters \
                 (the `Wallet address` that `cql generate` prints)"
            ),
        )
    })
}

pub(crate) fn run(
    args: &TransferArgs,
    global: &GlobalArgs,
    out: &mut dyn Write,
) -> Result<(), CliError> {
    let transfer = check(args)?;
    let client = open_client(args.config.as_deref(), global)?;
    let rt = runtime()?;
    let out_err = CliError::Output;
    let hash =
        rt.block_on(client.transfer(transfer.to.address(), transfer.token, transfer.amount))?;
    tracing::info!(tx_hash = %hash, "transaction sent");
    writeln!(out, "tx hash: {hash}").map_err(out_err)?;
    if args.wait_tx_confirm {
        out.flush().map_err(out_err)?;
        let bar = spinner(&hash.to_string());
        let show = |s: &TxStatus| bar.set_message(progress_message(&hash.to_string(), s));
        let result = rt.block_on(client.wait_for_tx(&hash, args.wait_timeout, show));
        bar.finish_and_clear();
        let status = result?;
        writeln!(
            out,
            "wait transaction confirmation tx_hash={hash} tx_state={}",
            status.state
        )
        .map_err(out_err)?;
        writeln!(out, "transaction {hash} confirmed").map_err(out_err)?;
    }
    writeln!(out, "succeed in sending transaction to CovenantSQL").map_err(out_err)?;
    Ok(())
}

fn progress_message(hash: &str, s: &TxStatus) -> String {
    match s.height {
        Some(h) => format!("transaction {hash}: {} (block {h})", s.state),
        None => format!("transaction {hash}: {}", s.state),
    }
}

/// A spinner on stderr while waiting; hidden when stderr is not a terminal.
fn spinner(hash: &str) -> ProgressBar {
    let bar = ProgressBar::new_spinner();
    if std::io::stderr().is_terminal() {
        bar.set_draw_target(ProgressDrawTarget::stderr());
        if let Ok(style) = ProgressStyle::with_template("{spinner} {msg} [{elapsed}]") {
            bar.set_style(style);
        }
        bar.set_message(format!("waiting for transaction {hash} to be confirmed..."));
        bar.enable_steady_tick(Duration::from_millis(120));
    } else {
        bar.set_draw_target(ProgressDrawTarget::hidden());
    }
    bar
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(to: &str, amount: &str, token: &str) -> TransferArgs {
        TransferArgs {
            to_user: Some(to.to_string()),
            to_dsn: None,
            amount: amount.to_string(),
            token: token.to_string(),
            wait_tx_confirm: false,
            wait_timeout: Duration::from_secs(1),
            config: None,
        }
    }

    const ADDR: &str = "eb46e59dbc4eac17b51762f051937a0082ff7423742866e4baff6c6053719451";

    fn message(e: CliError) -> String {
        assert_eq!(e.exit_code(), 2, "{e}");
        e.to_string()
    }

    #[test]
    fn good_arguments_pass() {
        let t = check(&args(ADDR, "10000000000", "particle")).unwrap();
        assert_eq!(t.amount, 10_000_000_000);
        assert_eq!(t.token, Token::Particle);
        assert_eq!(t.to.address().to_string(), ADDR);
    }

    #[test]
    fn bad_arguments_are_refused_clearly() {
        let m = message(check(&args("xyz", "1", "Particle")).unwrap_err());
        assert!(m.contains("-to-user") && m.contains("64 hex"), "{m}");
        let m = message(check(&args(&ADDR[1..], "1", "Particle")).unwrap_err());
        assert!(m.contains("not a wallet address"), "{m}");
        for (amount, why) in [
            ("-5", "negative"),
            ("0", "greater than zero"),
            ("ten", "not a whole number"),
        ] {
            let m = message(check(&args(ADDR, amount, "Particle")).unwrap_err());
            assert!(m.contains("-amount") && m.contains(why), "{m}");
        }
        let m = message(check(&args(ADDR, "1", "Dogecoin")).unwrap_err());
        assert!(m.contains("Particle, Wave, Ether, EOS, Bitcoin"), "{m}");
    }
}

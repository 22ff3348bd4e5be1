//! `cql wallet`: this account's address and balances, as the seed shows them
//! (`wallet address: ...`, `Particle balance is: N`, `Wave balance is: N`).

use std::io::Write;
use std::path::PathBuf;

use clap::Args;
use covenant_core::types::{Balances, Token};

use super::error::CliError;
use super::{GlobalArgs, open_client, runtime};

/// Arguments of `cql wallet`.
#[derive(Debug, Args)]
pub(crate) struct WalletArgs {
    /// Show only this token's balance (Particle, Wave, Ether, EOS, Bitcoin)
    #[arg(long, value_name = "TOKEN")]
    token: Option<String>,
    /// Show a database's account and this user's standing in it instead
    #[arg(long, value_name = "DSN")]
    dsn: Option<String>,
    /// Config file [default: ~/.cql/config.yaml]
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
}

pub(crate) fn run(
    args: &WalletArgs,
    global: &GlobalArgs,
    out: &mut dyn Write,
) -> Result<(), CliError> {
    let token = match &args.token {
        Some(t) => Some(t.parse::<Token>().map_err(|e| CliError::InvalidArgument {
            flag: "-token",
            reason: e.to_string(),
        })?),
        None => None,
    };
    let client = open_client(args.config.as_deref(), global)?;
    if let Some(d) = &args.dsn {
        let id = super::dsn::parse_dsn("-dsn", d)?;
        return super::dsn::print_database_wallet(&client, &id, token, out);
    }
    let address = client.address();
    let account = runtime()?.block_on(client.account(&address))?;
    let out_err = CliError::Output;
    writeln!(out, "wallet address: {address}").map_err(out_err)?;
    for line in balance_lines(&account.balances, token) {
        writeln!(out, "{line}").map_err(out_err)?;
    }
    Ok(())
}

/// `<Token> balance is: N` lines: only `token` if given, else Particle and
/// Wave (as in the seed) plus any other token held.
pub(super) fn balance_lines(balances: &Balances, token: Option<Token>) -> Vec<String> {
    let shown: Vec<Token> = match token {
        Some(t) => vec![t],
        None => Token::ALL
            .into_iter()
            .filter(|t| matches!(t, Token::Particle | Token::Wave) || balances.get(*t) > 0)
            .collect(),
    };
    shown
        .into_iter()
        .map(|t| format!("{t} balance is: {}", balances.get(t)))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_match_the_seed() {
        let b = Balances::new().with(Token::Particle, 100_000_000);
        assert_eq!(
            balance_lines(&b, None),
            ["Particle balance is: 100000000", "Wave balance is: 0"]
        );
        assert_eq!(balance_lines(&b, Some(Token::Wave)), ["Wave balance is: 0"]);
        let more = b.with(Token::Eos, 3);
        assert_eq!(
            balance_lines(&more, None),
            [
                "Particle balance is: 100000000",
                "Wave balance is: 0",
                "EOS balance is: 3"
            ]
        );
    }
}

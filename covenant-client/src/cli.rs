//! The `cql` command line as a library, so tests and tools can drive it:
//! argument parsing (clap, plus the seed's single-dash long flags, see
//! [`normalize_args`]) and one module per subcommand.
//!
//! Subcommands write their results to the `out` writer (stdout in `cql`),
//! progress and questions to stderr. They return a typed [`CliError`]; the
//! `cql` binary only prints it and picks the exit status. Must not import
//! node-side modules (chain, sqlchain, consensus) directly.

mod args;
mod console;
mod create;
mod drop;
mod dsn;
mod error;
mod generate;
mod grant;
mod idminer;
mod progress;
mod prompt;
mod testnet;
mod transfer;
mod verify;
mod wallet;

use std::ffi::OsString;
use std::io::Write;
use std::path::{Path, PathBuf};

use clap::{CommandFactory as _, Parser, Subcommand};
use covenant_core::config::CONFIG_FILE_NAME;
use covenant_core::pow::PowResult;

pub use args::normalize_args;

use crate::{Client, ClientOptions};
pub use error::CliError;

/// `cql`'s command line.
#[derive(Debug, Parser)]
#[command(
    name = "cql",
    version,
    about = "The Covenant command line: identities, wallets, databases and SQL",
    after_help = "Long flags work with one dash too, as in the seed's guide: -miner, -config, -with-password."
)]
struct Cli {
    #[command(flatten)]
    global: GlobalArgs,
    #[command(subcommand)]
    command: Command,
}

/// Flags every subcommand accepts.
#[derive(Debug, clap::Args)]
struct GlobalArgs {
    /// Master key (passphrase) of the private key file [default: empty]
    #[arg(long, global = true, value_name = "KEY")]
    password: Option<String>,
    /// Ask for the master key on the terminal (twice when creating a key)
    #[arg(long = "with-password", global = true)]
    with_password: bool,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Generate a key pair, mine its node id and write config.yaml + private.key
    Generate(generate::GenerateArgs),
    /// Mine a harder node id for the existing key and update the config
    Idminer(idminer::IdminerArgs),
    /// Show this account's wallet address and balances
    Wallet(wallet::WalletArgs),
    /// Send tokens to a wallet
    Transfer(transfer::TransferArgs),
    /// Create a database on the network's miners and print its DSN
    Create(create::CreateArgs),
    /// Drop a database (its Super users only)
    Drop(drop::DropArgs),
    /// Set a user's permission on a database
    Grant(grant::GrantArgs),
    /// Run SQL against a database: an interactive shell, or -command SQL / SQL on stdin
    Console(console::ConsoleArgs),
    /// Check a database's blocks and this account's writes in them
    Verify(verify::VerifyArgs),
    /// Write and run a local testnet (block producers and a funded super client)
    Testnet(testnet::TestnetArgs),
    /// Print the version
    Version,
}

/// The clap definition of `cql` (for help output and [`normalize_args`]).
pub fn command() -> clap::Command {
    Cli::command()
}

/// Runs `cql` with `argv` (program name first), writing results to `out`.
pub fn run<I, T>(argv: I, out: &mut dyn Write) -> Result<(), CliError>
where
    I: IntoIterator<Item = T>,
    T: Into<OsString>,
{
    let argv = normalize_args(&command(), argv.into_iter().map(Into::into).collect());
    let cli = Cli::try_parse_from(argv)?;
    match &cli.command {
        Command::Generate(args) => generate::run(args, &cli.global, out),
        Command::Idminer(args) => idminer::run(args, &cli.global, out),
        Command::Wallet(args) => wallet::run(args, &cli.global, out),
        Command::Transfer(args) => transfer::run(args, &cli.global, out),
        Command::Testnet(args) => testnet::run(args, &cli.global, out),
        Command::Create(args) => create::run(args, &cli.global, out),
        Command::Drop(args) => drop::run(args, &cli.global, out),
        Command::Grant(args) => grant::run(args, &cli.global, out),
        Command::Console(args) => console::run(args, &cli.global, out),
        Command::Verify(args) => verify::run(args, &cli.global, out),
        Command::Version => print_version(out),
    }
}

fn print_version(out: &mut dyn Write) -> Result<(), CliError> {
    let version = env!("CARGO_PKG_VERSION");
    match option_env!("COVENANT_GIT_HASH") {
        Some(hash) => writeln!(out, "cql {version} ({hash})"),
        None => writeln!(out, "cql {version}"),
    }
    .map_err(CliError::Output)
}

/// The seed's two nonce lines: `nonce: {{a b c d} difficulty id}` and `node id: id`.
fn print_nonce(out: &mut dyn Write, found: &PowResult) -> Result<(), CliError> {
    writeln!(
        out,
        "nonce: {{{} {} {}}}",
        found.nonce, found.difficulty, found.node_id
    )
    .and_then(|()| writeln!(out, "node id: {}", found.node_id))
    .map_err(CliError::Output)
}

/// `~/<rel>`, or an error naming `what` needed it.
fn home_path(rel: &str, what: &'static str) -> Result<PathBuf, CliError> {
    dirs::home_dir()
        .map(|home| home.join(rel))
        .ok_or(CliError::NoHome { what })
}

/// The `-config` file: as given, else `~/.cql/config.yaml`.
fn config_path(given: Option<&Path>) -> Result<PathBuf, CliError> {
    match given {
        Some(p) => Ok(p.to_path_buf()),
        None => Ok(home_path(".cql", "-config")?.join(CONFIG_FILE_NAME)),
    }
}

/// A runtime for the network commands (one thread: `cql` waits on one thing at a time).
fn runtime() -> Result<tokio::runtime::Runtime, CliError> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(CliError::Runtime)
}

/// The client of the `-config` file (default `~/.cql/config.yaml`), its key
/// opened with the master key from `-password` / `-with-password`.
fn open_client(config: Option<&Path>, global: &GlobalArgs) -> Result<Client, CliError> {
    open_client_with(config, global, ClientOptions::default())
}

/// [`open_client`] with explicit options.
fn open_client_with(
    config: Option<&Path>,
    global: &GlobalArgs,
    options: ClientOptions,
) -> Result<Client, CliError> {
    let path = config_path(config)?;
    let master = prompt::master_key(
        global.password.as_deref(),
        global.with_password,
        "private.key",
        false,
    )?;
    Ok(Client::from_config_file_with(
        &path,
        master.as_bytes(),
        options,
    )?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn single_and_double_dash_parse_the_same() {
        for argv in [
            [
                "cql",
                "generate",
                "-miner",
                "1.2.3.4:5",
                "-difficulty",
                "9",
                "d",
            ],
            [
                "cql",
                "generate",
                "--miner",
                "1.2.3.4:5",
                "--difficulty",
                "9",
                "d",
            ],
        ] {
            let cli = Cli::try_parse_from(normalize_args(
                &command(),
                argv.iter().map(OsString::from).collect(),
            ))
            .unwrap();
            let Command::Generate(args) = cli.command else {
                panic!("not generate")
            };
            let text = format!("{args:?}");
            assert!(
                text.contains("1.2.3.4:5") && text.contains("Some(9)"),
                "{text}"
            );
        }
    }

    #[test]
    fn clap_definition_is_consistent() {
        command().debug_assert();
    }

    #[test]
    fn version_prints() {
        let mut out = Vec::new();
        run(["cql", "version"], &mut out).unwrap();
        let text = String::from_utf8(out).unwrap();
        assert!(text.starts_with("cql ") && text.contains(env!("CARGO_PKG_VERSION")));
    }
}

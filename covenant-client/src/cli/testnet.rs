//! `cql testnet`: a local test network on 127.0.0.1.
//!
//! - `init DIR` writes one folder per block producer (`bp_<i>/config.yaml`
//!   and `private.key`), a funded `super_client_config/` and the
//!   `testnet.yaml` descriptor that `cql generate -testnet` reads.
//! - `up DIR` runs one `cqld` per block producer in the foreground until
//!   Ctrl-C or SIGTERM, then stops them cleanly.

mod init;
mod up;

use std::io::Write;

use clap::{Args, Subcommand};

use super::GlobalArgs;
use super::error::CliError;

/// The folder of block producer `i` inside a testnet folder.
fn bp_dir_name(i: usize) -> String {
    format!("bp_{i}")
}

/// The super client's folder inside a testnet folder.
const SUPER_CLIENT_DIR: &str = "super_client_config";

/// Arguments of `cql testnet`.
#[derive(Debug, Args)]
pub(crate) struct TestnetArgs {
    #[command(subcommand)]
    command: TestnetCommand,
}

#[derive(Debug, Subcommand)]
enum TestnetCommand {
    /// Write a local testnet: block producer configs and keys, a funded super client, testnet.yaml
    Init(init::InitArgs),
    /// Run the block producers of a testnet written by `init` until Ctrl-C
    Up(up::UpArgs),
}

pub(crate) fn run(
    args: &TestnetArgs,
    global: &GlobalArgs,
    out: &mut dyn Write,
) -> Result<(), CliError> {
    match &args.command {
        TestnetCommand::Init(a) => init::run(a, global, out),
        TestnetCommand::Up(a) => up::run(a, global, out),
    }
}

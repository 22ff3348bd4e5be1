//! The typed error every `cql` subcommand returns.

use std::path::PathBuf;

use covenant_core::ErrorCode;
use covenant_core::config::ConfigError;
use covenant_core::crypto::{CryptoError, KeyFileError};
use covenant_core::pow::PowError;

use crate::error::ClientError;

/// Why a `cql` command failed.
#[derive(Debug, thiserror::Error)]
pub enum CliError {
    /// The command line did not parse, or help/version was asked for
    /// (clap renders it; [`clap::Error::exit`] prints it with the right status).
    #[error("{0}")]
    Args(#[from] clap::Error),
    /// A flag's value is not acceptable.
    #[error("invalid {flag}: {reason}")]
    InvalidArgument {
        /// The flag as the user writes it (`-miner`).
        flag: &'static str,
        /// Why its value was refused.
        reason: String,
    },
    /// A file exists and there is no terminal to ask whether to replace it.
    #[error(
        "{} already exists; refusing to overwrite it without asking: \
         pick another DIR or delete the file first",
        .path.display()
    )]
    WouldOverwrite {
        /// The existing file.
        path: PathBuf,
    },
    /// The user answered no when asked to overwrite a file.
    #[error("not overwriting {}; nothing was written", .path.display())]
    Declined {
        /// The existing file.
        path: PathBuf,
    },
    /// Ctrl-C stopped the command before it wrote anything.
    #[error("cancelled; no files were written")]
    Cancelled,
    /// The two passphrases typed differ.
    #[error("the passphrases do not match; nothing was written")]
    PassphraseMismatch,
    /// The passphrase or an answer could not be read from the terminal.
    #[error("cannot read from the terminal: {error}")]
    Terminal {
        /// The operating system's error.
        error: std::io::Error,
    },
    /// The home folder is unknown, so the default path cannot be used.
    #[error("cannot find the home folder for the default {what}; pass it explicitly")]
    NoHome {
        /// What needed the default (`DIR`, `-config`).
        what: &'static str,
    },
    /// A file or folder could not be created, removed or resolved.
    #[error("cannot {action} {}: {error}", .path.display())]
    Io {
        /// What was being done.
        action: &'static str,
        /// The file or folder.
        path: PathBuf,
        /// The operating system's error.
        error: std::io::Error,
    },
    /// Writing to stdout failed.
    #[error("cannot write output: {0}")]
    Output(std::io::Error),
    /// The config file failed.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// The private key file failed.
    #[error(transparent)]
    KeyFile(#[from] KeyFileError),
    /// Key generation failed.
    #[error(transparent)]
    Crypto(#[from] CryptoError),
    /// The proof of work failed.
    #[error(transparent)]
    Pow(PowError),
    /// Talking to the network failed, or it refused or failed a transaction.
    #[error(transparent)]
    Client(#[from] ClientError),
    /// A folder that must be empty is not.
    #[error("refusing to write into {}: the folder is not empty; pick a new DIR", .path.display())]
    NotEmpty {
        /// The folder.
        path: PathBuf,
    },
    /// A program this command starts cannot be found.
    #[error(
        "cannot find `{name}`: it is neither next to this cql ({}) nor on PATH; \
         build it with `cargo build --release -p {package}`",
        .next_to.display()
    )]
    BinaryNotFound {
        /// The program's name.
        name: &'static str,
        /// The cargo package that builds it.
        package: &'static str,
        /// Where it was looked for first.
        next_to: PathBuf,
    },
    /// A node this command started stopped or never came up.
    #[error("{name} {reason}; last lines of {}:\n{tail}", .log.display())]
    NodeFailed {
        /// The node (`bp_1`).
        name: String,
        /// What happened.
        reason: String,
        /// Its log file.
        log: PathBuf,
        /// The end of its log.
        tail: String,
    },
    /// The async runtime or a signal handler could not be set up.
    #[error("cannot start the async runtime: {0}")]
    Runtime(std::io::Error),
}

impl From<PowError> for CliError {
    fn from(e: PowError) -> Self {
        match e {
            PowError::Cancelled => CliError::Cancelled,
            other => CliError::Pow(other),
        }
    }
}

impl CliError {
    /// The stable code of this error.
    pub fn code(&self) -> ErrorCode {
        match self {
            CliError::Args(_) | CliError::InvalidArgument { .. } | CliError::NoHome { .. } => {
                ErrorCode::InvalidArgument
            }
            CliError::WouldOverwrite { .. }
            | CliError::Declined { .. }
            | CliError::Io { .. }
            | CliError::Output(_)
            | CliError::Terminal { .. } => ErrorCode::Io,
            CliError::Cancelled => ErrorCode::Cancelled,
            CliError::PassphraseMismatch => ErrorCode::WrongPassphrase,
            CliError::Config(e) => e.code(),
            CliError::KeyFile(e) => e.code(),
            CliError::Crypto(e) => e.code(),
            CliError::Pow(e) => e.code(),
            CliError::Client(e) => e.code(),
            CliError::NotEmpty { .. } => ErrorCode::InvalidArgument,
            CliError::BinaryNotFound { .. }
            | CliError::NodeFailed { .. }
            | CliError::Runtime(_) => ErrorCode::Io,
        }
    }

    /// The process exit status for this error: 130 for Ctrl-C (as shells
    /// report SIGINT), 2 for bad usage, 1 otherwise.
    pub fn exit_code(&self) -> u8 {
        match self {
            CliError::Cancelled => 130,
            CliError::Args(_) | CliError::InvalidArgument { .. } => 2,
            _ => 1,
        }
    }
}

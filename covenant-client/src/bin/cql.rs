//! `cql`: the Covenant command line. Parses nothing itself: sets up logging
//! to stderr, hands argv to `covenant_client::cli`, prints any error with its
//! causes and exits non-zero.

use std::process::ExitCode;

use covenant_client::cli::{self, CliError};
use tracing_subscriber::EnvFilter;

fn main() -> ExitCode {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("warn"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .init();

    let mut stdout = std::io::stdout().lock();
    match cli::run(std::env::args_os(), &mut stdout) {
        Ok(()) => ExitCode::SUCCESS,
        // Help, version flags and usage errors: clap prints them and picks the status.
        Err(CliError::Args(e)) => e.exit(),
        Err(e) => {
            let status = e.exit_code();
            eprintln!("error: {}", chain(&anyhow::Error::new(e)));
            ExitCode::from(status)
        }
    }
}

/// The error and its causes joined by ": ", skipping a cause whose text the
/// previous message already includes.
fn chain(error: &anyhow::Error) -> String {
    let mut text = String::new();
    for cause in error.chain() {
        let part = cause.to_string();
        if text.contains(&part) {
            continue;
        }
        if !text.is_empty() {
            text.push_str(": ");
        }
        text.push_str(&part);
    }
    text
}

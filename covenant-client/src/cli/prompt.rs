//! Talking to the person at the terminal: yes/no questions and passphrases.
//! Nothing here is asked when stdin is not a terminal; callers decide what a
//! non-interactive run does instead.

use std::io::{BufRead as _, IsTerminal as _, Write as _};
use std::path::PathBuf;

use zeroize::Zeroizing;

use super::error::CliError;

/// Whether stdin is a terminal a person can answer on.
pub(crate) fn interactive() -> bool {
    std::io::stdin().is_terminal()
}

/// Asks on stderr whether to overwrite `paths`; only `y`/`yes` means yes.
pub(crate) fn confirm_overwrite(paths: &[PathBuf]) -> Result<bool, CliError> {
    let terminal = |error| CliError::Terminal { error };
    let names: Vec<String> = paths.iter().map(|p| p.display().to_string()).collect();
    let verb = if names.len() == 1 { "exists" } else { "exist" };
    let mut err = std::io::stderr().lock();
    write!(
        err,
        "{} already {verb}, overwrite? [y/N] ",
        names.join(" and ")
    )
    .map_err(terminal)?;
    err.flush().map_err(terminal)?;
    drop(err);
    let mut answer = String::new();
    std::io::stdin()
        .lock()
        .read_line(&mut answer)
        .map_err(terminal)?;
    Ok(matches!(
        answer.trim().to_ascii_lowercase().as_str(),
        "y" | "yes"
    ))
}

/// Reads a passphrase from the terminal without echo; with `confirm`, asks
/// twice and refuses two different answers.
pub(crate) fn read_passphrase(what: &str, confirm: bool) -> Result<Zeroizing<String>, CliError> {
    let terminal = |error| CliError::Terminal { error };
    let first = Zeroizing::new(
        rpassword::prompt_password(format!("Enter the master key (passphrase) for {what}: "))
            .map_err(terminal)?,
    );
    if confirm {
        let second =
            Zeroizing::new(rpassword::prompt_password("Enter it again: ").map_err(terminal)?);
        if *first != *second {
            return Err(CliError::PassphraseMismatch);
        }
    }
    Ok(first)
}

/// The master key that opens (or will lock) a private key file: `-password`
/// if given, else a prompt when `-with-password`, else empty (the seed's default).
pub(crate) fn master_key(
    password: Option<&str>,
    with_password: bool,
    what: &str,
    confirm: bool,
) -> Result<Zeroizing<String>, CliError> {
    match password {
        Some(p) => Ok(Zeroizing::new(p.to_string())),
        None if with_password => read_passphrase(what, confirm),
        None => Ok(Zeroizing::new(String::new())),
    }
}

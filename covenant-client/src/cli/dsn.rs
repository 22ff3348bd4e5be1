//! The `.dsn` file next to the config: the DSNs of databases this account
//! created, one per line, no duplicates. `cql create` appends, `cql drop`
//! removes, `cql console` lists them. Also parsing a DSN argument and
//! `cql wallet -dsn`'s view of a database account. Talks to the network only
//! through [`Client`]; must not import node-side modules.

use std::io::Write as _;
use std::path::{Path, PathBuf};

use covenant_core::types::{DatabaseId, Token};

use super::error::CliError;
use super::runtime;
use crate::Client;

/// The `.dsn` file's name, in the config's folder.
pub(crate) const DSN_FILE: &str = ".dsn";

/// The `.dsn` file for the config at `config`.
pub(crate) fn dsn_file(config: &Path) -> PathBuf {
    config
        .parent()
        .unwrap_or_else(|| Path::new("."))
        .join(DSN_FILE)
}

/// Parses a DSN argument (`covenantsql://<hex>` or bare hex) given as `flag`.
pub(crate) fn parse_dsn(flag: &'static str, given: &str) -> Result<DatabaseId, CliError> {
    DatabaseId::from_dsn(given).map_err(|e| CliError::InvalidArgument {
        flag,
        reason: e.to_string(),
    })
}

/// The DSNs recorded in `file` (none if it does not exist).
pub(crate) fn list(file: &Path) -> Result<Vec<String>, CliError> {
    match std::fs::read_to_string(file) {
        Ok(text) => Ok(text
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty())
            .map(str::to_string)
            .collect()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Vec::new()),
        Err(error) => Err(CliError::Io {
            action: "read",
            path: file.to_path_buf(),
            error,
        }),
    }
}

/// Appends `dsn` to `file` unless it is already there.
pub(crate) fn add(file: &Path, dsn: &str) -> Result<(), CliError> {
    if list(file)?.iter().any(|d| d == dsn) {
        return Ok(());
    }
    let io = |error| CliError::Io {
        action: "write",
        path: file.to_path_buf(),
        error,
    };
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(file)
        .map_err(io)?;
    writeln!(f, "{dsn}").map_err(io)
}

/// Removes `dsn` from `file` (nothing to do if it is not there).
pub(crate) fn remove(file: &Path, dsn: &str) -> Result<(), CliError> {
    let all = list(file)?;
    if !all.iter().any(|d| d == dsn) {
        return Ok(());
    }
    let kept: String = all
        .iter()
        .filter(|d| *d != dsn)
        .map(|d| format!("{d}\n"))
        .collect();
    std::fs::write(file, kept).map_err(|error| CliError::Io {
        action: "write",
        path: file.to_path_buf(),
        error,
    })
}

/// `cql wallet -dsn`: the database account's balances and this user's
/// advance payment, arrears, status and permission in it.
pub(crate) fn print_database_wallet(
    client: &Client,
    id: &DatabaseId,
    token: Option<Token>,
    out: &mut dyn std::io::Write,
) -> Result<(), CliError> {
    let rt = runtime()?;
    let account_address = id.account_address();
    let (profile, account) = rt.block_on(async {
        let profile = client.database_profile(id).await?;
        let account = client.account(&account_address).await?;
        Ok::<_, crate::ClientError>((profile, account))
    })?;
    let me = client.address();
    let mut lines = vec![
        format!("database: {}", id.to_dsn()),
        format!("database account address: {account_address}"),
    ];
    lines.extend(super::wallet::balance_lines(&account.balances, token));
    match profile.user(&me) {
        Some(u) => {
            lines.push(format!("user {me} permission: {}", u.permission));
            lines.push(format!("user status: {:?}", u.status));
            lines.push(format!(
                "advance payment: {} {}",
                u.advance_payment, profile.token
            ));
            lines.push(format!("arrears: {} {}", u.arrears, profile.token));
        }
        None => lines.push(format!("user {me} is not a user of this database")),
    }
    for line in lines {
        writeln!(out, "{line}").map_err(CliError::Output)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn add_list_remove_without_duplicates() {
        let dir = tempfile::tempdir().unwrap();
        let file = dsn_file(&dir.path().join("config.yaml"));
        assert_eq!(file, dir.path().join(".dsn"));
        assert!(list(&file).unwrap().is_empty());
        add(&file, "covenantsql://aa").unwrap();
        add(&file, "covenantsql://bb").unwrap();
        add(&file, "covenantsql://aa").unwrap();
        assert_eq!(
            list(&file).unwrap(),
            ["covenantsql://aa", "covenantsql://bb"]
        );
        remove(&file, "covenantsql://aa").unwrap();
        remove(&file, "covenantsql://zz").unwrap();
        assert_eq!(list(&file).unwrap(), ["covenantsql://bb"]);
    }

    #[test]
    fn dsn_arguments_parse_or_explain() {
        let hex = "ab".repeat(32);
        let id = parse_dsn("DSN", &format!("covenantsql://{hex}")).unwrap();
        assert_eq!(parse_dsn("DSN", &hex).unwrap(), id);
        let e = parse_dsn("-to-dsn", "mysql://x").unwrap_err();
        assert_eq!(e.exit_code(), 2);
        assert!(e.to_string().contains("-to-dsn"), "{e}");
    }
}

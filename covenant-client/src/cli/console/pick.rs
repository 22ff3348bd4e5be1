//! Choosing the database when `cql console` is given no DSN: the ones in
//! the `.dsn` file beside the config, listed and numbered. On a terminal
//! the user picks one; otherwise the error lists them. Talks only to the
//! terminal (questions on stderr, answers on stdin).

use std::io::{BufRead, Write};
use std::path::Path;

use crate::cli::dsn;
use crate::cli::error::CliError;

/// The recorded DSNs, one numbered line each.
fn numbered(known: &[String]) -> String {
    known
        .iter()
        .enumerate()
        .map(|(i, d)| format!("  {}. {d}", i + 1))
        .collect::<Vec<_>>()
        .join("\n")
}

/// The DSN to open, for the config at `config`: asked on the terminal when
/// `can_ask` (reading answers from `answers`, asking on `ask`), else an
/// error listing the choices.
pub(crate) fn choose(
    config: &Path,
    can_ask: bool,
    answers: &mut dyn BufRead,
    ask: &mut dyn Write,
) -> Result<String, CliError> {
    let file = dsn::dsn_file(config);
    let known = dsn::list(&file)?;
    if known.is_empty() {
        return Err(CliError::InvalidArgument {
            flag: "DSN",
            reason: format!(
                "no DSN given, and no database is recorded in {} yet; create one with \
                 `cql create -db-node 1` (it records its DSN there) or pass one: \
                 `cql console covenantsql://<database id>`",
                file.display()
            ),
        });
    }
    if !can_ask {
        return Err(CliError::InvalidArgument {
            flag: "DSN",
            reason: format!(
                "no DSN given, and stdin is not a terminal to pick one interactively; \
                 pass one as the last argument. Databases recorded in {}:\n{}",
                file.display(),
                numbered(&known)
            ),
        });
    }
    let terminal = |error| CliError::Terminal { error };
    writeln!(
        ask,
        "Databases recorded in {}:\n{}",
        file.display(),
        numbered(&known)
    )
    .map_err(terminal)?;
    loop {
        write!(ask, "Open which one? [1-{}] ", known.len()).map_err(terminal)?;
        ask.flush().map_err(terminal)?;
        let mut answer = String::new();
        if answers.read_line(&mut answer).map_err(terminal)? == 0 {
            return Err(CliError::Cancelled);
        }
        let answer = answer.trim();
        let picked = match answer.parse::<usize>() {
            Ok(n) => n.checked_sub(1).and_then(|i| known.get(i)).cloned(),
            Err(_) if answer.is_empty() && known.len() == 1 => known.first().cloned(),
            Err(_) => dsn::parse_dsn("DSN", answer).ok().map(|id| id.to_dsn()),
        };
        match picked {
            Some(d) => return Ok(d),
            None => writeln!(
                ask,
                "`{answer}` is not one of them: type a number from 1 to {} (or a DSN)",
                known.len()
            )
            .map_err(terminal)?,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn setup(dsns: &[&str]) -> (tempfile::TempDir, std::path::PathBuf) {
        let dir = tempfile::tempdir().unwrap();
        let config = dir.path().join("config.yaml");
        for d in dsns {
            dsn::add(&dsn::dsn_file(&config), d).unwrap();
        }
        (dir, config)
    }

    fn ask(config: &Path, can_ask: bool, answers: &str) -> (Result<String, CliError>, String) {
        let mut shown = Vec::new();
        let r = choose(config, can_ask, &mut answers.as_bytes(), &mut shown);
        (r, String::from_utf8(shown).unwrap())
    }

    #[test]
    fn the_user_picks_by_number_after_a_wrong_answer() {
        let a = format!("covenantsql://{}", "a".repeat(64));
        let b = format!("covenantsql://{}", "b".repeat(64));
        let (_dir, config) = setup(&[&a, &b]);
        let (r, shown) = ask(&config, true, "9\nx\n2\n");
        assert_eq!(r.unwrap(), b);
        assert!(shown.contains(&format!("  1. {a}\n  2. {b}")), "{shown}");
        assert!(shown.contains("`9` is not one of them"), "{shown}");
        // A typed DSN is taken too; Enter alone is not enough with two choices.
        let c = "c".repeat(64);
        assert_eq!(
            ask(&config, true, &format!("\n{c}\n")).0.unwrap(),
            format!("covenantsql://{c}")
        );
        // End of input is a cancel.
        assert!(matches!(ask(&config, true, "").0, Err(CliError::Cancelled)));
    }

    #[test]
    fn one_choice_is_taken_with_enter() {
        let a = format!("covenantsql://{}", "a".repeat(64));
        let (_dir, config) = setup(&[&a]);
        assert_eq!(ask(&config, true, "\n").0.unwrap(), a);
    }

    #[test]
    fn without_a_terminal_or_choices_the_error_says_what_to_do() {
        let a = format!("covenantsql://{}", "a".repeat(64));
        let (_dir, config) = setup(&[&a]);
        let e = ask(&config, false, "1\n").0.unwrap_err().to_string();
        assert!(
            e.contains("interactively") && e.contains(&format!("1. {a}")),
            "{e}"
        );
        let (_dir, empty) = setup(&[]);
        let e = ask(&empty, true, "1\n").0.unwrap_err().to_string();
        assert!(e.contains("cql create"), "{e}");
    }
}

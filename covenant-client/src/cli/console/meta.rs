//! The console's meta-commands: lines starting with `\` (and a bare `quit` /
//! `exit`) typed where a new statement would start. Parsing and the help
//! text only; the session runs them.

/// A parsed meta-command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Meta {
    /// `\q`: leave the console.
    Quit,
    /// `\?`, `\h`: show the help.
    Help,
    /// `\d`: list the tables.
    ListTables,
    /// `\d TABLE`: show a table's columns.
    Describe(String),
    /// `\timing [on|off]`: toggle (`None`) or set whether statement times show.
    Timing(Option<bool>),
}

/// A meta-command that could not be parsed; the text says why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}; \\? lists the meta-commands")]
pub(crate) struct MetaError(pub(crate) String);

/// What the console shows for `\?`.
pub(crate) const HELP: &str = "\
SQL statements end with `;` and may span several lines.
Reads (SELECT, SHOW, DESC, EXPLAIN, reporting PRAGMAs, VALUES) go as read
requests; everything else goes as a signed write, recorded in the database's
block chain. Each statement is its own request (its own transaction).

Meta-commands (at the start of a line):
  \\q                quit (also `quit`, `exit` or Ctrl-D)
  \\? or \\h          show this help
  \\d                list tables
  \\d TABLE          show TABLE's columns
  \\timing [on|off]  toggle or set showing each statement's time
                    (on by default in the shell, off for scripts)

Ctrl-C clears the statement being typed (or stops waiting for a running one).";

/// Whether `line` is a meta-command (rather than SQL), when typed where a
/// new statement would start.
pub(crate) fn is_meta(line: &str) -> bool {
    let t = line.trim();
    t.starts_with('\\')
        || matches!(
            t.trim_end_matches(';')
                .trim_end()
                .to_ascii_lowercase()
                .as_str(),
            "quit" | "exit"
        )
}

/// Parses a meta-command line (see [`is_meta`]); a trailing `;` is ignored.
pub(crate) fn parse(line: &str) -> Result<Meta, MetaError> {
    let t = line.trim().trim_end_matches(';').trim_end();
    if matches!(t.to_ascii_lowercase().as_str(), "quit" | "exit") {
        return Ok(Meta::Quit);
    }
    let body = t.strip_prefix('\\').unwrap_or(t);
    let (name, rest) = match body.split_once(char::is_whitespace) {
        Some((name, rest)) => (name, rest.trim()),
        None => (body, ""),
    };
    let no_argument = |meta: Meta| {
        if rest.is_empty() {
            Ok(meta)
        } else {
            Err(MetaError(format!("\\{name} takes no argument")))
        }
    };
    match name {
        "q" | "quit" => no_argument(Meta::Quit),
        "?" | "h" | "help" => Ok(Meta::Help),
        "d" | "dt" if rest.is_empty() => Ok(Meta::ListTables),
        "d" => Ok(Meta::Describe(rest.to_string())),
        "timing" => match rest.to_ascii_lowercase().as_str() {
            "" => Ok(Meta::Timing(None)),
            "on" => Ok(Meta::Timing(Some(true))),
            "off" => Ok(Meta::Timing(Some(false))),
            other => Err(MetaError(format!(
                "\\timing takes `on` or `off`, not `{other}`"
            ))),
        },
        "" => Err(MetaError("a lone `\\` is not a meta-command".to_string())),
        other => Err(MetaError(format!("unknown meta-command \\{other}"))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_every_meta_command() {
        for (line, meta) in [
            ("\\q", Meta::Quit),
            (" \\q ", Meta::Quit),
            ("quit", Meta::Quit),
            ("EXIT;", Meta::Quit),
            ("\\?", Meta::Help),
            ("\\h", Meta::Help),
            ("\\d", Meta::ListTables),
            ("\\dt", Meta::ListTables),
            ("\\d users", Meta::Describe("users".into())),
            ("\\d \"my table\";", Meta::Describe("\"my table\"".into())),
            ("\\timing", Meta::Timing(None)),
            ("\\timing on", Meta::Timing(Some(true))),
            ("\\timing OFF", Meta::Timing(Some(false))),
        ] {
            assert!(is_meta(line), "{line}");
            assert_eq!(parse(line), Ok(meta), "{line}");
        }
    }

    #[test]
    fn explains_what_it_cannot_parse() {
        for (line, says) in [
            ("\\x", "unknown meta-command \\x"),
            ("\\timing maybe", "`on` or `off`"),
            ("\\q now", "takes no argument"),
            ("\\", "lone"),
        ] {
            let e = parse(line).unwrap_err().to_string();
            assert!(e.contains(says) && e.contains("\\?"), "{line}: {e}");
        }
        for sql in ["SELECT 1", "quitx", "  insert into quit values (1)"] {
            assert!(!is_meta(sql), "{sql}");
        }
    }
}

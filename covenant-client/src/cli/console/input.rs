//! Console input, line by line, into the things to run: SQL statements
//! (split by [`Splitter`]) and meta-commands (a line starting with `\`
//! where a new statement would start). The shell and the non-interactive
//! run both read through [`Input`], so they accept the same text.

use super::meta::{self, Meta, MetaError};
use super::statements::{Pending, Splitter, Statement};

/// One thing to run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Item {
    /// An SQL statement.
    Sql(Statement),
    /// A meta-command.
    Meta(Meta),
    /// A line that looked like a meta-command but is not a valid one.
    BadMeta(MetaError),
}

/// Turns lines into [`Item`]s; see the module doc.
#[derive(Debug, Default)]
pub(crate) struct Input {
    splitter: Splitter,
}

impl Input {
    /// Adds one line (without its line break); returns what it completes.
    pub(crate) fn line(&mut self, line: &str) -> Vec<Item> {
        if self.splitter.pending() == Pending::Nothing && meta::is_meta(line) {
            self.splitter.clear();
            return vec![match meta::parse(line) {
                Ok(m) => Item::Meta(m),
                Err(e) => Item::BadMeta(e),
            }];
        }
        let mut text = String::with_capacity(line.len() + 1);
        text.push_str(line);
        text.push('\n');
        self.splitter
            .push(&text)
            .into_iter()
            .map(Item::Sql)
            .collect()
    }

    /// Ends the input: the last statement if it lacks its `;`.
    pub(crate) fn finish(&mut self) -> Option<Item> {
        self.splitter.finish().map(Item::Sql)
    }

    /// Forgets the statement being typed (Ctrl-C).
    pub(crate) fn clear(&mut self) {
        self.splitter.clear();
    }

    /// What the text so far still waits for.
    pub(crate) fn pending(&self) -> Pending {
        self.splitter.pending()
    }
}

/// Every item of `text` (a script or `-command`), the last statement with
/// or without its `;`.
pub(crate) fn items(text: &str) -> Vec<Item> {
    let mut input = Input::default();
    let mut all: Vec<Item> = text.lines().flat_map(|l| input.line(l)).collect();
    all.extend(input.finish());
    all
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sql(s: &str) -> Item {
        Item::Sql(Statement::new(s.to_string()))
    }

    #[test]
    fn statements_and_meta_commands_interleave() {
        let got = items(
            "\\timing on\nCREATE TABLE t\n  (a INTEGER);\n\\d\nINSERT INTO t VALUES (1); SELECT a\nFROM t",
        );
        assert_eq!(
            got,
            [
                Item::Meta(Meta::Timing(Some(true))),
                sql("CREATE TABLE t\n  (a INTEGER)"),
                Item::Meta(Meta::ListTables),
                sql("INSERT INTO t VALUES (1)"),
                sql("SELECT a\nFROM t"),
            ]
        );
    }

    #[test]
    fn backslash_inside_a_statement_is_sql() {
        // Inside an unfinished statement (or string), `\d` is text, not a command.
        let got = items("SELECT '\n\\d\n';\nSELECT 1\n\\q");
        assert_eq!(
            got,
            [sql("SELECT '\n\\d\n'"), sql("SELECT 1\n\\q")],
            "the `\\q` line continues the unfinished SELECT"
        );
        let mut input = Input::default();
        assert!(input.line("SELECT 1").is_empty());
        input.clear();
        assert_eq!(input.line("\\q"), [Item::Meta(Meta::Quit)]);
        assert!(matches!(input.line("\\nope")[..], [Item::BadMeta(_)]));
    }
}

//! Splitting console input into statements and telling reads from writes.
//!
//! The splitter understands quotes (`'..'`, `".."`, `` `..` ``, `[..]`) and
//! comments (`-- ..`, `/* .. */`), so a `;` inside them does not split.
//! (A `CREATE TRIGGER ... BEGIN ...; END` body is not kept whole yet.)

/// One statement and whether it only reads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Statement {
    /// The statement's text, trimmed, without the `;`.
    pub(crate) sql: String,
    /// Whether it goes as a read request.
    pub(crate) read: bool,
}

/// The statements of `input`, in order; empty ones (`;;`, comments only) are skipped.
pub(crate) fn statements(input: &str) -> Vec<Statement> {
    split(input)
        .into_iter()
        .filter(|s| !strip_comments(s).trim().is_empty())
        .map(|sql| Statement {
            read: is_read(&sql),
            sql,
        })
        .collect()
}

/// Splits on `;` outside quotes and comments.
fn split(input: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut current = String::new();
    let mut chars = input.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            ';' => {
                out.push(current.trim().to_string());
                current.clear();
            }
            '\'' | '"' | '`' | '[' => {
                let close = if c == '[' { ']' } else { c };
                current.push(c);
                for d in chars.by_ref() {
                    current.push(d);
                    if d == close {
                        break;
                    }
                }
            }
            '-' if chars.peek() == Some(&'-') => {
                current.push(c);
                for d in chars.by_ref() {
                    current.push(d);
                    if d == '\n' {
                        break;
                    }
                }
            }
            '/' if chars.peek() == Some(&'*') => {
                current.push(c);
                let mut prev = '\0';
                for d in chars.by_ref() {
                    current.push(d);
                    if prev == '*' && d == '/' {
                        break;
                    }
                    prev = d;
                }
            }
            _ => current.push(c),
        }
    }
    out.push(current.trim().to_string());
    out.retain(|s| !s.is_empty());
    out
}

/// `sql` with comments and quoted text blanked out (keywords only remain meaningful).
fn strip_comments(sql: &str) -> String {
    let mut out = String::new();
    let mut chars = sql.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\'' | '"' | '`' | '[' => {
                let close = if c == '[' { ']' } else { c };
                out.push(' ');
                for d in chars.by_ref() {
                    if d == close {
                        break;
                    }
                }
                out.push('_');
            }
            '-' if chars.peek() == Some(&'-') => {
                for d in chars.by_ref() {
                    if d == '\n' {
                        break;
                    }
                }
                out.push(' ');
            }
            '/' if chars.peek() == Some(&'*') => {
                let mut prev = '\0';
                for d in chars.by_ref() {
                    if prev == '*' && d == '/' {
                        break;
                    }
                    prev = d;
                }
                out.push(' ');
            }
            _ => out.push(c),
        }
    }
    out
}

/// Pragmas that only report (without `=`).
const READ_PRAGMAS: &[&str] = &[
    "table_info",
    "table_xinfo",
    "index_list",
    "index_info",
    "index_xinfo",
    "foreign_key_list",
];

/// Whether `sql` only reads: SELECT, SHOW, DESC(RIBE), EXPLAIN, VALUES,
/// reporting PRAGMAs, or WITH ... SELECT.
fn is_read(sql: &str) -> bool {
    let text = strip_comments(sql).to_ascii_uppercase();
    let words: Vec<&str> = text
        .split(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
        .filter(|w| !w.is_empty())
        .collect();
    match words.first().copied() {
        Some("SELECT" | "SHOW" | "DESC" | "DESCRIBE" | "EXPLAIN" | "VALUES") => true,
        Some("PRAGMA") => {
            !text.contains('=')
                && words
                    .iter()
                    .skip(1)
                    .any(|w| READ_PRAGMAS.contains(&w.to_ascii_lowercase().as_str()))
        }
        Some("WITH") => {
            words.contains(&"SELECT")
                && !words
                    .iter()
                    .any(|w| matches!(*w, "INSERT" | "UPDATE" | "DELETE" | "REPLACE"))
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kinds(input: &str) -> Vec<(String, bool)> {
        statements(input)
            .into_iter()
            .map(|s| (s.sql, s.read))
            .collect()
    }

    #[test]
    fn splits_outside_quotes_and_comments() {
        let got = kinds(
            "CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT); INSERT INTO t (v) VALUES ('a;b'),('c');\n\
             -- a comment; not a statement\n select * from t ;;",
        );
        assert_eq!(
            got,
            [
                (
                    "CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT)".to_string(),
                    false
                ),
                ("INSERT INTO t (v) VALUES ('a;b'),('c')".to_string(), false),
                (
                    "-- a comment; not a statement\n select * from t".to_string(),
                    true
                ),
            ]
        );
        assert_eq!(kinds("/* x; y */ SELECT 1").len(), 1);
        assert_eq!(kinds("SELECT \"a;\" FROM [b;c]").len(), 1);
        assert!(kinds(" ; -- only a comment").is_empty());
    }

    #[test]
    fn reads_and_writes() {
        for read in [
            "SELECT 1",
            "  show tables",
            "DESC t",
            "describe t",
            "EXPLAIN QUERY PLAN SELECT 1",
            "PRAGMA table_info(t)",
            "pragma index_list('t')",
            "WITH x AS (SELECT 1) SELECT * FROM x",
            "/* c */ select 2",
        ] {
            assert!(is_read(read), "{read}");
        }
        for write in [
            "INSERT INTO t VALUES (1)",
            "CREATE TABLE t (a)",
            "PRAGMA foreign_keys = ON",
            "WITH x AS (SELECT 1) INSERT INTO t SELECT * FROM x",
            "DELETE FROM t",
            "selectx",
            "",
        ] {
            assert!(!is_read(write), "{write}");
        }
        // A keyword inside a string does not make a write.
        assert!(is_read("WITH x AS (SELECT 'delete me') SELECT * FROM x"));
    }
}

//! Splitting console input into statements and telling reads from writes.
//!
//! [`Splitter`] is fed text piece by piece (a line at a time in the shell)
//! and hands back every statement its `;` completes. It understands quotes
//! (`'..'`, `".."`, `` `..` ``, `[..]`) and comments (`-- ..`, `/* .. */`),
//! so a `;` inside them does not split, and keeps a `CREATE TRIGGER ...
//! BEGIN ...; END` body whole. [`is_read`] decides whether a statement goes
//! as a read or as a write request. Pure text work: no I/O here.

/// One statement and whether it only reads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Statement {
    /// The statement's text, trimmed, without the `;`.
    pub(crate) sql: String,
    /// Whether it goes as a read request.
    pub(crate) read: bool,
}

impl Statement {
    /// The statement for `sql`, classified by [`is_read`].
    pub(crate) fn new(sql: String) -> Statement {
        Statement {
            read: is_read(&sql),
            sql,
        }
    }
}

/// Where the scanner is inside the text not yet split.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Plain SQL.
    Normal,
    /// Just after a `-` that may start `--`.
    Dash,
    /// Just after a `/` that may start `/*`.
    Slash,
    /// Inside `-- ..` up to the end of the line.
    LineComment,
    /// Inside `/* .. */`.
    BlockComment,
    /// Inside `/* .. */`, just after a `*`.
    BlockCommentStar,
    /// Inside a quoted string or name that this character closes.
    Quoted(char),
}

/// What the text fed so far still waits for (the shell shows it in its prompt).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Pending {
    /// Nothing: no statement started (only blanks or comments so far).
    Nothing,
    /// A statement that has not reached its `;` yet.
    Statement,
    /// The closing quote (this character).
    Quote(char),
    /// The end of a `/* .. */` comment.
    Comment,
}

/// Incremental statement splitter; see the module doc.
#[derive(Debug)]
pub(crate) struct Splitter {
    current: String,
    state: State,
}

impl Default for Splitter {
    fn default() -> Self {
        Splitter {
            current: String::new(),
            state: State::Normal,
        }
    }
}

impl Splitter {
    /// Adds `text`; returns the statements it completes, in order (empty
    /// ones, such as `;;` or comments only, are skipped).
    pub(crate) fn push(&mut self, text: &str) -> Vec<Statement> {
        let mut done = Vec::new();
        for c in text.chars() {
            self.state = self.step(c, &mut done);
        }
        done
    }

    /// Ends the input: the unterminated last statement, if there is one.
    pub(crate) fn finish(&mut self) -> Option<Statement> {
        let rest = std::mem::take(&mut self.current);
        self.state = State::Normal;
        meaningful(rest)
    }

    /// Drops whatever was fed since the last complete statement.
    pub(crate) fn clear(&mut self) {
        self.current.clear();
        self.state = State::Normal;
    }

    /// What the text fed so far still waits for.
    pub(crate) fn pending(&self) -> Pending {
        match self.state {
            State::Quoted(q) => Pending::Quote(q),
            State::BlockComment | State::BlockCommentStar => Pending::Comment,
            _ if strip_comments(&self.current).trim().is_empty() => Pending::Nothing,
            _ => Pending::Statement,
        }
    }

    /// One character in the current state; returns the next state.
    fn step(&mut self, c: char, done: &mut Vec<Statement>) -> State {
        match self.state {
            State::Dash if c == '-' => {
                self.current.push(c);
                State::LineComment
            }
            State::Slash if c == '*' => {
                self.current.push(c);
                State::BlockComment
            }
            State::Normal | State::Dash | State::Slash => self.normal(c, done),
            State::LineComment => {
                self.current.push(c);
                if c == '\n' {
                    State::Normal
                } else {
                    State::LineComment
                }
            }
            State::BlockComment | State::BlockCommentStar => {
                self.current.push(c);
                match c {
                    '/' if self.state == State::BlockCommentStar => State::Normal,
                    '*' => State::BlockCommentStar,
                    _ => State::BlockComment,
                }
            }
            State::Quoted(close) => {
                self.current.push(c);
                if c == close {
                    State::Normal
                } else {
                    State::Quoted(close)
                }
            }
        }
    }

    /// `c` outside quotes and comments.
    fn normal(&mut self, c: char, done: &mut Vec<Statement>) -> State {
        match c {
            ';' if !inside_trigger_body(&self.current) => {
                if let Some(st) = meaningful(std::mem::take(&mut self.current)) {
                    done.push(st);
                }
                State::Normal
            }
            '\'' | '"' | '`' | '[' => {
                self.current.push(c);
                State::Quoted(if c == '[' { ']' } else { c })
            }
            '-' => {
                self.current.push(c);
                State::Dash
            }
            '/' => {
                self.current.push(c);
                State::Slash
            }
            _ => {
                self.current.push(c);
                State::Normal
            }
        }
    }
}

/// `text` trimmed as a statement, unless it holds nothing but blanks and comments.
fn meaningful(text: String) -> Option<Statement> {
    if strip_comments(&text).trim().is_empty() {
        None
    } else {
        Some(Statement::new(text.trim().to_string()))
    }
}

/// All statements of `input`, the last one with or without its `;`.
#[cfg(test)]
fn statements(input: &str) -> Vec<Statement> {
    let mut s = Splitter::default();
    let mut all = s.push(input);
    all.extend(s.finish());
    all
}

/// The upper-cased keywords (and names) of `sql`, outside quotes and comments.
fn words(sql: &str) -> Vec<String> {
    strip_comments(sql)
        .to_ascii_uppercase()
        .split(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
        .filter(|w| !w.is_empty())
        .map(str::to_string)
        .collect()
}

/// Whether `sql` (a statement so far) is a `CREATE TRIGGER` whose
/// `BEGIN ... END` body is still open, so a `;` belongs to the body.
fn inside_trigger_body(sql: &str) -> bool {
    let w = words(sql);
    let mut it = w.iter().map(String::as_str);
    if it.next() != Some("CREATE") {
        return false;
    }
    let mut next = it.next();
    if matches!(next, Some("TEMP" | "TEMPORARY")) {
        next = it.next();
    }
    if next != Some("TRIGGER") {
        return false;
    }
    // BEGIN and CASE open a block, END closes one; the body is open until
    // the BEGIN that starts it is closed.
    let mut depth = 0usize;
    let mut begun = false;
    for word in it {
        match word {
            "BEGIN" => {
                begun = true;
                depth += 1;
            }
            "CASE" if begun => depth += 1,
            "END" if begun => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    begun && depth > 0
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
                chars.next();
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
    "TABLE_INFO",
    "TABLE_XINFO",
    "INDEX_LIST",
    "INDEX_INFO",
    "INDEX_XINFO",
    "FOREIGN_KEY_LIST",
];

/// Whether `sql` only reads: SELECT, SHOW, DESC(RIBE), EXPLAIN, VALUES,
/// reporting PRAGMAs, or WITH ... SELECT.
pub(crate) fn is_read(sql: &str) -> bool {
    let text = strip_comments(sql);
    let words = words(sql);
    match words.first().map(String::as_str) {
        Some("SELECT" | "SHOW" | "DESC" | "DESCRIBE" | "EXPLAIN" | "VALUES") => true,
        Some("PRAGMA") => {
            !text.contains('=')
                && words
                    .iter()
                    .skip(1)
                    .any(|w| READ_PRAGMAS.contains(&w.as_str()))
        }
        Some("WITH") => {
            words.iter().any(|w| w == "SELECT")
                && !words
                    .iter()
                    .any(|w| matches!(w.as_str(), "INSERT" | "UPDATE" | "DELETE" | "REPLACE"))
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
        assert_eq!(
            kinds("SELECT 'it''s; fine'"),
            [("SELECT 'it''s; fine'".into(), true)]
        );
        assert!(kinds(" ; -- only a comment").is_empty());
        assert!(kinds("/* a; */ ; /**/").is_empty());
        // A lone `-` or `/` is an operator, not a comment.
        assert_eq!(
            kinds("SELECT 4-1; SELECT 4/2"),
            [("SELECT 4-1".into(), true), ("SELECT 4/2".into(), true)]
        );
    }

    #[test]
    fn statements_complete_across_lines() {
        let mut s = Splitter::default();
        assert!(s.push("CREATE TABLE t (\n").is_empty());
        assert_eq!(s.pending(), Pending::Statement);
        let done = s.push("  id INTEGER);  SELECT 'a\n");
        assert_eq!(
            done,
            [Statement::new("CREATE TABLE t (\n  id INTEGER)".into())]
        );
        assert_eq!(s.pending(), Pending::Quote('\''));
        assert!(s.push("b;'").is_empty());
        assert_eq!(s.pending(), Pending::Statement);
        assert_eq!(s.push(";\n"), [Statement::new("SELECT 'a\nb;'".into())]);
        assert_eq!(s.pending(), Pending::Nothing);
        assert!(s.push("/* open\n").is_empty());
        assert_eq!(s.pending(), Pending::Comment);
        assert!(s.push("still */\n-- note\n").is_empty());
        assert_eq!(s.pending(), Pending::Nothing);
        assert!(s.push("SELECT 1").is_empty());
        s.clear();
        assert_eq!(s.pending(), Pending::Nothing);
        assert_eq!(s.finish(), None);
        assert!(s.push("SELECT 2").is_empty());
        assert_eq!(s.finish(), Some(Statement::new("SELECT 2".into())));
    }

    #[test]
    fn trigger_bodies_stay_whole() {
        let sql = "CREATE TRIGGER tr AFTER INSERT ON t BEGIN \
                   UPDATE t SET v = CASE WHEN v IS NULL THEN 'x' ELSE v END; \
                   INSERT INTO log VALUES (1); END";
        let got = kinds(&format!("{sql}; SELECT 1;"));
        assert_eq!(got, [(sql.to_string(), false), ("SELECT 1".into(), true)]);
        let temp = "create temp trigger tr before delete on t begin select 1; end";
        assert_eq!(kinds(&format!("{temp};")).len(), 1);
        // Without a BEGIN yet (a malformed statement), `;` still ends it.
        assert_eq!(kinds("CREATE TRIGGER x; SELECT 1").len(), 2);
        assert!(!inside_trigger_body("CREATE TABLE begin_end (a)"));
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
            "-- c\nvalues (1)",
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

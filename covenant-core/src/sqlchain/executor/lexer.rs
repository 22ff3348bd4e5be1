//! A small SQLite tokenizer and statement splitter.
//!
//! Tokens follow SQLite's own lexical rules (`tokenize.c`): `'strings'` with
//! `''` escapes, `"ids"`, `` `ids` `` and `[ids]`, `x'blobs'`, `--` and
//! `/* */` comments, `?NNN`/`:a`/`@a`/`$a` parameters; whitespace and comments
//! are dropped. Statements are split with the state machine of SQLite's
//! `sqlite3_complete()`, so a `;` inside a string, a comment or a
//! `CREATE TRIGGER ... BEGIN ...; END` body does not end a statement.
//!
//! Nothing here executes SQL; SQLite still parses every piece. If this
//! splitter ever disagrees with SQLite, the piece fails to prepare (syntax
//! error or "several statements"), so a disagreement cannot run the wrong SQL.

use std::borrow::Cow;

/// What a token is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    /// A keyword or bare identifier.
    Word,
    /// `"id"`, `` `id` `` or `[id]`.
    QuotedIdent,
    /// `'text'`.
    Str,
    /// `x'00ff'`.
    Blob,
    /// A numeric literal.
    Number,
    /// A parameter: `?`, `?1`, `:a`, `@a`, `$a`, `#a`.
    Variable,
    /// `;`.
    Semi,
    /// `(`.
    LParen,
    /// `)`.
    RParen,
    /// `,`.
    Comma,
    /// `.`.
    Dot,
    /// Any other operator or symbol (one byte).
    Op,
}

/// One token: its kind and where it sits in the SQL text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Token<'a> {
    /// What it is.
    pub(crate) kind: Kind,
    /// The raw text, quotes included.
    pub(crate) text: &'a str,
    /// Byte offset of its first byte in the tokenized text.
    pub(crate) start: usize,
    /// Byte offset just past it.
    pub(crate) end: usize,
}

impl<'a> Token<'a> {
    /// Whether this is the bare keyword `kw` (ASCII case-insensitive).
    pub(crate) fn is_word(&self, kw: &str) -> bool {
        self.kind == Kind::Word && self.text.eq_ignore_ascii_case(kw)
    }

    /// The identifier this token names, quotes removed, for words and quoted identifiers.
    pub(crate) fn ident(&self) -> Option<Cow<'a, str>> {
        match self.kind {
            Kind::Word => Some(Cow::Borrowed(self.text)),
            Kind::QuotedIdent => Some(unquote(self.text)),
            _ => None,
        }
    }

    /// The value of a string literal, quotes removed and `''` unescaped.
    pub(crate) fn string(&self) -> Option<Cow<'a, str>> {
        (self.kind == Kind::Str).then(|| unquote(self.text))
    }

    /// An identifier or a string literal (SQLite accepts either as a name in many places).
    pub(crate) fn name(&self) -> Option<Cow<'a, str>> {
        self.ident().or_else(|| self.string())
    }
}

/// Removes the surrounding quotes of `'..'`, `".."`, `` `..` `` or `[..]` and unescapes doubled quotes.
fn unquote(raw: &str) -> Cow<'_, str> {
    let Some(open) = raw.chars().next() else {
        return Cow::Borrowed(raw);
    };
    let close = match open {
        '\'' | '"' | '`' => open,
        '[' => ']',
        _ => return Cow::Borrowed(raw),
    };
    let inner = raw.get(open.len_utf8()..).unwrap_or("");
    let inner = inner.strip_suffix(close).unwrap_or(inner);
    if open == '[' {
        return Cow::Borrowed(inner);
    }
    let doubled: String = [close, close].iter().collect();
    if inner.contains(&doubled) {
        Cow::Owned(inner.replace(&doubled, &close.to_string()))
    } else {
        Cow::Borrowed(inner)
    }
}

/// SQLite's identifier characters: ASCII letters, digits, `_`, `$` and every non-ASCII byte.
fn is_id_char(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_' || b == b'$' || b >= 0x80
}

fn is_id_start(b: u8) -> bool {
    b.is_ascii_alphabetic() || b == b'_' || b >= 0x80
}

/// `sql[a..b]`, or `""` if the bounds are not char boundaries (never the case for lexer offsets).
pub(crate) fn slice(sql: &str, a: usize, b: usize) -> &str {
    sql.get(a..b).unwrap_or("")
}

/// Splits `sql` into tokens, dropping whitespace and comments. Never fails:
/// an unterminated string or comment runs to the end and SQLite reports it.
pub(crate) fn tokenize(sql: &str) -> Vec<Token<'_>> {
    let bytes = sql.as_bytes();
    let at = |i: usize| bytes.get(i).copied().unwrap_or(0);
    let mut out = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        let start = i;
        let b = at(i);
        let kind = match b {
            b' ' | b'\t' | b'\n' | b'\r' | 0x0c => {
                i += 1;
                continue;
            }
            b'-' if at(i + 1) == b'-' => {
                while i < bytes.len() && at(i) != b'\n' {
                    i += 1;
                }
                continue;
            }
            b'/' if at(i + 1) == b'*' => {
                i += 2;
                while i < bytes.len() && !(at(i) == b'*' && at(i + 1) == b'/') {
                    i += 1;
                }
                i = (i + 2).min(bytes.len());
                continue;
            }
            b'\'' | b'"' | b'`' => {
                i = end_of_quoted(bytes, i, b);
                if b == b'\'' {
                    Kind::Str
                } else {
                    Kind::QuotedIdent
                }
            }
            b'[' => {
                i += 1;
                while i < bytes.len() && at(i) != b']' {
                    i += 1;
                }
                i = (i + 1).min(bytes.len());
                Kind::QuotedIdent
            }
            b'x' | b'X' if at(i + 1) == b'\'' => {
                i = end_of_quoted(bytes, i + 1, b'\'');
                Kind::Blob
            }
            b'0'..=b'9' => {
                i = end_of_number(bytes, i);
                Kind::Number
            }
            b'.' if at(i + 1).is_ascii_digit() => {
                i = end_of_number(bytes, i);
                Kind::Number
            }
            b'?' => {
                i += 1;
                while at(i).is_ascii_digit() {
                    i += 1;
                }
                Kind::Variable
            }
            b':' | b'@' | b'#' if is_id_char(at(i + 1)) => {
                i += 1;
                while is_id_char(at(i)) {
                    i += 1;
                }
                Kind::Variable
            }
            b'$' if is_id_char(at(i + 1)) => {
                i = end_of_tcl_variable(bytes, i + 1);
                Kind::Variable
            }
            _ if is_id_start(b) => {
                while i < bytes.len() && is_id_char(at(i)) {
                    i += 1;
                }
                Kind::Word
            }
            b';' => {
                i += 1;
                Kind::Semi
            }
            b'(' => {
                i += 1;
                Kind::LParen
            }
            b')' => {
                i += 1;
                Kind::RParen
            }
            b',' => {
                i += 1;
                Kind::Comma
            }
            b'.' => {
                i += 1;
                Kind::Dot
            }
            _ => {
                i += 1;
                Kind::Op
            }
        };
        out.push(Token {
            kind,
            text: slice(sql, start, i),
            start,
            end: i,
        });
    }
    out
}

/// Index just past a quoted run starting at `open_at` (doubled quotes stay inside).
fn end_of_quoted(bytes: &[u8], open_at: usize, quote: u8) -> usize {
    let mut i = open_at + 1;
    while i < bytes.len() {
        if bytes.get(i) == Some(&quote) {
            if bytes.get(i + 1) == Some(&quote) {
                i += 2;
                continue;
            }
            return i + 1;
        }
        i += 1;
    }
    bytes.len()
}

fn end_of_number(bytes: &[u8], mut i: usize) -> usize {
    while let Some(&b) = bytes.get(i) {
        let exponent_sign = (b == b'+' || b == b'-')
            && matches!(bytes.get(i.wrapping_sub(1)), Some(b'e' | b'E'))
            && bytes.get(i + 1).is_some_and(u8::is_ascii_digit);
        if b.is_ascii_alphanumeric() || b == b'_' || b == b'.' || exponent_sign {
            i += 1;
        } else {
            break;
        }
    }
    i
}

/// `$name`, `$a::b` and a trailing `(...)` suffix, as SQLite's TCL variables.
fn end_of_tcl_variable(bytes: &[u8], mut i: usize) -> usize {
    loop {
        match bytes.get(i) {
            Some(&b) if is_id_char(b) => i += 1,
            Some(b':') if bytes.get(i + 1) == Some(&b':') => i += 2,
            Some(b'(') => {
                while i < bytes.len() && bytes.get(i) != Some(&b')') {
                    i += 1;
                }
                return (i + 1).min(bytes.len());
            }
            _ => return i,
        }
    }
}

/// One statement of a multi-statement text.
#[derive(Debug, Clone)]
pub(crate) struct Piece<'a> {
    /// The statement's text, from its first token to its last (no trailing `;`).
    pub(crate) text: &'a str,
    /// Its tokens (no trailing `;`).
    pub(crate) tokens: Vec<Token<'a>>,
}

// Token classes and transitions of `sqlite3_complete()` (complete.c), whitespace omitted:
// whitespace never changes the state.
const SEMI: usize = 0;
const OTHER: usize = 1;
const EXPLAIN: usize = 2;
const CREATE: usize = 3;
const TEMP: usize = 4;
const TRIGGER: usize = 5;
const END: usize = 6;
const TRANS: [[u8; 7]; 8] = [
    //  SEMI OTHER EXPLAIN CREATE TEMP TRIGGER END
    [1, 2, 3, 4, 2, 2, 2], // 0 invalid
    [1, 2, 3, 4, 2, 2, 2], // 1 start
    [1, 2, 2, 2, 2, 2, 2], // 2 normal
    [1, 3, 2, 4, 2, 2, 2], // 3 explain
    [1, 2, 2, 2, 4, 5, 2], // 4 create
    [6, 5, 5, 5, 5, 5, 5], // 5 trigger
    [6, 5, 5, 5, 5, 5, 7], // 6 semi
    [1, 5, 5, 5, 5, 5, 5], // 7 end
];

fn class(t: &Token<'_>) -> usize {
    match t.kind {
        Kind::Semi => SEMI,
        Kind::Word => {
            let w = t.text;
            if w.eq_ignore_ascii_case("create") {
                CREATE
            } else if w.eq_ignore_ascii_case("trigger") {
                TRIGGER
            } else if w.eq_ignore_ascii_case("temp") || w.eq_ignore_ascii_case("temporary") {
                TEMP
            } else if w.eq_ignore_ascii_case("end") {
                END
            } else if w.eq_ignore_ascii_case("explain") {
                EXPLAIN
            } else {
                OTHER
            }
        }
        _ => OTHER,
    }
}

/// Splits `sql` into statements; empty statements (`;;`, comments only) are dropped.
pub(crate) fn split(sql: &str) -> Vec<Piece<'_>> {
    let tokens = tokenize(sql);
    let mut pieces = Vec::new();
    let mut state = 0usize;
    let mut begin = 0usize;
    for (i, tok) in tokens.iter().enumerate() {
        let c = class(tok);
        state = TRANS
            .get(state)
            .and_then(|row| row.get(c))
            .map_or(2, |&s| usize::from(s));
        if c == SEMI && state == 1 {
            push_piece(sql, tokens.get(begin..i).unwrap_or(&[]), &mut pieces);
            begin = i + 1;
        }
    }
    push_piece(sql, tokens.get(begin..).unwrap_or(&[]), &mut pieces);
    pieces
}

fn push_piece<'a>(sql: &'a str, tokens: &[Token<'a>], out: &mut Vec<Piece<'a>>) {
    if let (Some(first), Some(last)) = (tokens.first(), tokens.last()) {
        out.push(Piece {
            text: slice(sql, first.start, last.end),
            tokens: tokens.to_vec(),
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kinds(sql: &str) -> Vec<(Kind, &str)> {
        tokenize(sql)
            .into_iter()
            .map(|t| (t.kind, t.text))
            .collect()
    }

    fn texts(sql: &str) -> Vec<&str> {
        split(sql).into_iter().map(|p| p.text).collect()
    }

    #[test]
    fn tokens_respect_quotes_and_comments() {
        assert_eq!(
            kinds(
                "SELECT 'a''b;', \"c\"\"d\" -- x;\n/* y; */ [e f], `g`, x'00', 1.5e+3, ?2, :n, $t::u(v)"
            ),
            vec![
                (Kind::Word, "SELECT"),
                (Kind::Str, "'a''b;'"),
                (Kind::Comma, ","),
                (Kind::QuotedIdent, "\"c\"\"d\""),
                (Kind::QuotedIdent, "[e f]"),
                (Kind::Comma, ","),
                (Kind::QuotedIdent, "`g`"),
                (Kind::Comma, ","),
                (Kind::Blob, "x'00'"),
                (Kind::Comma, ","),
                (Kind::Number, "1.5e+3"),
                (Kind::Comma, ","),
                (Kind::Variable, "?2"),
                (Kind::Comma, ","),
                (Kind::Variable, ":n"),
                (Kind::Comma, ","),
                (Kind::Variable, "$t::u(v)"),
            ]
        );
        let t = tokenize("'it''s' \"a\"\"b\" [c]");
        assert_eq!(t[0].string().unwrap(), "it's");
        assert_eq!(t[1].ident().unwrap(), "a\"b");
        assert_eq!(t[2].ident().unwrap(), "c");
    }

    #[test]
    fn unicode_identifiers_and_unterminated_input_do_not_panic() {
        assert_eq!(
            kinds("SELECT 名前 FROM 表"),
            vec![
                (Kind::Word, "SELECT"),
                (Kind::Word, "名前"),
                (Kind::Word, "FROM"),
                (Kind::Word, "表")
            ]
        );
        for bad in ["'abc", "\"abc", "[abc", "/* abc", "x'0", "$a(b", "é'"] {
            let _ = split(bad);
        }
    }

    #[test]
    fn split_statements() {
        assert_eq!(
            texts("SELECT 1; SELECT ';'  ;; -- c\n SELECT 3"),
            vec!["SELECT 1", "SELECT ';'", "SELECT 3"]
        );
        assert!(texts(" ; -- only a comment\n /* and this */ ;").is_empty());
    }

    #[test]
    fn split_keeps_trigger_bodies_whole() {
        let sql = "CREATE TABLE t(a); CREATE TEMP TRIGGER tr AFTER INSERT ON t BEGIN \
                   INSERT INTO t VALUES(1); UPDATE t SET a = 2; END; SELECT 1";
        let got = texts(sql);
        assert_eq!(got.len(), 3, "{got:?}");
        assert!(got[1].starts_with("CREATE TEMP TRIGGER") && got[1].ends_with("END"));
        // A column named "end" outside a trigger is just a word.
        assert_eq!(texts("SELECT 1 AS trigger; SELECT 2").len(), 2);
    }
}

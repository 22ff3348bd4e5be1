//! MySQL-style `SHOW`/`DESC` statements the drivers send, rewritten to SQLite.
//!
//! - `SHOW TABLES` → table names (`name`) from `sqlite_master`;
//! - `SHOW CREATE TABLE t` → its `sql`;
//! - `SHOW INDEX FROM [TABLE] t` (also `INDEXES`, `KEYS`) → index names (`name`);
//! - `SHOW TABLE t`, `SHOW [FULL] COLUMNS|FIELDS FROM t`, `DESC t`,
//!   `DESCRIBE t` → `PRAGMA table_info(t)`.
//!
//! Keywords are case-insensitive; names may be quoted and schema-qualified.
//! Internal (`sqlite_*`) and chain (`_covenant_*`) tables are never listed.
//! Pure text rewriting: no connection here.

use super::error::{SqlError, excerpt};
use super::guard::{HIDDEN_TABLE_PREFIX, is_hidden};
use super::lexer::{Kind, Token};

fn literal(s: &str) -> String {
    format!("'{}'", s.replace('\'', "''"))
}

fn ident(s: &str) -> String {
    format!("\"{}\"", s.replace('"', "\"\""))
}

/// A possibly schema-qualified name: `t`, `"t"`, `main.t`.
struct Name {
    schema: Option<String>,
    table: String,
}

impl Name {
    fn master(&self) -> String {
        match &self.schema {
            Some(s) => format!("{}.sqlite_master", ident(s)),
            None => "sqlite_master".to_owned(),
        }
    }
}

/// Parses exactly a name from `tokens` (nothing may follow).
fn parse_name(tokens: &[Token<'_>]) -> Option<Name> {
    match tokens {
        [t] => Some(Name {
            schema: None,
            table: t.name()?.into_owned(),
        }),
        [s, dot, t] if dot.kind == Kind::Dot => Some(Name {
            schema: Some(s.name()?.into_owned()),
            table: t.name()?.into_owned(),
        }),
        _ => None,
    }
}

/// The SQLite statement for a SHOW/DESC statement; `Ok(None)` when `tokens` is not one.
pub(crate) fn translate(tokens: &[Token<'_>], text: &str) -> Result<Option<String>, SqlError> {
    let Some(first) = tokens.first() else {
        return Ok(None);
    };
    let rest = tokens.get(1..).unwrap_or(&[]);
    let name_from = |toks: &[Token<'_>]| -> Result<Name, SqlError> {
        let name = parse_name(toks).ok_or_else(|| SqlError::UnsupportedShow {
            statement: excerpt(text),
        })?;
        if is_hidden(&name.table) {
            return Err(SqlError::NotAllowed {
                statement: excerpt(text),
                reason: format!("{} is one of the database chain's own tables", name.table),
            });
        }
        Ok(name)
    };
    let word = |i: usize, kw: &str| rest.get(i).is_some_and(|t| t.is_word(kw));
    let tail = |i: usize| rest.get(i..).unwrap_or(&[]);
    let sql = if first.is_word("desc") || first.is_word("describe") {
        table_info(&name_from(rest)?)
    } else if !first.is_word("show") {
        return Ok(None);
    } else if word(0, "tables") && rest.len() == 1 {
        let hidden = HIDDEN_TABLE_PREFIX.replace('_', "\\_");
        format!(
            "SELECT name FROM sqlite_master WHERE type = 'table' \
             AND name NOT LIKE 'sqlite\\_%' ESCAPE '\\' AND name NOT LIKE '{hidden}%' ESCAPE '\\' \
             ORDER BY name"
        )
    } else if word(0, "create") && word(1, "table") {
        let n = name_from(tail(2))?;
        format!(
            "SELECT sql FROM {} WHERE type = 'table' AND name = {} COLLATE NOCASE",
            n.master(),
            literal(&n.table)
        )
    } else if (word(0, "index") || word(0, "indexes") || word(0, "keys")) && word(1, "from") {
        let from = if word(2, "table") { 3 } else { 2 };
        let n = name_from(tail(from))?;
        format!(
            "SELECT name FROM {} WHERE type = 'index' AND tbl_name = {} COLLATE NOCASE ORDER BY name",
            n.master(),
            literal(&n.table)
        )
    } else if word(0, "table") {
        table_info(&name_from(tail(1))?)
    } else {
        let full = usize::from(word(0, "full"));
        if (word(full, "columns") || word(full, "fields")) && word(full + 1, "from") {
            table_info(&name_from(tail(full + 2))?)
        } else {
            return Err(SqlError::UnsupportedShow {
                statement: excerpt(text),
            });
        }
    };
    Ok(Some(sql))
}

fn table_info(n: &Name) -> String {
    match &n.schema {
        Some(s) => format!("PRAGMA {}.table_info({})", ident(s), literal(&n.table)),
        None => format!("PRAGMA table_info({})", literal(&n.table)),
    }
}

#[cfg(test)]
mod tests {
    use super::super::lexer::tokenize;
    use super::*;

    fn tr(sql: &str) -> Result<Option<String>, SqlError> {
        translate(&tokenize(sql), sql)
    }

    #[test]
    fn forms() {
        assert!(
            tr("show tables")
                .unwrap()
                .unwrap()
                .starts_with("SELECT name FROM sqlite_master")
        );
        assert_eq!(
            tr("SHOW CREATE TABLE \"it's\"").unwrap().unwrap(),
            "SELECT sql FROM sqlite_master WHERE type = 'table' AND name = 'it''s' COLLATE NOCASE"
        );
        let idx = "SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = 't' COLLATE NOCASE ORDER BY name";
        assert_eq!(tr("SHOW INDEX FROM TABLE t").unwrap().unwrap(), idx);
        assert_eq!(tr("show index from `t`").unwrap().unwrap(), idx);
        for s in [
            "SHOW TABLE t",
            "SHOW COLUMNS FROM t",
            "show full columns from [t]",
            "DESC t",
            "describe 't'",
        ] {
            assert_eq!(tr(s).unwrap().unwrap(), "PRAGMA table_info('t')", "{s}");
        }
        assert_eq!(
            tr("DESC main.t").unwrap().unwrap(),
            "PRAGMA \"main\".table_info('t')"
        );
        assert_eq!(tr("SELECT 1").unwrap(), None);
    }

    #[test]
    fn refusals() {
        assert!(matches!(
            tr("SHOW DATABASES"),
            Err(SqlError::UnsupportedShow { .. })
        ));
        assert!(matches!(tr("DESC"), Err(SqlError::UnsupportedShow { .. })));
        assert!(matches!(
            tr("DESC t extra"),
            Err(SqlError::UnsupportedShow { .. })
        ));
        assert!(matches!(
            tr("DESC _covenant_blocks"),
            Err(SqlError::NotAllowed { .. })
        ));
    }
}

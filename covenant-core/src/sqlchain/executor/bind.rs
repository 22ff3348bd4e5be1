//! Binding a query's arguments to its statements' parameters.
//!
//! Positional arguments are consumed statement by statement: a statement with
//! N parameters (`?`, or up to `?N`) takes the next N values. Named arguments
//! bind by name in every statement that uses them; SQLite parameter names
//! include their prefix (`:id`, `@id`, `$id`), argument keys may omit it.
//! Every argument must be used, and every parameter given a value.

use rusqlite::Statement;

use super::error::{SqlError, excerpt};
use crate::sqlchain::query::Args;
use crate::sqlchain::value::Value;

struct NamedArg<'q> {
    given: &'q str,
    key: &'q str,
    value: &'q Value,
    used: bool,
}

enum Source<'q> {
    Positional { values: &'q [Value], next: usize },
    Named(Vec<NamedArg<'q>>),
}

/// Hands out a query's arguments to its statements in order.
pub(crate) struct Binder<'q> {
    source: Source<'q>,
}

/// A parameter name or argument key without its `:`, `@` or `$` prefix.
fn strip_prefix(name: &str) -> &str {
    name.strip_prefix([':', '@', '$']).unwrap_or(name)
}

impl<'q> Binder<'q> {
    /// Prepares to bind `args`; refuses two keys naming the same parameter.
    pub(crate) fn new(args: &'q Args) -> Result<Binder<'q>, SqlError> {
        let source = match args {
            Args::Positional(values) => Source::Positional { values, next: 0 },
            Args::Named(pairs) => {
                let mut named: Vec<NamedArg<'q>> = Vec::with_capacity(pairs.len());
                for (given, value) in pairs {
                    let key = strip_prefix(given);
                    if named.iter().any(|n| n.key == key) {
                        return Err(SqlError::DuplicateParameter {
                            name: given.clone(),
                        });
                    }
                    named.push(NamedArg {
                        given,
                        key,
                        value,
                        used: false,
                    });
                }
                Source::Named(named)
            }
        };
        Ok(Binder { source })
    }

    /// Binds the statement's parameters; returns the values bound.
    pub(crate) fn bind(
        &mut self,
        stmt: &mut Statement<'_>,
        sql: &str,
    ) -> Result<Vec<&'q Value>, SqlError> {
        let count = stmt.parameter_count();
        let mut bound = Vec::with_capacity(count);
        match &mut self.source {
            Source::Positional { values, next } => {
                let end = *next + count;
                let Some(taken) = values.get(*next..end) else {
                    return Err(SqlError::ArgCount {
                        expected: end,
                        got: values.len(),
                    });
                };
                for (i, v) in taken.iter().enumerate() {
                    stmt.raw_bind_parameter(i + 1, v)
                        .map_err(|e| SqlError::from_sqlite(&e, sql))?;
                    bound.push(v);
                }
                *next = end;
            }
            Source::Named(named) => {
                for idx in 1..=count {
                    let name = match stmt.parameter_name(idx) {
                        Some(n) if !n.starts_with('?') => n.to_owned(),
                        _ => {
                            return Err(SqlError::MixedParameters {
                                statement: excerpt(sql),
                            });
                        }
                    };
                    let key = strip_prefix(&name);
                    let Some(arg) = named.iter_mut().find(|a| a.key == key) else {
                        return Err(SqlError::MissingParameter {
                            name,
                            statement: excerpt(sql),
                        });
                    };
                    arg.used = true;
                    stmt.raw_bind_parameter(idx, arg.value)
                        .map_err(|e| SqlError::from_sqlite(&e, sql))?;
                    bound.push(arg.value);
                }
            }
        }
        Ok(bound)
    }

    /// Checks that every argument was used.
    pub(crate) fn finish(self) -> Result<(), SqlError> {
        match self.source {
            Source::Positional { values, next } if next != values.len() => {
                Err(SqlError::ArgCount {
                    expected: next,
                    got: values.len(),
                })
            }
            Source::Positional { .. } => Ok(()),
            Source::Named(named) => match named.into_iter().find(|a| !a.used) {
                Some(a) => Err(SqlError::UnknownParameter {
                    name: a.given.to_owned(),
                }),
                None => Ok(()),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rusqlite::Connection;

    fn run(conn: &Connection, sqls: &[&str], args: &Args) -> Result<Vec<Value>, SqlError> {
        let mut b = Binder::new(args)?;
        let mut out = Vec::new();
        for sql in sqls {
            let mut stmt = conn.prepare(sql).unwrap();
            b.bind(&mut stmt, sql)?;
            let mut rows = stmt.raw_query();
            while let Some(row) = rows.next().unwrap() {
                out.push(row.get::<_, Value>(0).unwrap());
            }
        }
        b.finish()?;
        Ok(out)
    }

    #[test]
    fn positional_is_consumed_statement_by_statement() {
        let c = Connection::open_in_memory().unwrap();
        let args = Args::Positional(vec![1.into(), 2.into(), 3.into()]);
        let got = run(&c, &["SELECT ? + ?", "SELECT ?1 * 10"], &args).unwrap();
        assert_eq!(got, vec![Value::Integer(3), Value::Integer(30)]);
        assert_eq!(
            run(
                &c,
                &["SELECT ?", "SELECT ?"],
                &Args::Positional(vec![1.into()])
            ),
            Err(SqlError::ArgCount {
                expected: 2,
                got: 1
            })
        );
        assert_eq!(
            run(
                &c,
                &["SELECT ?"],
                &Args::Positional(vec![1.into(), 2.into()])
            ),
            Err(SqlError::ArgCount {
                expected: 1,
                got: 2
            })
        );
        assert_eq!(
            run(&c, &["SELECT ?"], &Args::default()),
            Err(SqlError::ArgCount {
                expected: 1,
                got: 0
            })
        );
    }

    #[test]
    fn named_with_any_prefix() {
        let c = Connection::open_in_memory().unwrap();
        let args = Args::Named(vec![
            (":a".into(), 1.into()),
            ("b".into(), 2.into()),
            ("$c".into(), 3.into()),
        ]);
        let got = run(&c, &["SELECT :a + @b + $c", "SELECT @a"], &args).unwrap();
        assert_eq!(got, vec![Value::Integer(6), Value::Integer(1)]);
    }

    #[test]
    fn named_errors() {
        let c = Connection::open_in_memory().unwrap();
        let named = |k: &str| Args::Named(vec![(k.to_owned(), Value::Null)]);
        assert!(matches!(
            run(&c, &["SELECT :x"], &named("y")),
            Err(SqlError::MissingParameter { .. })
        ));
        assert!(matches!(
            run(&c, &["SELECT 1"], &named("y")),
            Err(SqlError::UnknownParameter { .. })
        ));
        assert!(matches!(
            run(&c, &["SELECT ?"], &named("y")),
            Err(SqlError::MixedParameters { .. })
        ));
        let dup = Args::Named(vec![("a".into(), Value::Null), (":a".into(), Value::Null)]);
        assert!(matches!(
            Binder::new(&dup),
            Err(SqlError::DuplicateParameter { .. })
        ));
    }
}

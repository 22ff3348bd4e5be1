//! Serde rows: turning a [`QueryResult`]'s rows into the caller's own types.
//!
//! A row deserialises as a map from column name to value, so a
//! `#[derive(Deserialize)]` struct picks its fields by column name (extra
//! columns are ignored unless the struct denies unknown fields); as a
//! sequence, so a tuple takes the columns in order; and, when the row has a
//! single column, as that one value (`SELECT count(*)` into an `i64`).
//!
//! Values map to the natural Rust types: `NULL` to `Option::None` (and to
//! `()`), INTEGER to every integer type (range-checked), to `bool` (0 or 1)
//! and to floats, REAL to floats, TEXT to `String`/`&str`/`char` and unit
//! enum variants by name, BLOB to `Vec<u8>` and byte buffers. Anything else
//! is a [`RowError`] naming the row and the column.
//!
//! Pure data conversion: must not import the network or the database handle.

use std::fmt::Display;

use covenant_core::ErrorCode;
use covenant_core::sqlchain::query::QueryResult;
use covenant_core::sqlchain::value::Value;
use serde::de::value::{BorrowedStrDeserializer, SeqDeserializer};
use serde::de::{self, DeserializeSeed, Expected, Unexpected, Visitor};
use serde::{Deserialize, forward_to_deserialize_any};

/// Why a row did not fit the requested type.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RowError {
    /// A column's value does not fit the field it goes to.
    #[error("row {row}, column `{column}`: {reason}")]
    Column {
        /// Row index (0-based) in the result.
        row: usize,
        /// The column's name.
        column: String,
        /// What was expected and what was found.
        reason: String,
    },
    /// The type needs a column the result does not have.
    #[error("row {row}: the result has no column `{column}` (its columns: {available})")]
    MissingColumn {
        /// Row index (0-based) in the result.
        row: usize,
        /// The missing column (the field's name).
        column: String,
        /// The result's columns, comma separated.
        available: String,
    },
    /// The row as a whole does not fit (wrong number of columns, duplicate names).
    #[error("row {row}: {reason}")]
    Shape {
        /// Row index (0-based) in the result.
        row: usize,
        /// What does not fit.
        reason: String,
    },
}

impl RowError {
    /// The stable code of this error.
    pub fn code(&self) -> ErrorCode {
        ErrorCode::RowType
    }

    /// The row the error is about.
    pub fn row(&self) -> usize {
        match self {
            RowError::Column { row, .. }
            | RowError::MissingColumn { row, .. }
            | RowError::Shape { row, .. } => *row,
        }
    }

    /// The column the error is about, if it is about one.
    pub fn column(&self) -> Option<&str> {
        match self {
            RowError::Column { column, .. } | RowError::MissingColumn { column, .. } => {
                Some(column)
            }
            RowError::Shape { .. } => None,
        }
    }
}

/// Serde deserialisation of a query result's rows (implemented for [`QueryResult`]).
pub trait RowsExt {
    /// Every row as a `T`, in order.
    fn rows_as<'de, T: Deserialize<'de>>(&'de self) -> Result<Vec<T>, RowError>;
    /// The first row as a `T`, or `None` when there is no row.
    fn first_row_as<'de, T: Deserialize<'de>>(&'de self) -> Result<Option<T>, RowError>;
}

impl RowsExt for QueryResult {
    fn rows_as<'de, T: Deserialize<'de>>(&'de self) -> Result<Vec<T>, RowError> {
        self.rows
            .iter()
            .enumerate()
            .map(|(i, row)| decode_row(i, &self.columns, row))
            .collect()
    }

    fn first_row_as<'de, T: Deserialize<'de>>(&'de self) -> Result<Option<T>, RowError> {
        self.rows
            .first()
            .map(|row| decode_row(0, &self.columns, row))
            .transpose()
    }
}

/// One row (`values`, named by `columns`) as a `T`; errors call it row 0.
pub fn from_row<'de, T: Deserialize<'de>>(
    columns: &'de [String],
    values: &'de [Value],
) -> Result<T, RowError> {
    decode_row(0, columns, values)
}

fn decode_row<'de, T: Deserialize<'de>>(
    index: usize,
    columns: &'de [String],
    values: &'de [Value],
) -> Result<T, RowError> {
    if columns.len() != values.len() {
        return Err(RowError::Shape {
            row: index,
            reason: format!(
                "{} values for {} columns (a malformed result)",
                values.len(),
                columns.len()
            ),
        });
    }
    T::deserialize(RowDe { columns, values }).map_err(|e| match e {
        DeError::AtColumn { column, reason } => RowError::Column {
            row: index,
            column,
            reason,
        },
        DeError::MissingField(field) => RowError::MissingColumn {
            row: index,
            column: field.to_string(),
            available: columns.join(", "),
        },
        DeError::Custom(reason) => RowError::Shape { row: index, reason },
    })
}

/// The serde error inside one row; [`decode_row`] turns it into a [`RowError`].
#[derive(Debug)]
enum DeError {
    /// A failure not (yet) tied to a column.
    Custom(String),
    /// A struct field had no column.
    MissingField(&'static str),
    /// A failure in the value of `column`.
    AtColumn { column: String, reason: String },
}

impl Display for DeError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            DeError::Custom(m) => f.write_str(m),
            DeError::MissingField(field) => write!(f, "no column `{field}`"),
            DeError::AtColumn { column, reason } => write!(f, "column `{column}`: {reason}"),
        }
    }
}

impl std::error::Error for DeError {}

impl de::Error for DeError {
    fn custom<T: Display>(msg: T) -> Self {
        DeError::Custom(msg.to_string())
    }

    fn invalid_type(unexp: Unexpected<'_>, exp: &dyn Expected) -> Self {
        DeError::Custom(format!("expected {exp}, found {}", describe(&unexp)))
    }

    fn invalid_value(unexp: Unexpected<'_>, exp: &dyn Expected) -> Self {
        DeError::Custom(format!("expected {exp}, found {}", describe(&unexp)))
    }

    fn missing_field(field: &'static str) -> Self {
        DeError::MissingField(field)
    }
}

impl DeError {
    /// Ties a value's failure to `column` (an inner column wins).
    fn at(self, column: &str) -> DeError {
        match self {
            DeError::Custom(reason) => DeError::AtColumn {
                column: column.to_string(),
                reason,
            },
            other => other,
        }
    }
}

/// A SQL-minded description of what a value was.
fn describe(unexp: &Unexpected<'_>) -> String {
    match unexp {
        Unexpected::Unit => "NULL (use an Option for a nullable column)".to_string(),
        Unexpected::Signed(i) => format!("integer {i}"),
        Unexpected::Unsigned(u) => format!("integer {u}"),
        Unexpected::Float(f) => format!("real {f:?}"),
        Unexpected::Str(s) => {
            let preview: String = s.chars().take(40).collect();
            let more = if s.chars().count() > 40 { "…" } else { "" };
            format!("text {preview:?}{more}")
        }
        Unexpected::Bytes(b) => format!("a blob of {} bytes", b.len()),
        other => other.to_string(),
    }
}

/// Deserialises one row.
struct RowDe<'de> {
    columns: &'de [String],
    values: &'de [Value],
}

impl<'de> RowDe<'de> {
    /// The only value of a one-column row, for a scalar target.
    fn single(&self) -> Result<(&'de str, ValueDe<'de>), DeError> {
        match (self.columns, self.values) {
            ([column], [value]) => Ok((column.as_str(), ValueDe { value })),
            _ => Err(DeError::Custom(format!(
                "a single value needs a row of exactly one column, this one has {} ({})",
                self.columns.len(),
                self.columns.join(", ")
            ))),
        }
    }

    fn pairs(&self) -> ColumnsAccess<'de> {
        ColumnsAccess {
            columns: self.columns.iter(),
            values: self.values.iter(),
            current: None,
        }
    }
}

macro_rules! scalar_from_single_column {
    ($($method:ident)*) => {
        $(
            fn $method<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
                let (column, value) = self.single()?;
                value.$method(visitor).map_err(|e| e.at(column))
            }
        )*
    };
}

impl<'de> de::Deserializer<'de> for RowDe<'de> {
    type Error = DeError;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        visitor.visit_map(self.pairs())
    }

    fn deserialize_map<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        visitor.visit_map(self.pairs())
    }

    fn deserialize_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, DeError> {
        visitor.visit_map(self.pairs())
    }

    fn deserialize_seq<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        visitor.visit_seq(self.pairs())
    }

    fn deserialize_tuple<V: Visitor<'de>>(
        self,
        len: usize,
        visitor: V,
    ) -> Result<V::Value, DeError> {
        if len != self.values.len() {
            return Err(DeError::Custom(format!(
                "a tuple of {len} needs {len} columns, the row has {} ({})",
                self.values.len(),
                self.columns.join(", ")
            )));
        }
        visitor.visit_seq(self.pairs())
    }

    fn deserialize_tuple_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        len: usize,
        visitor: V,
    ) -> Result<V::Value, DeError> {
        self.deserialize_tuple(len, visitor)
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        visitor: V,
    ) -> Result<V::Value, DeError> {
        visitor.visit_newtype_struct(self)
    }

    fn deserialize_ignored_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        visitor.visit_unit()
    }

    fn deserialize_enum<V: Visitor<'de>>(
        self,
        name: &'static str,
        variants: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, DeError> {
        let (column, value) = self.single()?;
        value
            .deserialize_enum(name, variants, visitor)
            .map_err(|e| e.at(column))
    }

    fn deserialize_unit_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        visitor: V,
    ) -> Result<V::Value, DeError> {
        self.deserialize_unit(visitor)
    }

    scalar_from_single_column! {
        deserialize_bool deserialize_i8 deserialize_i16 deserialize_i32 deserialize_i64
        deserialize_i128 deserialize_u8 deserialize_u16 deserialize_u32 deserialize_u64
        deserialize_u128 deserialize_f32 deserialize_f64 deserialize_char deserialize_str
        deserialize_string deserialize_bytes deserialize_byte_buf deserialize_option
        deserialize_unit deserialize_identifier
    }
}

/// A row's columns, as map entries or sequence elements.
struct ColumnsAccess<'de> {
    columns: std::slice::Iter<'de, String>,
    values: std::slice::Iter<'de, Value>,
    /// The column whose key was just handed out (map access).
    current: Option<&'de str>,
}

impl<'de> de::MapAccess<'de> for ColumnsAccess<'de> {
    type Error = DeError;

    fn next_key_seed<K: DeserializeSeed<'de>>(
        &mut self,
        seed: K,
    ) -> Result<Option<K::Value>, DeError> {
        let Some(column) = self.columns.next() else {
            return Ok(None);
        };
        self.current = Some(column);
        seed.deserialize(BorrowedStrDeserializer::<DeError>::new(column))
            .map(Some)
    }

    fn next_value_seed<V: DeserializeSeed<'de>>(&mut self, seed: V) -> Result<V::Value, DeError> {
        let column = self.current.take().unwrap_or("?");
        let Some(value) = self.values.next() else {
            return Err(DeError::Custom(format!("column `{column}` has no value")));
        };
        seed.deserialize(ValueDe { value })
            .map_err(|e| e.at(column))
    }

    fn size_hint(&self) -> Option<usize> {
        Some(self.columns.len())
    }
}

impl<'de> de::SeqAccess<'de> for ColumnsAccess<'de> {
    type Error = DeError;

    fn next_element_seed<T: DeserializeSeed<'de>>(
        &mut self,
        seed: T,
    ) -> Result<Option<T::Value>, DeError> {
        let (Some(column), Some(value)) = (self.columns.next(), self.values.next()) else {
            return Ok(None);
        };
        seed.deserialize(ValueDe { value })
            .map(Some)
            .map_err(|e| e.at(column))
    }

    fn size_hint(&self) -> Option<usize> {
        Some(self.values.len())
    }
}

/// Deserialises one SQL value.
struct ValueDe<'de> {
    value: &'de Value,
}

impl<'de> de::Deserializer<'de> for ValueDe<'de> {
    type Error = DeError;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        match self.value {
            Value::Null => visitor.visit_unit(),
            Value::Integer(i) => visitor.visit_i64(*i),
            Value::Real(r) => visitor.visit_f64(*r),
            Value::Text(s) => visitor.visit_borrowed_str(s),
            Value::Blob(b) => visitor.visit_borrowed_bytes(b),
        }
    }

    fn deserialize_bool<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        match self.value {
            Value::Integer(0) => visitor.visit_bool(false),
            Value::Integer(1) => visitor.visit_bool(true),
            Value::Integer(i) => Err(de::Error::invalid_value(
                Unexpected::Signed(*i),
                &"a boolean (0 or 1)",
            )),
            _ => self.deserialize_any(visitor),
        }
    }

    fn deserialize_f32<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        self.deserialize_f64(visitor)
    }

    fn deserialize_f64<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        match self.value {
            // SQLite hands out whole numbers as INTEGER even in REAL-ish expressions.
            Value::Integer(i) => visitor.visit_f64(*i as f64),
            _ => self.deserialize_any(visitor),
        }
    }

    fn deserialize_option<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        match self.value {
            Value::Null => visitor.visit_none(),
            _ => visitor.visit_some(self),
        }
    }

    fn deserialize_seq<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        match self.value {
            // `Vec<u8>` asks for a sequence of bytes.
            Value::Blob(b) => visitor.visit_seq(SeqDeserializer::new(b.iter().copied())),
            _ => self.deserialize_any(visitor),
        }
    }

    fn deserialize_bytes<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        match self.value {
            Value::Text(s) => visitor.visit_borrowed_bytes(s.as_bytes()),
            _ => self.deserialize_any(visitor),
        }
    }

    fn deserialize_byte_buf<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        self.deserialize_bytes(visitor)
    }

    fn deserialize_str<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        match self.value {
            // Serde's string visitors would take UTF-8 bytes; a BLOB is not TEXT.
            Value::Blob(b) => Err(de::Error::invalid_type(Unexpected::Bytes(b), &visitor)),
            _ => self.deserialize_any(visitor),
        }
    }

    fn deserialize_string<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        self.deserialize_str(visitor)
    }

    fn deserialize_char<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        self.deserialize_str(visitor)
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        visitor: V,
    ) -> Result<V::Value, DeError> {
        visitor.visit_newtype_struct(self)
    }

    fn deserialize_enum<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _variants: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, DeError> {
        match self.value {
            Value::Text(s) => visitor.visit_enum(BorrowedStrDeserializer::<DeError>::new(s)),
            _ => self.deserialize_any(visitor),
        }
    }

    forward_to_deserialize_any! {
        i8 i16 i32 i64 i128 u8 u16 u32 u64 u128
        unit unit_struct tuple tuple_struct map struct identifier ignored_any
    }
}

#[cfg(test)]
mod tests;

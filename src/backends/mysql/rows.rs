//! Rows read without panics: text columns lossily, whole rows through the driver's
//! fallible conversion.

use mysql_async::prelude::*;
use mysql_async::{DriverError, FromValueError, Params, Row, Value};

use super::StoreError;

/// A text column read lossily: bytes that are not UTF-8 become U+FFFD instead of a
/// panic in the driver's conversion.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Text(pub(super) String);

/// [`Text`]'s conversion from a column value: any bytes.
pub(super) struct TextIr(Vec<u8>);

impl TryFrom<Value> for TextIr {
    type Error = FromValueError;
    fn try_from(value: Value) -> Result<Self, FromValueError> {
        match value {
            Value::Bytes(bytes) => Ok(TextIr(bytes)),
            other => Err(FromValueError(other)),
        }
    }
}

impl From<TextIr> for Text {
    fn from(text: TextIr) -> Text {
        Text(String::from_utf8_lossy(&text.0).into_owned())
    }
}

impl From<TextIr> for Value {
    fn from(text: TextIr) -> Value {
        Value::Bytes(text.0)
    }
}

impl FromValue for Text {
    type Intermediate = TextIr;
}

/// A row as `T`; a row of other types (a column the sidecar does not expect) is an
/// error, so the packet fails open, never a panic.
pub(super) fn typed<T: FromRow>(row: Row) -> Result<T, StoreError> {
    mysql_async::from_row_opt(row).map_err(|e| StoreError(DriverError::FromRow { row: e.0 }.into()))
}

/// The first row of `statement`, as `T`.
pub(super) async fn first<T: FromRow>(
    conn: &mut impl Queryable,
    statement: &str,
    params: impl Into<Params> + Send,
) -> Result<Option<T>, StoreError> {
    let row: Option<Row> = conn.exec_first(statement, params).await?;
    row.map(typed).transpose()
}

/// Every row of `statement`, as `T`.
pub(super) async fn all<T: FromRow>(
    conn: &mut impl Queryable,
    statement: &str,
    params: impl Into<Params> + Send,
) -> Result<Vec<T>, StoreError> {
    let rows: Vec<Row> = conn.exec(statement, params).await?;
    rows.into_iter().map(typed).collect()
}

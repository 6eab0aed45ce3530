//! Table schemas and the SQL catalog, stored in the engine so they are transactional and durable
//! with the data.
//!
//! - Engine table `__sql_catalog`: key = the table's name in lower case, value = its encoded
//!   schema (below). CREATE and DROP TABLE write it inside the statement's txn, so DDL commits,
//!   rolls back and conflicts like any other write (two txns creating the same table: first
//!   committer wins).
//! - Engine table `sql:<lower-case name>`: the rows, key = `rowid_key(rowid)`, value = the
//!   encoded row (`value::encode_row`, one value per declared column). `DROP TABLE` deletes the
//!   rows in its txn and leaves the (empty) engine table for a later `CREATE` of the same name.

use crate::error::{Error, Result};
use crate::value::{decode_values, encode_row, Value};
use strata::{Database, Snapshot, Table, Txn};

/// The engine table holding every SQL table's schema.
pub const CATALOG_TABLE: &str = "__sql_catalog";

/// Declared column types (no affinity rules: a value must have the column's type, or be NULL;
/// an INTEGER stored into a REAL column becomes a REAL).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ColumnType {
    Integer,
    Real,
    Text,
    Blob,
}

impl ColumnType {
    pub fn name(self) -> &'static str {
        match self {
            ColumnType::Integer => "INTEGER",
            ColumnType::Real => "REAL",
            ColumnType::Text => "TEXT",
            ColumnType::Blob => "BLOB",
        }
    }

    fn code(self) -> i64 {
        match self {
            ColumnType::Integer => 1,
            ColumnType::Real => 2,
            ColumnType::Text => 3,
            ColumnType::Blob => 4,
        }
    }

    fn from_code(c: i64) -> Option<Self> {
        Some(match c {
            1 => ColumnType::Integer,
            2 => ColumnType::Real,
            3 => ColumnType::Text,
            4 => ColumnType::Blob,
            _ => return None,
        })
    }

    /// Checks (and for REAL, converts) a value stored into a column of this type.
    pub fn coerce(self, column: &str, v: Value) -> Result<Value> {
        match (self, v) {
            (_, Value::Null) => Ok(Value::Null),
            (ColumnType::Integer, v @ Value::Integer(_)) => Ok(v),
            (ColumnType::Real, Value::Integer(i)) => Ok(Value::Real(i as f64)),
            (ColumnType::Real, v @ Value::Real(_)) => Ok(v),
            (ColumnType::Text, v @ Value::Text(_)) => Ok(v),
            (ColumnType::Blob, v @ Value::Blob(_)) => Ok(v),
            (t, v) => Err(Error::type_error(format!(
                "column {column} is {}, got a {} value",
                t.name(),
                v.type_name()
            ))),
        }
    }
}

#[derive(Clone, Debug, PartialEq)]
pub struct Column {
    /// As declared.
    pub name: String,
    pub ty: ColumnType,
    pub not_null: bool,
    /// The DEFAULT (a constant), or NULL.
    pub default: Value,
}

#[derive(Clone, Debug, PartialEq)]
pub struct TableSchema {
    /// As declared.
    pub name: String,
    pub columns: Vec<Column>,
    /// The INTEGER PRIMARY KEY column, which is the rowid.
    pub rowid_column: Option<usize>,
    /// The columns of any other PRIMARY KEY (kept unique and ordered through the key table `sql-pkey:<name>`),
    /// empty when there is none.
    pub primary_key: Vec<usize>,
    /// The CREATE TABLE statement (for `.schema`).
    pub sql: String,
}

impl TableSchema {
    /// The column named `name` (case-insensitive).
    pub fn column_index(&self, name: &str) -> Option<usize> {
        self.columns.iter().position(|c| c.name.eq_ignore_ascii_case(name))
    }

    fn encode(&self) -> Vec<u8> {
        let mut values = vec![
            Value::Text(self.name.clone()),
            Value::Text(self.sql.clone()),
            Value::Integer(self.rowid_column.map_or(-1, |i| i as i64)),
            Value::Integer(self.columns.len() as i64),
            Value::Integer(self.primary_key.len() as i64),
        ];
        values.extend(self.primary_key.iter().map(|i| Value::Integer(*i as i64)));
        for c in &self.columns {
            values.push(Value::Text(c.name.clone()));
            values.push(Value::Integer(c.ty.code()));
            values.push(Value::Integer(i64::from(c.not_null)));
            values.push(c.default.clone());
        }
        let mut out = Vec::new();
        encode_row(&values, &mut out);
        out
    }

    fn decode(bytes: &[u8]) -> Result<Self> {
        let corrupt = || Error::schema("corrupt schema in the SQL catalog");
        let values = decode_values(bytes).map_err(|_| corrupt())?;
        let (n, k) = match (values.get(3), values.get(4)) {
            // Checked: a crafted row with huge counts is corrupt, not an overflow panic.
            (Some(Value::Integer(n)), Some(Value::Integer(k)))
                if *n >= 0
                    && *k >= 0
                    && n.checked_mul(4)
                        .and_then(|c| c.checked_add(5))
                        .and_then(|c| c.checked_add(*k))
                        == Some(values.len() as i64) =>
            {
                (*n as usize, *k as usize)
            }
            _ => return Err(corrupt()),
        };
        let text = |v: &Value| match v {
            Value::Text(s) => Ok(s.clone()),
            _ => Err(corrupt()),
        };
        let int = |v: &Value| match v {
            Value::Integer(i) => Ok(*i),
            _ => Err(corrupt()),
        };
        let mut primary_key = Vec::with_capacity(k);
        for v in &values[5..5 + k] {
            let i = int(v)?;
            if i < 0 || i as usize >= n {
                return Err(corrupt());
            }
            primary_key.push(i as usize);
        }
        let mut columns = Vec::with_capacity(n);
        for c in values[5 + k..].chunks(4) {
            columns.push(Column {
                name: text(&c[0])?,
                ty: ColumnType::from_code(int(&c[1])?).ok_or_else(corrupt)?,
                not_null: int(&c[2])? != 0,
                default: c[3].clone(),
            });
        }
        let rowid = int(&values[2])?;
        let rowid_column = if rowid < 0 { None } else { Some(rowid as usize) };
        if rowid_column.is_some_and(|i| i >= n) {
            return Err(corrupt());
        }
        Ok(TableSchema {
            name: text(&values[0])?,
            sql: text(&values[1])?,
            columns,
            rowid_column,
            primary_key,
        })
    }
}

/// Lower-cased key of a table name.
pub fn table_key(name: &str) -> String {
    name.to_ascii_lowercase()
}

/// The engine table holding a SQL table's rows.
/// Longest SQL table name, in bytes: the engine's limit less the longest prefix the SQL layer
/// puts in front of it (the key table's), so an over-long name is reported in the user's terms,
/// not with an internal `sql:` name.
pub const SQL_TABLE_NAME_BYTES_MAX: usize = strata::TABLE_NAME_BYTES_MAX - KEY_TABLE_PREFIX.len();

/// Checks a table name given in SQL (`CREATE TABLE`).
pub fn check_table_name(name: &str) -> Result<()> {
    if name.len() > SQL_TABLE_NAME_BYTES_MAX {
        return Err(Error::schema(format!(
            "table name longer than {SQL_TABLE_NAME_BYTES_MAX} bytes: {}...",
            name.chars().take(32).collect::<String>()
        )));
    }
    Ok(())
}

pub fn data_table_name(name: &str) -> String {
    format!("sql:{}", table_key(name))
}

/// The engine table keeping a non-rowid PRIMARY KEY unique and ordered: key = the key columns'
/// values (`value::encode_key`, which sorts as the values do), value = the rowid.
pub fn key_table_name(name: &str) -> String {
    format!("{KEY_TABLE_PREFIX}{}", table_key(name))
}

/// The prefix of key tables in the current format.
pub const KEY_TABLE_PREFIX: &str = "sql-pkey:";
/// The prefix of key tables written by earlier builds (values row-encoded, which does not sort
/// like the values). A database holding one is refused rather than misread.
pub const LEGACY_KEY_TABLE_PREFIX: &str = "sql-pk:";

/// The catalog's engine table (created on first use).
pub fn catalog_table(db: &Database) -> Result<Table> {
    Ok(db.create_or_open_table(CATALOG_TABLE)?)
}

/// The schema of `name` in `txn`'s view.
pub fn lookup(txn: &Snapshot, catalog: &Table, name: &str) -> Result<Option<TableSchema>> {
    match txn.get(catalog, table_key(name))? {
        Some(bytes) => Ok(Some(TableSchema::decode(&bytes)?)),
        None => Ok(None),
    }
}

/// Like `lookup`, but a missing table is an error.
pub fn require(txn: &Snapshot, catalog: &Table, name: &str) -> Result<TableSchema> {
    lookup(txn, catalog, name)?.ok_or_else(|| Error::schema(format!("no such table: {name}")))
}

pub fn store(txn: &mut Txn, catalog: &Table, schema: &TableSchema) -> Result<()> {
    Ok(txn.put(catalog, table_key(&schema.name), schema.encode())?)
}

pub fn remove(txn: &mut Txn, catalog: &Table, name: &str) -> Result<()> {
    txn.delete(catalog, table_key(name))?;
    Ok(())
}

/// Every table's schema in `txn`'s view, by name.
pub fn all(txn: &Snapshot, catalog: &Table) -> Result<Vec<TableSchema>> {
    txn.scan(catalog)?.iter().map(|(_, v)| TableSchema::decode(v)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schemas_round_trip_and_bad_bytes_are_errors() {
        let s = TableSchema {
            name: "People".into(),
            columns: vec![
                Column {
                    name: "id".into(),
                    ty: ColumnType::Integer,
                    not_null: false,
                    default: Value::Null,
                },
                Column {
                    name: "name".into(),
                    ty: ColumnType::Text,
                    not_null: true,
                    default: Value::Text("?".into()),
                },
            ],
            rowid_column: Some(0),
            primary_key: Vec::new(),
            sql: "CREATE TABLE People (id INTEGER PRIMARY KEY, name TEXT NOT NULL DEFAULT '?')"
                .into(),
        };
        let keyed = TableSchema { rowid_column: None, primary_key: vec![1, 0], ..s.clone() };
        for s in [s, keyed] {
            let bytes = s.encode();
            assert_eq!(TableSchema::decode(&bytes).unwrap(), s);
            for cut in 0..bytes.len() {
                assert!(TableSchema::decode(&bytes[..cut]).is_err(), "cut at {cut}");
            }
            // Crafted column and key counts whose length arithmetic overflows: an error, never
            // an overflow panic (issue #13 §4).
            let values = decode_values(&bytes).unwrap();
            for (n, k) in [(i64::MAX, 0), (i64::MAX / 4, i64::MAX), (0, i64::MAX), (1 << 62, 3)] {
                let mut crafted = values.clone();
                crafted[3] = Value::Integer(n);
                crafted[4] = Value::Integer(k);
                let mut out = Vec::new();
                encode_row(&crafted, &mut out);
                assert!(TableSchema::decode(&out).is_err(), "n {n}, k {k}");
            }
        }
    }
}

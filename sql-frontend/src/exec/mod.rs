//! Statements: bound against the schema in the txn's view into a `Plan` (`plan`), then run
//! (`select`, `write`); `access` chooses how a statement reaches its rows.

mod access;
mod plan;
mod select;
mod write;

use access::*;
pub use plan::plan;
pub use select::run_select;
use select::*;
pub use write::run_write;

use crate::error::{Error, ErrorKind, Result};
use crate::expr::{
    bind, eval, expr_text, has_aggregate, truth, Acc, Aggregate, BinOp, Ctx, Expr, GroupScope,
    Params, Scope,
};
use crate::schema::{self, Column, ColumnType, TableSchema};
use crate::value::{
    decode_row, encode_key, encode_row, integer_offset, key_rowid, rowid_key, Value,
};
use sqlparser::ast::{self as sql};
use std::cmp::Ordering;
use std::collections::BTreeMap;
use std::ops::Bound;
use strata::{MergeOp, Snapshot, Table, Txn};

/// What a statement needs from its connection: the catalog and data tables, and rowids.
pub trait Env {
    fn catalog(&self) -> &Table;
    /// The engine table of a SQL table's rows (created for CREATE TABLE).
    fn data_table(&mut self, name: &str, create: bool) -> Result<Table>;
    /// The engine table keeping a non-rowid PRIMARY KEY unique (`schema::key_table_name`).
    fn key_table(&mut self, name: &str, create: bool) -> Result<Table>;
    /// A fresh rowid for `table` (never handed out before in this process).
    fn next_rowid(&mut self, table: &Table, key: &str) -> Result<i64>;
    /// Records that `rowid` is used in `table`, so later fresh rowids are above it.
    fn saw_rowid(&mut self, table: &Table, key: &str, rowid: i64) -> Result<()>;
}

/// Query results: column names and rows.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Rows {
    pub columns: Vec<String>,
    pub rows: Vec<Vec<Value>>,
}

/// How a statement reads its table's rows.
#[derive(Clone, Debug)]
enum Access {
    Scan,
    /// A point lookup: `rowid = e` or `rowid IN (...)` on the rowid (or INTEGER PRIMARY KEY).
    Rowids(Vec<Expr>),
    /// A lookup through the key table: `pk = e` or `pk IN (...)` on a one-column PRIMARY KEY.
    Key(Vec<Expr>),
    /// An ordered walk of a rowid range (`rowid > a AND rowid <= b`, `BETWEEN`, ...) through the
    /// engine's key directory; each bound is `(value, inclusive)`.
    RowidRange {
        lo: Option<(Expr, bool)>,
        hi: Option<(Expr, bool)>,
    },
    /// The same on a one-column PRIMARY KEY, through its key table (rows come in key order).
    /// Both bounds `None`: the whole table in key order (for `ORDER BY` the key).
    KeyRange {
        lo: Option<(Expr, bool)>,
        hi: Option<(Expr, bool)>,
    },
}

#[derive(Clone, Debug)]
pub struct Source {
    schema: TableSchema,
    filter: Option<Expr>,
    access: Access,
}

#[derive(Clone, Debug)]
enum OrderKey {
    Output(usize),
    Expr(Expr),
}

#[derive(Clone, Debug)]
struct Group {
    keys: Vec<Expr>,
    aggregates: Vec<Aggregate>,
    having: Option<Expr>,
}

#[derive(Clone, Debug)]
pub struct Select {
    source: Option<Source>,
    /// The WHERE of a SELECT without FROM (its one row exists if this holds).
    constant_filter: Option<Expr>,
    group: Option<Group>,
    projection: Vec<Expr>,
    columns: Vec<String>,
    order: Vec<(OrderKey, bool)>,
    /// `Some(ascending)` when the ORDER BY is the rowid or a one-column PRIMARY KEY alone (and
    /// nothing is grouped) and the access path reads in that order: nothing is sorted and a LIMIT
    /// stops the read early (`ordered_read`).
    key_order: Option<bool>,
    limit: Option<Expr>,
    offset: Option<Expr>,
}

/// A bound statement.
#[derive(Clone, Debug)]
pub enum Plan {
    CreateTable {
        schema: TableSchema,
        if_not_exists: bool,
    },
    DropTable {
        names: Vec<String>,
        if_exists: bool,
    },
    Insert {
        schema: TableSchema,
        targets: Vec<usize>,
        rows: Vec<Vec<Expr>>,
    },
    Select(Box<Select>),
    Update {
        source: Source,
        assignments: Vec<(usize, Expr)>,
    },
    Delete {
        source: Source,
    },
    /// `EXPLAIN QUERY PLAN`: how the statement would read its table.
    Explain(Vec<String>),
}

impl Plan {
    /// One line per step, as `EXPLAIN QUERY PLAN` prints them.
    fn describe(&self) -> Vec<String> {
        let access = |s: &Source| match &s.access {
            Access::Scan => format!("SCAN {}", s.schema.name),
            Access::Rowids(v) => {
                format!("SEARCH {} USING ROWID ({} value(s))", s.schema.name, v.len())
            }
            Access::Key(v) => {
                format!("SEARCH {} USING PRIMARY KEY ({} value(s))", s.schema.name, v.len())
            }
            Access::RowidRange { lo, hi } | Access::KeyRange { lo, hi } => {
                let (what, col) = match &s.access {
                    Access::RowidRange { .. } => ("ROWID", "rowid".to_string()),
                    _ => ("PRIMARY KEY", s.schema.columns[s.schema.primary_key[0]].name.clone()),
                };
                let side = |b: &Option<(Expr, bool)>, op: [&str; 2]| {
                    b.as_ref().map(|(_, incl)| format!("{col}{}?", op[usize::from(*incl)]))
                };
                let bounds: Vec<String> =
                    [side(lo, [">", ">="]), side(hi, ["<", "<="])].into_iter().flatten().collect();
                if bounds.is_empty() {
                    format!("SCAN {} USING PRIMARY KEY ORDER", s.schema.name)
                } else {
                    format!(
                        "SEARCH {} USING {what} RANGE ({})",
                        s.schema.name,
                        bounds.join(" AND ")
                    )
                }
            }
        };
        match self {
            Plan::CreateTable { schema, .. } => vec![format!("CREATE TABLE {}", schema.name)],
            Plan::DropTable { names, .. } => vec![format!("DROP TABLE {}", names.join(", "))],
            Plan::Insert { schema, rows, .. } => {
                vec![format!("INSERT INTO {} ({} row(s))", schema.name, rows.len())]
            }
            Plan::Select(sel) => {
                let mut lines =
                    vec![sel.source.as_ref().map_or("SCAN CONSTANT ROW".to_string(), access)];
                if sel.group.is_some() {
                    lines.push("AGGREGATE".to_string());
                }
                if !sel.order.is_empty() && sel.key_order.is_none() {
                    lines.push("SORT FOR ORDER BY".to_string());
                }
                lines
            }
            Plan::Update { source, .. } => vec![format!("UPDATE: {}", access(source))],
            Plan::Delete { source } => vec![format!("DELETE: {}", access(source))],
            Plan::Explain(lines) => lines.clone(),
        }
    }
}

fn single_name(name: &sql::ObjectName) -> Result<String> {
    match name.0.as_slice() {
        [sql::ObjectNamePart::Identifier(id)] => Ok(id.value.clone()),
        _ => Err(Error::not_supported(format!("qualified name {name}"))),
    }
}

fn column_names(schema: &TableSchema) -> Vec<String> {
    schema.columns.iter().map(|c| c.name.clone()).collect()
}

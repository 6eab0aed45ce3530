//! Statements: bound against the schema in the txn's view into a `Plan`, then run.

use crate::error::{Error, ErrorKind, Result};
use crate::expr::{
    bind, eval, expr_text, has_aggregate, truth, Acc, Aggregate, BinOp, Ctx, Expr, GroupScope,
    Params, Scope,
};
use crate::schema::{self, Column, ColumnType, TableSchema};
use crate::value::{decode_row, encode_key, encode_row, key_rowid, rowid_key, Value};
use sqlparser::ast::{self as sql};
use std::cmp::Ordering;
use std::collections::BTreeMap;
use std::ops::Bound;
use strata::{Snapshot, Table, Txn};

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

/// Binds `stmt` in `snap`'s view. Returns the plan and its parameter count.
///
/// Error messages never print a piece of the tree (`Display` recurses, and the tree may be
/// deeper than the stack allows); they name the construct, or quote `text`.
pub fn plan(
    stmt: &sql::Statement,
    text: &str,
    snap: &Snapshot,
    catalog: &Table,
) -> Result<(Plan, usize)> {
    let mut params = Params::default();
    let plan = match stmt {
        sql::Statement::CreateTable(c) => plan_create(c, text.trim().trim_end_matches(';'))?,
        sql::Statement::Drop { object_type, if_exists, names, cascade, .. } => {
            if *object_type != sql::ObjectType::Table {
                return Err(Error::not_supported(format!("DROP {object_type}")));
            }
            if *cascade {
                return Err(Error::not_supported("DROP ... CASCADE"));
            }
            let names = names.iter().map(single_name).collect::<Result<_>>()?;
            Plan::DropTable { names, if_exists: *if_exists }
        }
        sql::Statement::Insert(i) => plan_insert(i, snap, catalog, &mut params)?,
        sql::Statement::Query(q) => {
            Plan::Select(Box::new(plan_select(q, snap, catalog, &mut params)?))
        }
        sql::Statement::Explain { query_plan: true, analyze: false, statement, .. } => {
            // Parameters need no values to be explained.
            let (inner, _) = plan(statement, text, snap, catalog)?;
            return Ok((Plan::Explain(inner.describe()), 0));
        }
        sql::Statement::Update { table, assignments, from, selection, returning, or, limit } => {
            if from.is_some() || returning.is_some() || or.is_some() || limit.is_some() {
                return Err(Error::not_supported("UPDATE with FROM, RETURNING, OR or LIMIT"));
            }
            let schema = table_of(table, snap, catalog)?;
            let names = column_names(&schema);
            let mut scope = Scope { columns: Some(&names), group: None };
            let mut bound = Vec::new();
            for a in assignments {
                let target = match &a.target {
                    sql::AssignmentTarget::ColumnName(n) => single_name(n)?,
                    _ => return Err(Error::not_supported("assignment to a tuple of columns")),
                };
                let idx = schema
                    .column_index(&target)
                    .ok_or_else(|| Error::schema(format!("no such column: {target}")))?;
                bound.push((idx, bind(&a.value, &mut scope, &mut params)?));
            }
            let source = plan_source(schema, selection.as_ref(), &mut params)?;
            Plan::Update { source, assignments: bound }
        }
        sql::Statement::Delete(d) => {
            if d.using.is_some()
                || d.returning.is_some()
                || !d.order_by.is_empty()
                || d.limit.is_some()
            {
                return Err(Error::not_supported(
                    "DELETE with USING, RETURNING, ORDER BY or LIMIT",
                ));
            }
            let tables = match &d.from {
                sql::FromTable::WithFromKeyword(t) | sql::FromTable::WithoutKeyword(t) => t,
            };
            let [table] = tables.as_slice() else {
                return Err(Error::not_supported("DELETE from several tables"));
            };
            let schema = table_of(table, snap, catalog)?;
            Plan::Delete { source: plan_source(schema, d.selection.as_ref(), &mut params)? }
        }
        _ => {
            let head: Vec<&str> = text.split_whitespace().take(2).collect();
            return Err(Error::not_supported(format!("statement {} ...", head.join(" "))));
        }
    };
    Ok((plan, params.count))
}

fn table_of(t: &sql::TableWithJoins, snap: &Snapshot, catalog: &Table) -> Result<TableSchema> {
    if !t.joins.is_empty() {
        return Err(Error::not_supported("joins"));
    }
    match &t.relation {
        sql::TableFactor::Table { name, alias: None, args: None, .. } => {
            schema::require(snap, catalog, &single_name(name)?)
        }
        _ => Err(Error::not_supported("aliases, subqueries and table functions in FROM")),
    }
}

fn column_type(dt: &sql::DataType) -> Result<ColumnType> {
    let text = dt.to_string().to_ascii_uppercase();
    let word = text.split(|c: char| !c.is_ascii_alphabetic()).next().unwrap_or("");
    Ok(match word {
        "INT" | "INTEGER" | "BIGINT" | "SMALLINT" | "TINYINT" | "MEDIUMINT" | "INT8" => {
            ColumnType::Integer
        }
        "REAL" | "DOUBLE" | "FLOAT" => ColumnType::Real,
        "TEXT" | "VARCHAR" | "CHAR" | "CHARACTER" | "CLOB" | "STRING" => ColumnType::Text,
        "BLOB" | "BYTEA" => ColumnType::Blob,
        _ => return Err(Error::not_supported(format!("column type {dt}"))),
    })
}

fn plan_create(c: &sql::CreateTable, text: &str) -> Result<Plan> {
    if c.or_replace || c.temporary || c.query.is_some() || c.like.is_some() || c.clone.is_some() {
        return Err(Error::not_supported(
            "CREATE TABLE with OR REPLACE, TEMPORARY, AS, LIKE or CLONE",
        ));
    }
    if c.without_rowid {
        return Err(Error::not_supported("WITHOUT ROWID"));
    }
    let name = single_name(&c.name)?;
    if name.starts_with("__") {
        return Err(Error::schema(format!("table names starting with __ are reserved: {name}")));
    }
    let mut columns: Vec<Column> = Vec::new();
    let mut primary: Vec<String> = Vec::new();
    for def in &c.columns {
        let cname = def.name.value.clone();
        if columns.iter().any(|x| x.name.eq_ignore_ascii_case(&cname)) {
            return Err(Error::schema(format!("duplicate column name: {cname}")));
        }
        let ty = column_type(&def.data_type)?;
        let mut col = Column { name: cname.clone(), ty, not_null: false, default: Value::Null };
        for opt in &def.options {
            match &opt.option {
                sql::ColumnOption::Null => {}
                sql::ColumnOption::NotNull => col.not_null = true,
                sql::ColumnOption::Default(e) => {
                    let mut scope = Scope { columns: None, group: None };
                    let mut p = Params::default();
                    let bound = bind(e, &mut scope, &mut p)?;
                    if p.count > 0 {
                        return Err(Error::not_supported("parameters in DEFAULT"));
                    }
                    col.default = ty.coerce(&cname, eval(&bound, &Ctx::params(&[]))?)?;
                }
                sql::ColumnOption::Unique { is_primary: true, .. } => primary.push(cname.clone()),
                _ => {
                    return Err(Error::not_supported(
                        "column constraints other than NOT NULL, DEFAULT and PRIMARY KEY",
                    ))
                }
            }
        }
        columns.push(col);
    }
    for constraint in &c.constraints {
        match constraint {
            sql::TableConstraint::PrimaryKey { columns: cols, .. } => {
                for ic in cols {
                    match &ic.column.expr {
                        sql::Expr::Identifier(id) => primary.push(id.value.clone()),
                        _ => return Err(Error::not_supported("PRIMARY KEY on an expression")),
                    }
                }
            }
            _ => return Err(Error::not_supported("table constraints other than PRIMARY KEY")),
        }
    }
    if columns.is_empty() {
        return Err(Error::schema("a table needs at least one column"));
    }
    let mut key = Vec::new();
    for p in &primary {
        let idx = columns
            .iter()
            .position(|c| c.name.eq_ignore_ascii_case(p))
            .ok_or_else(|| Error::schema(format!("PRIMARY KEY names no column: {p}")))?;
        if key.contains(&idx) {
            return Err(Error::schema(format!("column {p} is in the PRIMARY KEY twice")));
        }
        key.push(idx);
    }
    // One INTEGER column is the rowid; any other key is kept unique through a key table, and
    // its columns are NOT NULL (standard SQL; SQLite's legacy allows NULLs there).
    let (rowid_column, primary_key) = match key.as_slice() {
        [one] if columns[*one].ty == ColumnType::Integer => (Some(*one), Vec::new()),
        _ => {
            for i in &key {
                columns[*i].not_null = true;
            }
            (None, key)
        }
    };
    Ok(Plan::CreateTable {
        schema: TableSchema { name, columns, rowid_column, primary_key, sql: text.to_string() },
        if_not_exists: c.if_not_exists,
    })
}

fn plan_insert(
    i: &sql::Insert,
    snap: &Snapshot,
    catalog: &Table,
    params: &mut Params,
) -> Result<Plan> {
    if i.or.is_some()
        || i.ignore
        || i.on.is_some()
        || i.returning.is_some()
        || !i.assignments.is_empty()
        || i.partitioned.is_some()
        || i.replace_into
    {
        return Err(Error::not_supported("INSERT with OR, IGNORE, ON CONFLICT, RETURNING or SET"));
    }
    let name = match &i.table {
        sql::TableObject::TableName(n) => single_name(n)?,
        _ => return Err(Error::not_supported("INSERT into a table function")),
    };
    let schema = schema::require(snap, catalog, &name)?;
    let targets: Vec<usize> = if i.columns.is_empty() {
        (0..schema.columns.len()).collect()
    } else {
        let mut t = Vec::new();
        for c in &i.columns {
            let idx = schema.column_index(&c.value).ok_or_else(|| {
                Error::schema(format!("table {name} has no column named {}", c.value))
            })?;
            if t.contains(&idx) {
                return Err(Error::schema(format!("column {} given twice", c.value)));
            }
            t.push(idx);
        }
        t
    };
    let Some(source) = &i.source else {
        return Err(Error::not_supported("INSERT without VALUES"));
    };
    let sql::SetExpr::Values(values) = source.body.as_ref() else {
        return Err(Error::not_supported("INSERT ... SELECT"));
    };
    if source.order_by.is_some() || source.limit_clause.is_some() {
        return Err(Error::not_supported("ORDER BY or LIMIT on VALUES"));
    }
    let mut scope = Scope { columns: None, group: None };
    let mut rows = Vec::with_capacity(values.rows.len());
    for row in &values.rows {
        if row.len() != targets.len() {
            return Err(Error::schema(format!(
                "{} values for {} columns",
                row.len(),
                targets.len()
            )));
        }
        rows.push(row.iter().map(|e| bind(e, &mut scope, params)).collect::<Result<Vec<_>>>()?);
    }
    Ok(Plan::Insert { schema, targets, rows })
}

/// WHERE and the access path for a table.
fn plan_source(
    schema: TableSchema,
    selection: Option<&sql::Expr>,
    params: &mut Params,
) -> Result<Source> {
    let names = column_names(&schema);
    let mut scope = Scope { columns: Some(&names), group: None };
    let filter = selection.map(|e| bind(e, &mut scope, params)).transpose()?;
    let access = filter.as_ref().map_or(Access::Scan, |f| access_path(f, &schema));
    Ok(Source { schema, filter, access })
}

fn is_rowid_col(e: &Expr, schema: &TableSchema) -> bool {
    matches!(e, Expr::Column(i) if *i == schema.columns.len() || Some(*i) == schema.rowid_column)
}

fn is_constant(e: &Expr) -> bool {
    match e {
        Expr::Literal(_) | Expr::Param(_) => true,
        Expr::Neg(x) => is_constant(x),
        _ => false,
    }
}

/// `rowid = c`, `c = rowid` or `rowid IN (c, ...)` among the top-level conjuncts — or the same
/// on a one-column PRIMARY KEY.
fn access_path(filter: &Expr, schema: &TableSchema) -> Access {
    let is_key_col = |e: &Expr| is_key_col(e, schema);
    match filter {
        Expr::Binary(BinOp::Eq, l, r) if is_key_col(l) && is_constant(r) => {
            Access::Key(vec![(**r).clone()])
        }
        Expr::Binary(BinOp::Eq, l, r) if is_key_col(r) && is_constant(l) => {
            Access::Key(vec![(**l).clone()])
        }
        Expr::InList { expr, list, negated: false }
            if is_key_col(expr) && list.iter().all(is_constant) =>
        {
            Access::Key(list.clone())
        }
        Expr::Binary(BinOp::And, l, r) => match access_path(l, schema) {
            Access::Scan | Access::RowidRange { .. } | Access::KeyRange { .. } => {
                match access_path(r, schema) {
                    // No point lookup on either side: gather the bounds of every conjunct.
                    Access::Scan | Access::RowidRange { .. } | Access::KeyRange { .. } => {
                        range_access(filter, schema)
                    }
                    found => found,
                }
            }
            found => found,
        },
        Expr::Binary(BinOp::Lt | BinOp::LtEq | BinOp::Gt | BinOp::GtEq, _, _)
        | Expr::Between { negated: false, .. } => range_access(filter, schema),
        Expr::Binary(BinOp::Eq, l, r) if is_rowid_col(l, schema) && is_constant(r) => {
            Access::Rowids(vec![(**r).clone()])
        }
        Expr::Binary(BinOp::Eq, l, r) if is_rowid_col(r, schema) && is_constant(l) => {
            Access::Rowids(vec![(**l).clone()])
        }
        Expr::InList { expr, list, negated: false }
            if is_rowid_col(expr, schema) && list.iter().all(is_constant) =>
        {
            Access::Rowids(list.clone())
        }
        _ => Access::Scan,
    }
}

/// A column's bounds among the top-level conjuncts of `filter`: `(value, inclusive)` on each
/// side, the first found on each side. The filter still runs on every row, so any bound that
/// holds for every matching row is correct.
type Bounds = (Option<(Expr, bool)>, Option<(Expr, bool)>);

fn column_bounds(filter: &Expr, is_col: &dyn Fn(&Expr) -> bool) -> Bounds {
    fn gather(e: &Expr, is_col: &dyn Fn(&Expr) -> bool, b: &mut Bounds) {
        let set = |slot: &mut Option<(Expr, bool)>, v: &Expr, inclusive: bool| {
            if slot.is_none() {
                *slot = Some((v.clone(), inclusive));
            }
        };
        match e {
            Expr::Binary(BinOp::And, l, r) => {
                gather(l, is_col, b);
                gather(r, is_col, b);
            }
            Expr::Binary(op, l, r) if is_col(l) && is_constant(r) => match op {
                BinOp::Gt => set(&mut b.0, r, false),
                BinOp::GtEq => set(&mut b.0, r, true),
                BinOp::Lt => set(&mut b.1, r, false),
                BinOp::LtEq => set(&mut b.1, r, true),
                _ => {}
            },
            Expr::Binary(op, l, r) if is_col(r) && is_constant(l) => match op {
                BinOp::Lt => set(&mut b.0, l, false),
                BinOp::LtEq => set(&mut b.0, l, true),
                BinOp::Gt => set(&mut b.1, l, false),
                BinOp::GtEq => set(&mut b.1, l, true),
                _ => {}
            },
            Expr::Between { expr, low, high, negated: false }
                if is_col(expr) && is_constant(low) && is_constant(high) =>
            {
                set(&mut b.0, low, true);
                set(&mut b.1, high, true);
            }
            _ => {}
        }
    }
    let mut b = (None, None);
    gather(filter, is_col, &mut b);
    b
}

/// A range walk on the rowid, else on a one-column PRIMARY KEY, else a scan.
fn range_access(filter: &Expr, schema: &TableSchema) -> Access {
    let (lo, hi) = column_bounds(filter, &|e| is_rowid_col(e, schema));
    if lo.is_some() || hi.is_some() {
        return Access::RowidRange { lo, hi };
    }
    match column_bounds(filter, &|e| is_key_col(e, schema)) {
        (None, None) => Access::Scan,
        (lo, hi) => Access::KeyRange { lo, hi },
    }
}

fn is_key_col(e: &Expr, schema: &TableSchema) -> bool {
    matches!((e, schema.primary_key.as_slice()), (Expr::Column(i), [k]) if i == k)
}

/// A bound on a column of type `ty` (the rowid is an INTEGER) as a bound on its stored values
/// that keeps every row the comparison could accept: `None` when no row can match (NULL),
/// `Unbounded` when the value cannot be compared within the column's type (another class, or an
/// integer out of range: the whole side is kept and the filter decides). A fraction against an
/// INTEGER column becomes the nearest integer on the inside, inclusive.
fn column_bound(ty: ColumnType, v: Value, inclusive: bool, lower: bool) -> Option<Bound<Value>> {
    Some(match (ty, v) {
        (_, Value::Null) => return None,
        (ColumnType::Integer, Value::Real(r)) if r.fract() != 0.0 && r.abs() < 9.0e18 => {
            Bound::Included(Value::Integer(if lower { r.ceil() } else { r.floor() } as i64))
        }
        (ty, v) => match key_value(ty, v) {
            Some(kv) if inclusive => Bound::Included(kv),
            Some(kv) => Bound::Excluded(kv),
            None => Bound::Unbounded,
        },
    })
}

/// `Some(ascending)` if the rows can be read in `order` instead of sorted: `order` is exactly
/// the rowid (directly, or an output column that is it) and the access path yields rowid order
/// (all but a primary-key range), or exactly a one-column PRIMARY KEY and the access walks that
/// key (a scan becomes an unbounded walk of the key table for this).
fn ordered_read(
    order: &[(OrderKey, bool)],
    projection: &[Expr],
    source: Option<&mut Source>,
) -> Option<bool> {
    let (source, [(key, asc)]) = (source?, order) else { return None };
    let e = match key {
        OrderKey::Expr(e) => e,
        OrderKey::Output(i) => projection.get(*i)?,
    };
    if is_rowid_col(e, &source.schema) {
        return (!matches!(source.access, Access::KeyRange { .. })).then_some(*asc);
    }
    if is_key_col(e, &source.schema) {
        return match source.access {
            Access::KeyRange { .. } => Some(*asc),
            Access::Scan => {
                source.access = Access::KeyRange { lo: None, hi: None };
                Some(*asc)
            }
            _ => None,
        };
    }
    None
}

fn plan_select(
    q: &sql::Query,
    snap: &Snapshot,
    catalog: &Table,
    params: &mut Params,
) -> Result<Select> {
    if q.with.is_some() || q.fetch.is_some() || !q.locks.is_empty() {
        return Err(Error::not_supported("WITH, FETCH or locking clauses"));
    }
    let sql::SetExpr::Select(s) = q.body.as_ref() else {
        return Err(Error::not_supported("UNION, VALUES or nested queries"));
    };
    if s.distinct.is_some()
        || s.top.is_some()
        || s.into.is_some()
        || !s.lateral_views.is_empty()
        || s.prewhere.is_some()
        || s.qualify.is_some()
        || !s.named_window.is_empty()
        || !s.cluster_by.is_empty()
        || !s.distribute_by.is_empty()
        || !s.sort_by.is_empty()
        || s.connect_by.is_some()
    {
        return Err(Error::not_supported("DISTINCT, TOP, INTO, windows or other SELECT clauses"));
    }
    let schema = match s.from.as_slice() {
        [] => None,
        [t] => Some(table_of(t, snap, catalog)?),
        _ => return Err(Error::not_supported("several tables in FROM")),
    };
    let names = schema.as_ref().map(column_names);
    let group_exprs: &[sql::Expr] = match &s.group_by {
        sql::GroupByExpr::Expressions(exprs, modifiers) if modifiers.is_empty() => exprs,
        _ => return Err(Error::not_supported("GROUP BY ALL or modifiers")),
    };
    let order_exprs: Vec<&sql::OrderByExpr> = match &q.order_by {
        None => Vec::new(),
        Some(sql::OrderBy { kind: sql::OrderByKind::Expressions(v), interpolate: None }) => {
            v.iter().collect()
        }
        Some(_) => return Err(Error::not_supported("ORDER BY ALL or INTERPOLATE")),
    };
    let projection_has_agg = s.projection.iter().any(|p| match p {
        sql::SelectItem::UnnamedExpr(e) | sql::SelectItem::ExprWithAlias { expr: e, .. } => {
            has_aggregate(e)
        }
        _ => false,
    });
    let aggregate_query = !group_exprs.is_empty()
        || projection_has_agg
        || s.having.is_some()
        || order_exprs.iter().any(|o| has_aggregate(&o.expr));

    // WHERE reads rows; without FROM it decides whether the one row exists.
    let (source, constant_filter) = match schema {
        Some(schema) => (Some(plan_source(schema, s.selection.as_ref(), params)?), None),
        None => {
            let mut scope = Scope { columns: None, group: None };
            (None, s.selection.as_ref().map(|e| bind(e, &mut scope, params)).transpose()?)
        }
    };
    let shape = Shape { names: names.as_deref(), aggregate_query, group_exprs, order_exprs };
    plan_rest(q, s, source, constant_filter, shape, params)
}

/// What `plan_select` found about a query's shape.
struct Shape<'a> {
    names: Option<&'a [String]>,
    aggregate_query: bool,
    group_exprs: &'a [sql::Expr],
    order_exprs: Vec<&'a sql::OrderByExpr>,
}

fn plan_rest(
    q: &sql::Query,
    s: &sql::Select,
    source: Option<Source>,
    constant_filter: Option<Expr>,
    shape: Shape<'_>,
    params: &mut Params,
) -> Result<Select> {
    let Shape { names, aggregate_query, group_exprs, order_exprs } = shape;
    let mut aggregates = Vec::new();
    let mut keys = Vec::new();
    for e in group_exprs {
        let mut scope = Scope { columns: names, group: None };
        if has_aggregate(e) {
            return Err(Error::schema("aggregate functions are not allowed in GROUP BY"));
        }
        keys.push(bind(e, &mut scope, params)?);
    }
    // After binding, which bounds their depth (the text is built recursively).
    let key_texts: Vec<String> = group_exprs.iter().map(expr_text).collect();
    let mut projection = Vec::new();
    let mut columns = Vec::new();
    {
        let mut scope = Scope {
            columns: names,
            group: aggregate_query
                .then_some(GroupScope { keys: &key_texts, aggregates: &mut aggregates }),
        };
        for item in &s.projection {
            match item {
                sql::SelectItem::Wildcard(opts) => {
                    if opts.opt_exclude.is_some()
                        || opts.opt_except.is_some()
                        || opts.opt_replace.is_some()
                        || opts.opt_rename.is_some()
                        || opts.opt_ilike.is_some()
                    {
                        return Err(Error::not_supported("* with modifiers"));
                    }
                    let Some(names) = names else {
                        return Err(Error::schema("SELECT * needs a FROM table"));
                    };
                    if aggregate_query {
                        return Err(Error::schema("SELECT * in an aggregate query"));
                    }
                    for (i, n) in names.iter().enumerate() {
                        projection.push(Expr::Column(i));
                        columns.push(n.clone());
                    }
                }
                sql::SelectItem::UnnamedExpr(e) => {
                    projection.push(bind(e, &mut scope, params)?);
                    columns.push(match e {
                        sql::Expr::Identifier(id) => id.value.clone(),
                        other => other.to_string(),
                    });
                }
                sql::SelectItem::ExprWithAlias { expr, alias } => {
                    projection.push(bind(expr, &mut scope, params)?);
                    columns.push(alias.value.clone());
                }
                _ => return Err(Error::not_supported("qualified wildcards (t.*)")),
            }
        }
    }
    let having = match &s.having {
        None => None,
        Some(h) => {
            let mut scope = Scope {
                columns: names,
                group: Some(GroupScope { keys: &key_texts, aggregates: &mut aggregates }),
            };
            Some(bind(h, &mut scope, params)?)
        }
    };
    let mut order = Vec::new();
    for o in order_exprs {
        if o.options.nulls_first.is_some() || o.with_fill.is_some() {
            return Err(Error::not_supported("NULLS FIRST/LAST or WITH FILL"));
        }
        let asc = o.options.asc.unwrap_or(true);
        // An output alias that is not also a column of the table.
        let alias = match &o.expr {
            sql::Expr::Identifier(id)
                if names.is_none_or(|n| !n.iter().any(|c| c.eq_ignore_ascii_case(&id.value))) =>
            {
                columns.iter().position(|c| c.eq_ignore_ascii_case(&id.value))
            }
            _ => None,
        };
        let key = match (&o.expr, alias) {
            (_, Some(i)) => OrderKey::Output(i),
            (sql::Expr::Value(sql::ValueWithSpan { value: sql::Value::Number(n, _), .. }), _) => {
                let k: usize =
                    n.parse().map_err(|_| Error::schema(format!("bad ORDER BY term {n}")))?;
                if k == 0 || k > columns.len() {
                    return Err(Error::schema(format!(
                        "ORDER BY term {k} out of range: 1..={}",
                        columns.len()
                    )));
                }
                OrderKey::Output(k - 1)
            }
            (e, None) => {
                let mut scope = Scope {
                    columns: names,
                    group: aggregate_query
                        .then_some(GroupScope { keys: &key_texts, aggregates: &mut aggregates }),
                };
                OrderKey::Expr(bind(e, &mut scope, params)?)
            }
        };
        order.push((key, asc));
    }
    let (limit, offset) = match &q.limit_clause {
        None => (None, None),
        Some(sql::LimitClause::LimitOffset { limit, offset, limit_by }) if limit_by.is_empty() => {
            let mut scope = Scope { columns: None, group: None };
            let limit = limit.as_ref().map(|e| bind(e, &mut scope, params)).transpose()?;
            let offset = offset.as_ref().map(|o| bind(&o.value, &mut scope, params)).transpose()?;
            (limit, offset)
        }
        Some(sql::LimitClause::OffsetCommaLimit { offset, limit }) => {
            let mut scope = Scope { columns: None, group: None };
            (Some(bind(limit, &mut scope, params)?), Some(bind(offset, &mut scope, params)?))
        }
        Some(_) => return Err(Error::not_supported("LIMIT BY")),
    };
    let group = aggregate_query.then_some(Group { keys, aggregates, having });
    let mut source = source;
    let key_order =
        if group.is_some() { None } else { ordered_read(&order, &projection, source.as_mut()) };
    Ok(Select {
        source,
        constant_filter,
        group,
        projection,
        columns,
        order,
        key_order,
        limit,
        offset,
    })
}

/// Reads the rows of a source that pass its filter: each is the declared columns plus the rowid,
/// in rowid order (every access path yields that order).
fn rows_of(
    snap: &Snapshot,
    env: &mut dyn Env,
    source: &Source,
    params: &[Value],
) -> Result<Vec<(i64, Vec<Value>)>> {
    rows_in_order(snap, env, source, params, false, None)
}

/// `rows_of`, descending if `reverse`, stopping after `want` matching rows.
fn rows_in_order(
    snap: &Snapshot,
    env: &mut dyn Env,
    source: &Source,
    params: &[Value],
    reverse: bool,
    want: Option<usize>,
) -> Result<Vec<(i64, Vec<Value>)>> {
    let table = env.data_table(&source.schema.name, false)?;
    let n = source.schema.columns.len();
    let want = want.unwrap_or(usize::MAX);
    let mut out = Vec::new();
    if want == 0 {
        return Ok(out);
    }
    // Decodes a stored row, applies the filter, keeps it; returns whether enough were kept.
    let mut keep = |key: &[u8], bytes: &[u8]| -> Result<bool> {
        let rowid = key_rowid(key)?;
        let mut row = decode_row(bytes, n)?;
        row.push(Value::Integer(rowid));
        if let Some(f) = &source.filter {
            let ctx = Ctx { row: &row, params, keys: &[], aggs: &[] };
            if truth(&eval(f, &ctx)?)? != Some(true) {
                return Ok(false);
            }
        }
        out.push((rowid, row));
        Ok(out.len() >= want)
    };
    let mut ids = Vec::new();
    match &source.access {
        Access::Scan | Access::RowidRange { .. } => {
            let (lo, hi) = match &source.access {
                Access::RowidRange { lo, hi } => {
                    let bound = |b: &Option<(Expr, bool)>, lower: bool| -> Result<_> {
                        let Some((e, incl)) = b else { return Ok(Some(Bound::Unbounded)) };
                        let v = eval(e, &Ctx::params(params))?;
                        // An INTEGER column's bounds are integers.
                        Ok(column_bound(ColumnType::Integer, v, *incl, lower).map(|b| match b {
                            Bound::Included(Value::Integer(i)) => Bound::Included(rowid_key(i)),
                            Bound::Excluded(Value::Integer(i)) => Bound::Excluded(rowid_key(i)),
                            _ => Bound::Unbounded,
                        }))
                    };
                    match (bound(lo, true)?, bound(hi, false)?) {
                        (Some(lo), Some(hi)) => (lo, hi),
                        _ => return Ok(out), // a NULL bound: no row compares true
                    }
                }
                _ => (Bound::Unbounded, Bound::Unbounded),
            };
            let rows = if reverse {
                snap.range_rev(&table, (lo, hi))?
            } else {
                snap.range(&table, (lo, hi))?
            };
            for (k, v) in rows {
                if keep(&k, &v)? {
                    break;
                }
            }
            return Ok(out);
        }
        Access::KeyRange { lo, hi } => {
            let keys = env.key_table(&source.schema.name, false)?;
            let ty = source.schema.columns[source.schema.primary_key[0]].ty;
            let bound = |b: &Option<(Expr, bool)>, lower: bool| -> Result<_> {
                let Some((e, incl)) = b else { return Ok(Some(Bound::Unbounded)) };
                let v = eval(e, &Ctx::params(params))?;
                Ok(column_bound(ty, v, *incl, lower).map(|b| b.map(|v| key_bytes(&[v]))))
            };
            let (lo, hi) = match (bound(lo, true)?, bound(hi, false)?) {
                (Some(lo), Some(hi)) => (lo, hi),
                _ => return Ok(out), // a NULL bound: no row compares true
            };
            let entries = if reverse {
                snap.range_rev(&keys, (lo, hi))?
            } else {
                snap.range(&keys, (lo, hi))?
            };
            for (_, id) in entries {
                let key = rowid_key(key_rowid(&id)?);
                if let Some(v) = snap.get(&table, key)? {
                    if keep(&key, &v)? {
                        break;
                    }
                }
            }
            return Ok(out);
        }
        Access::Key(exprs) => {
            let keys = env.key_table(&source.schema.name, false)?;
            let column = &source.schema.columns[source.schema.primary_key[0]];
            for e in exprs {
                let Some(v) = key_value(column.ty, eval(e, &Ctx::params(params))?) else {
                    continue;
                };
                if let Some(id) = snap.get(&keys, key_bytes(&[v]))? {
                    ids.push(key_rowid(&id)?);
                }
            }
        }
        Access::Rowids(exprs) => {
            for e in exprs {
                match eval(e, &Ctx::params(params))? {
                    Value::Integer(i) => ids.push(i),
                    Value::Real(r) if r.fract() == 0.0 && r.abs() < 9.0e18 => ids.push(r as i64),
                    _ => {} // no row has a non-integer rowid
                }
            }
        }
    }
    ids.sort_unstable();
    ids.dedup();
    if reverse {
        ids.reverse();
    }
    for id in ids {
        let key = rowid_key(id);
        if let Some(v) = snap.get(&table, key)? {
            if keep(&key, &v)? {
                break;
            }
        }
    }
    Ok(out)
}

/// The key table's key for primary-key values (sorts as the values do).
fn key_bytes(values: &[Value]) -> Vec<u8> {
    let mut out = Vec::new();
    encode_key(values, &mut out);
    out
}

/// The stored form of a lookup value for a key column of type `ty`, if any stored value could
/// equal it (`2` finds a REAL key `2.0`; `'2'` finds no INTEGER key).
fn key_value(ty: ColumnType, v: Value) -> Option<Value> {
    match (ty, v) {
        (_, Value::Null) => None,
        (ColumnType::Integer, v @ Value::Integer(_)) => Some(v),
        (ColumnType::Integer, Value::Real(r)) if r.fract() == 0.0 && r.abs() < 9.0e18 => {
            Some(Value::Integer(r as i64))
        }
        (ColumnType::Real, Value::Integer(i)) => Some(Value::Real(i as f64)),
        (ColumnType::Real, v @ Value::Real(_)) => Some(v),
        (ColumnType::Text, v @ Value::Text(_)) => Some(v),
        (ColumnType::Blob, v @ Value::Blob(_)) => Some(v),
        _ => None,
    }
}

/// The key table of a table with a non-rowid PRIMARY KEY.
fn key_table_of(env: &mut dyn Env, schema: &TableSchema) -> Result<Option<Table>> {
    if schema.primary_key.is_empty() {
        return Ok(None);
    }
    env.key_table(&schema.name, false).map(Some)
}

fn pk_values(schema: &TableSchema, row: &[Value]) -> Vec<Value> {
    schema.primary_key.iter().map(|i| row[*i].clone()).collect()
}

/// A sort key of values, ordered by `Value::total_cmp` lexicographically.
#[derive(Clone, Debug)]
struct SortKey(Vec<Value>);

impl PartialEq for SortKey {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}
impl Eq for SortKey {}
impl PartialOrd for SortKey {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for SortKey {
    fn cmp(&self, other: &Self) -> Ordering {
        for (a, b) in self.0.iter().zip(&other.0) {
            match a.total_cmp(b) {
                Ordering::Equal => {}
                o => return o,
            }
        }
        self.0.len().cmp(&other.0.len())
    }
}

fn count_param(e: &Option<Expr>, params: &[Value], what: &str) -> Result<Option<i64>> {
    match e {
        None => Ok(None),
        Some(e) => match eval(e, &Ctx::params(params))? {
            Value::Integer(i) => Ok(Some(i)),
            other => Err(Error::type_error(format!(
                "{what} must be an integer, got {}",
                other.type_name()
            ))),
        },
    }
}

/// Runs a SELECT.
pub fn run_select(
    sel: &Select,
    snap: &Snapshot,
    env: &mut dyn Env,
    params: &[Value],
) -> Result<Rows> {
    // (output row, order keys)
    let mut out: Vec<(Vec<Value>, Vec<Value>)> = Vec::new();
    let order_values = |row: &[Value], ctx: &Ctx<'_>| -> Result<Vec<Value>> {
        sel.order
            .iter()
            .map(|(k, _)| match k {
                OrderKey::Output(i) => Ok(row.get(*i).cloned().unwrap_or(Value::Null)),
                OrderKey::Expr(e) => eval(e, ctx),
            })
            .collect()
    };
    let offset = count_param(&sel.offset, params, "OFFSET")?.unwrap_or(0).max(0) as usize;
    let limit = count_param(&sel.limit, params, "LIMIT")?;
    let limit = limit.filter(|l| *l >= 0).map(|l| l as usize);
    let input: Vec<(i64, Vec<Value>)> = match &sel.source {
        // Ordered by the rowid, or not at all (ungrouped): read in order and stop early.
        Some(source)
            if sel.group.is_none() && (sel.order.is_empty() || sel.key_order.is_some()) =>
        {
            let reverse = sel.key_order == Some(false);
            let want = limit.map(|l| l.saturating_add(offset));
            rows_in_order(snap, env, source, params, reverse, want)?
        }
        Some(source) => rows_of(snap, env, source, params)?,
        None => {
            let keep = match &sel.constant_filter {
                None => true,
                Some(f) => truth(&eval(f, &Ctx::params(params))?)? == Some(true),
            };
            if keep {
                vec![(0, Vec::new())]
            } else {
                Vec::new()
            }
        }
    };
    match &sel.group {
        None => {
            for (_, row) in &input {
                let ctx = Ctx { row, params, keys: &[], aggs: &[] };
                let values =
                    sel.projection.iter().map(|e| eval(e, &ctx)).collect::<Result<Vec<_>>>()?;
                let keys = order_values(&values, &ctx)?;
                out.push((values, keys));
            }
        }
        Some(g) => {
            let mut groups: BTreeMap<SortKey, Vec<Acc>> = BTreeMap::new();
            let fresh = || g.aggregates.iter().map(|a| Acc::new(a.func)).collect::<Vec<_>>();
            if g.keys.is_empty() {
                groups.insert(SortKey(Vec::new()), fresh());
            }
            for (_, row) in &input {
                let ctx = Ctx { row, params, keys: &[], aggs: &[] };
                let key = SortKey(g.keys.iter().map(|e| eval(e, &ctx)).collect::<Result<_>>()?);
                let accs = groups.entry(key).or_insert_with(fresh);
                for (acc, agg) in accs.iter_mut().zip(&g.aggregates) {
                    acc.add(agg, &ctx)?;
                }
            }
            for (key, accs) in groups {
                let aggs: Vec<Value> = accs.into_iter().map(Acc::finish).collect();
                let ctx = Ctx { row: &[], params, keys: &key.0, aggs: &aggs };
                if let Some(h) = &g.having {
                    if truth(&eval(h, &ctx)?)? != Some(true) {
                        continue;
                    }
                }
                let values =
                    sel.projection.iter().map(|e| eval(e, &ctx)).collect::<Result<Vec<_>>>()?;
                let keys = order_values(&values, &ctx)?;
                out.push((values, keys));
            }
        }
    }
    if !sel.order.is_empty() && sel.key_order.is_none() {
        out.sort_by(|(_, a), (_, b)| {
            for ((x, y), (_, asc)) in a.iter().zip(b).zip(&sel.order) {
                let o = x.total_cmp(y);
                if o != Ordering::Equal {
                    return if *asc { o } else { o.reverse() };
                }
            }
            Ordering::Equal
        });
    }
    let rows: Vec<Vec<Value>> =
        out.into_iter().skip(offset).take(limit.unwrap_or(usize::MAX)).map(|(v, _)| v).collect();
    Ok(Rows { columns: sel.columns.clone(), rows })
}

/// Checks and converts a full row for storage.
fn check_row(schema: &TableSchema, mut values: Vec<Value>) -> Result<Vec<Value>> {
    for (i, c) in schema.columns.iter().enumerate() {
        let v = std::mem::replace(&mut values[i], Value::Null);
        let v = c.ty.coerce(&c.name, v)?;
        if c.not_null && v.is_null() {
            return Err(Error::constraint(format!(
                "NOT NULL constraint failed: {}.{}",
                schema.name, c.name
            )));
        }
        values[i] = v;
    }
    Ok(values)
}

fn put_row(txn: &mut Txn, table: &Table, rowid: i64, values: &[Value]) -> Result<()> {
    let mut bytes = Vec::new();
    encode_row(values, &mut bytes);
    Ok(txn.put(table, rowid_key(rowid), bytes)?)
}

fn unique_violation(schema: &TableSchema) -> Error {
    let cols: Vec<String> = if schema.primary_key.is_empty() {
        let col = schema.rowid_column.map_or("rowid", |i| schema.columns[i].name.as_str());
        vec![format!("{}.{col}", schema.name)]
    } else {
        schema
            .primary_key
            .iter()
            .map(|i| format!("{}.{}", schema.name, schema.columns[*i].name))
            .collect()
    };
    Error::constraint(format!("UNIQUE constraint failed: {}", cols.join(", ")))
}

/// Runs a writing statement; returns the rows it changed.
/// Every statement that writes a table's rows makes the txn's commit depend on the table's
/// schema row: a `DROP TABLE` or `CREATE TABLE` of that name committed after the txn's snapshot
/// fails the commit (retryable), at any isolation level. Otherwise a row encoded for the old
/// schema could land in a table re-created under the same name, where it does not decode.
fn guard_schema(txn: &mut Txn, env: &mut dyn Env, name: &str) -> Result<()> {
    let catalog = env.catalog().clone();
    Ok(txn.validate_at_commit(&catalog, schema::table_key(name))?)
}

pub fn run_write(plan: &Plan, txn: &mut Txn, env: &mut dyn Env, params: &[Value]) -> Result<u64> {
    match plan {
        Plan::CreateTable { schema, if_not_exists } => {
            schema::check_table_name(&schema.name)?;
            if schema::lookup(txn, env.catalog(), &schema.name)?.is_some() {
                if *if_not_exists {
                    return Ok(0);
                }
                return Err(Error::schema(format!("table {} already exists", schema.name)));
            }
            env.data_table(&schema.name, true)?;
            if !schema.primary_key.is_empty() {
                env.key_table(&schema.name, true)?;
            }
            let catalog = env.catalog().clone();
            schema::store(txn, &catalog, schema)?;
            Ok(0)
        }
        Plan::DropTable { names, if_exists } => {
            for name in names {
                let Some(dropped) = schema::lookup(txn, env.catalog(), name)? else {
                    if *if_exists {
                        continue;
                    }
                    return Err(Error::schema(format!("no such table: {name}")));
                };
                let table = env.data_table(name, false)?;
                for (k, _) in txn.scan(&table)? {
                    txn.delete(&table, k)?;
                }
                if !dropped.primary_key.is_empty() {
                    let keys = env.key_table(name, false)?;
                    for (k, _) in txn.scan(&keys)? {
                        txn.delete(&keys, k)?;
                    }
                }
                let catalog = env.catalog().clone();
                schema::remove(txn, &catalog, name)?;
            }
            Ok(0)
        }
        Plan::Insert { schema, targets, rows } => {
            guard_schema(txn, env, &schema.name)?;
            let table = env.data_table(&schema.name, false)?;
            let key = schema::table_key(&schema.name);
            for row in rows {
                let mut values: Vec<Value> =
                    schema.columns.iter().map(|c| c.default.clone()).collect();
                for (t, e) in targets.iter().zip(row) {
                    values[*t] = eval(e, &Ctx::params(params))?;
                }
                let given = schema.rowid_column.and_then(|i| match &values[i] {
                    Value::Null => None,
                    v => Some(v.clone()),
                });
                let mut values = check_row(schema, values)?;
                let rowid = match given {
                    Some(Value::Integer(id)) => {
                        if txn.get(&table, rowid_key(id))?.is_some() {
                            return Err(unique_violation(schema));
                        }
                        env.saw_rowid(&table, &key, id)?;
                        id
                    }
                    Some(_) => return Err(Error::type_error("the rowid must be an INTEGER")),
                    None => loop {
                        let id = env.next_rowid(&table, &key)?;
                        if txn.get(&table, rowid_key(id))?.is_none() {
                            break id;
                        }
                    },
                };
                if let Some(i) = schema.rowid_column {
                    values[i] = Value::Integer(rowid);
                }
                if !schema.primary_key.is_empty() {
                    let keys = env.key_table(&schema.name, false)?;
                    let k = key_bytes(&pk_values(schema, &values));
                    if txn.get(&keys, &k)?.is_some() {
                        return Err(unique_violation(schema));
                    }
                    txn.put(&keys, k, rowid_key(rowid))?;
                }
                put_row(txn, &table, rowid, &values)?;
            }
            Ok(rows.len() as u64)
        }
        Plan::Update { source, assignments } => {
            let schema = &source.schema;
            guard_schema(txn, env, &schema.name)?;
            let table = env.data_table(&schema.name, false)?;
            let key = schema::table_key(&schema.name);
            let matches = rows_of(txn, env, source, params)?;
            let keys = key_table_of(env, schema)?;
            let n = schema.columns.len();
            for (rowid, row) in &matches {
                let ctx = Ctx { row, params, keys: &[], aggs: &[] };
                let mut new: Vec<Value> = row[..n].to_vec();
                for (col, e) in assignments {
                    new[*col] = eval(e, &ctx)?;
                }
                let new = check_row(schema, new)?;
                let new_rowid = match schema.rowid_column.map(|i| &new[i]) {
                    None => *rowid,
                    Some(Value::Integer(id)) => *id,
                    Some(_) => {
                        return Err(Error::constraint(format!(
                            "the INTEGER PRIMARY KEY of {} cannot be NULL",
                            schema.name
                        )))
                    }
                };
                if new_rowid != *rowid {
                    if txn.get(&table, rowid_key(new_rowid))?.is_some() {
                        return Err(unique_violation(schema));
                    }
                    txn.delete(&table, rowid_key(*rowid))?;
                    env.saw_rowid(&table, &key, new_rowid)?;
                }
                if let Some(keys) = &keys {
                    let (old_k, new_k) = (
                        key_bytes(&pk_values(schema, &row[..n])),
                        key_bytes(&pk_values(schema, &new)),
                    );
                    if old_k != new_k {
                        if txn.get(keys, &new_k)?.is_some() {
                            return Err(unique_violation(schema));
                        }
                        txn.delete(keys, old_k)?;
                        txn.put(keys, new_k, rowid_key(new_rowid))?;
                    }
                }
                put_row(txn, &table, new_rowid, &new)?;
            }
            Ok(matches.len() as u64)
        }
        Plan::Delete { source } => {
            let schema = &source.schema;
            guard_schema(txn, env, &schema.name)?;
            let table = env.data_table(&schema.name, false)?;
            let matches = rows_of(txn, env, source, params)?;
            let keys = key_table_of(env, schema)?;
            for (rowid, row) in &matches {
                txn.delete(&table, rowid_key(*rowid))?;
                if let Some(keys) = &keys {
                    txn.delete(keys, key_bytes(&pk_values(schema, row)))?;
                }
            }
            Ok(matches.len() as u64)
        }
        Plan::Select(_) | Plan::Explain(_) => {
            Err(Error::new(ErrorKind::Engine, "a query is not a write"))
        }
    }
}

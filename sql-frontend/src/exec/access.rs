//! Access paths: which rows of a table a filter can reach without a scan, and in what order;
//! and the keys of the key tables that keep PRIMARY KEYs unique.

use super::*;

pub(super) fn is_rowid_col(e: &Expr, schema: &TableSchema) -> bool {
    matches!(e, Expr::Column(i) if *i == schema.columns.len() || Some(*i) == schema.rowid_column)
}

pub(super) fn is_constant(e: &Expr) -> bool {
    match e {
        Expr::Literal(_) | Expr::Param(_) => true,
        Expr::Neg(x) => is_constant(x),
        _ => false,
    }
}

/// `rowid = c`, `c = rowid` or `rowid IN (c, ...)` among the top-level conjuncts — or the same
/// on a one-column PRIMARY KEY.
pub(super) fn access_path(filter: &Expr, schema: &TableSchema) -> Access {
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
pub(super) type Bounds = (Option<(Expr, bool)>, Option<(Expr, bool)>);

pub(super) fn column_bounds(filter: &Expr, is_col: &dyn Fn(&Expr) -> bool) -> Bounds {
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
pub(super) fn range_access(filter: &Expr, schema: &TableSchema) -> Access {
    let (lo, hi) = column_bounds(filter, &|e| is_rowid_col(e, schema));
    if lo.is_some() || hi.is_some() {
        return Access::RowidRange { lo, hi };
    }
    match column_bounds(filter, &|e| is_key_col(e, schema)) {
        (None, None) => Access::Scan,
        (lo, hi) => Access::KeyRange { lo, hi },
    }
}

pub(super) fn is_key_col(e: &Expr, schema: &TableSchema) -> bool {
    matches!((e, schema.primary_key.as_slice()), (Expr::Column(i), [k]) if i == k)
}

/// A bound on a column of type `ty` (the rowid is an INTEGER) as a bound on its stored values
/// that keeps every row the comparison could accept: `None` when no row can match (NULL),
/// `Unbounded` when the value cannot be compared within the column's type (another class, or an
/// integer out of range: the whole side is kept and the filter decides). A fraction against an
/// INTEGER column becomes the nearest integer on the inside, inclusive.
pub(super) fn column_bound(
    ty: ColumnType,
    v: Value,
    inclusive: bool,
    lower: bool,
) -> Option<Bound<Value>> {
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
pub(super) fn ordered_read(
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

/// The key table's key for primary-key values (sorts as the values do).
pub(super) fn key_bytes(values: &[Value]) -> Vec<u8> {
    let mut out = Vec::new();
    encode_key(values, &mut out);
    out
}

/// The stored form of a lookup value for a key column of type `ty`, if any stored value could
/// equal it (`2` finds a REAL key `2.0`; `'2'` finds no INTEGER key).
pub(super) fn key_value(ty: ColumnType, v: Value) -> Option<Value> {
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
pub(super) fn key_table_of(env: &mut dyn Env, schema: &TableSchema) -> Result<Option<Table>> {
    if schema.primary_key.is_empty() {
        return Ok(None);
    }
    env.key_table(&schema.name, false).map(Some)
}

pub(super) fn pk_values(schema: &TableSchema, row: &[Value]) -> Vec<Value> {
    schema.primary_key.iter().map(|i| row[*i].clone()).collect()
}

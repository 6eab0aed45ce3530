//! Running a SELECT: reading a source's rows, grouping, ordering, LIMIT/OFFSET.

use super::*;

/// Reads the rows of a source that pass its filter: each is the declared columns plus the rowid,
/// in rowid order (every access path yields that order).
pub(super) fn rows_of(
    snap: &Snapshot,
    env: &mut dyn Env,
    source: &Source,
    params: &[Value],
) -> Result<Vec<(i64, Vec<Value>)>> {
    rows_in_order(snap, env, source, params, false, None)
}

/// `rows_of`, descending if `reverse`, stopping after `want` matching rows.
pub(super) fn rows_in_order(
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
            for row in rows {
                let (k, v) = row?;
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
            for entry in entries {
                let (_, id) = entry?;
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

/// A sort key of values, ordered by `Value::total_cmp` lexicographically.
#[derive(Clone, Debug)]
pub(super) struct SortKey(Vec<Value>);

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

pub(super) fn count_param(e: &Option<Expr>, params: &[Value], what: &str) -> Result<Option<i64>> {
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

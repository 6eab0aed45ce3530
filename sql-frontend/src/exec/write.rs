//! Running INSERT, UPDATE, DELETE and DDL.

use super::*;

/// Checks and converts a full row for storage.
pub(super) fn check_row(schema: &TableSchema, mut values: Vec<Value>) -> Result<Vec<Value>> {
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

pub(super) fn put_row(txn: &mut Txn, table: &Table, rowid: i64, values: &[Value]) -> Result<()> {
    let mut bytes = Vec::new();
    encode_row(values, &mut bytes);
    Ok(txn.put(table, rowid_key(rowid), bytes)?)
}

pub(super) fn unique_violation(schema: &TableSchema) -> Error {
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

/// Whether an UPDATE can run as merges, and if so, per matched row, the merge to make:
/// `(rowid, offset of the field in the stored row, delta)`. It can when it sets one INTEGER
/// column (not a key) to itself plus or minus a constant that is an INTEGER, finds its rows by
/// rowid or PRIMARY KEY equality alone (so it reads nothing else of the row), every matched row
/// holds an INTEGER there. Such an update does not conflict with a concurrent one of the same
/// form, at either isolation level (a serializable txn does not validate the statement's read
/// of a row it merges into: `Txn::merge_found`; a key that matched nothing stays validated): each
/// applies to the newest committed row when its txn commits (docs/adr/0014-merge.md). A
/// result that overflows on the snapshot's row fails here, as the plain update would; one that
/// overflows only on the newest row fails the commit (`ErrorKind::InvalidInput`).
fn merged_update(
    source: &Source,
    assignments: &[(usize, Expr)],
    params: &[Value],
    matches: &[(i64, Vec<Value>)],
) -> Result<Option<Vec<(i64, u32, i64)>>> {
    let schema = &source.schema;
    let [(col, e)] = assignments else { return Ok(None) };
    let point = |f: &Expr| match f {
        Expr::Binary(BinOp::Eq, l, r) => {
            let key = |x: &Expr| is_rowid_col(x, schema) || is_key_col(x, schema);
            (key(l) && is_constant(r)) || (key(r) && is_constant(l))
        }
        _ => false,
    };
    let this = |x: &Expr| matches!(x, Expr::Column(c) if c == col);
    let (sign, delta) = match e {
        Expr::Binary(BinOp::Add, l, r) if this(l) && is_constant(r) => (1, r),
        Expr::Binary(BinOp::Add, l, r) if this(r) && is_constant(l) => (1, l),
        Expr::Binary(BinOp::Sub, l, r) if this(l) && is_constant(r) => (-1, r),
        _ => return Ok(None),
    };
    let eligible = schema.columns[*col].ty == ColumnType::Integer
        && Some(*col) != schema.rowid_column
        && !schema.primary_key.contains(col)
        && source.filter.as_ref().is_some_and(point);
    if !eligible {
        return Ok(None);
    }
    let delta = match eval(delta, &Ctx::params(params))? {
        Value::Integer(d) if sign == 1 => d,
        Value::Integer(d) => match d.checked_neg() {
            Some(d) => d,
            None => return Ok(None),
        },
        _ => return Ok(None),
    };
    let mut adds = Vec::with_capacity(matches.len());
    for (rowid, row) in matches {
        let (Some(offset), Value::Integer(old)) = (integer_offset(row, *col), &row[*col]) else {
            return Ok(None);
        };
        if old.checked_add(delta).is_none() {
            let op = if sign == 1 { "addition" } else { "subtraction" };
            return Err(Error::range(format!("integer overflow in {op}")));
        }
        let Ok(offset) = u32::try_from(offset) else { return Ok(None) };
        adds.push((*rowid, offset, delta));
    }
    Ok(Some(adds))
}

/// Runs a writing statement; returns the rows it changed.
/// Every statement that writes a table's rows makes the txn's commit depend on the table's
/// schema row: a `DROP TABLE` or `CREATE TABLE` of that name committed after the txn's snapshot
/// fails the commit (retryable), at any isolation level. Otherwise a row encoded for the old
/// schema could land in a table re-created under the same name, where it does not decode.
pub(super) fn guard_schema(txn: &mut Txn, env: &mut dyn Env, name: &str) -> Result<()> {
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
            if let Some(adds) = merged_update(source, assignments, params, &matches)? {
                for (rowid, offset, delta) in adds {
                    let op = MergeOp::AddAt { offset, delta };
                    // The statement read the row only to find it (and its field): a serializable
                    // txn need not validate that read (`Txn::merge_found`). A key that matched no
                    // row merges nothing, and its read stays validated.
                    txn.merge_found(&table, rowid_key(rowid), op)?;
                }
                return Ok(matches.len() as u64);
            }
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

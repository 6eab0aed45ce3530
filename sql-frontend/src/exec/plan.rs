//! Binding: a parsed statement against the schema in the txn's view, into a `Plan`.

use super::*;

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

pub(super) fn table_of(
    t: &sql::TableWithJoins,
    snap: &Snapshot,
    catalog: &Table,
) -> Result<TableSchema> {
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

pub(super) fn column_type(dt: &sql::DataType) -> Result<ColumnType> {
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

pub(super) fn plan_create(c: &sql::CreateTable, text: &str) -> Result<Plan> {
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

pub(super) fn plan_insert(
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
pub(super) fn plan_source(
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

pub(super) fn plan_select(
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
pub(super) struct Shape<'a> {
    names: Option<&'a [String]>,
    aggregate_query: bool,
    group_exprs: &'a [sql::Expr],
    order_exprs: Vec<&'a sql::OrderByExpr>,
}

pub(super) fn plan_rest(
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

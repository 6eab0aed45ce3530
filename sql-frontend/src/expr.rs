//! Expressions: bound from sqlparser's AST against a scope (the table's columns, GROUP BY keys,
//! aggregates), then evaluated. Three-valued logic; integers exact with overflow an error.

use crate::error::{Error, ErrorKind, Result};
use crate::value::{format_real, Value};
use sqlparser::ast::{self as sql, BinaryOperator, UnaryOperator};
use std::cmp::Ordering;

/// A bound expression.
#[derive(Clone, Debug)]
pub enum Expr {
    Literal(Value),
    /// A parameter, 0-based.
    Param(usize),
    /// A column of the current row (`ROWID` is the index one past the declared columns).
    Column(usize),
    /// A GROUP BY key of the current group.
    GroupKey(usize),
    /// An aggregate's result for the current group.
    Aggregate(usize),
    Neg(Box<Expr>),
    Not(Box<Expr>),
    Binary(BinOp, Box<Expr>, Box<Expr>),
    IsNull(Box<Expr>, bool),
    Like {
        expr: Box<Expr>,
        pattern: Box<Expr>,
        negated: bool,
    },
    InList {
        expr: Box<Expr>,
        list: Vec<Expr>,
        negated: bool,
    },
    Between {
        expr: Box<Expr>,
        low: Box<Expr>,
        high: Box<Expr>,
        negated: bool,
    },
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BinOp {
    Add,
    Sub,
    Mul,
    Div,
    Rem,
    Concat,
    Eq,
    NotEq,
    Lt,
    LtEq,
    Gt,
    GtEq,
    And,
    Or,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AggFunc {
    CountStar,
    Count,
    Sum,
    Min,
    Max,
    Avg,
}

/// One aggregate of a query: function and argument (bound in the row scope).
#[derive(Clone, Debug)]
pub struct Aggregate {
    pub func: AggFunc,
    pub arg: Option<Expr>,
}

/// What names mean while binding.
pub struct Scope<'a> {
    /// Column names of the row (lower-case comparison), `None` for no FROM.
    pub columns: Option<&'a [String]>,
    /// In an aggregate query: the GROUP BY expressions' text, and where aggregates go.
    pub group: Option<GroupScope<'a>>,
}

pub struct GroupScope<'a> {
    pub keys: &'a [String],
    pub aggregates: &'a mut Vec<Aggregate>,
}

/// Parameter numbering across one statement: `?` takes the next number, `?NNN` a given one.
#[derive(Default, Debug)]
pub struct Params {
    next: usize,
    pub count: usize,
    /// Current expression nesting while binding.
    depth: usize,
}

/// Deepest expression accepted. (SQLite allows 1000; binding and evaluation recurse, and a debug
/// build of this crate used ~5 KiB of stack per level, so 200 keeps a 2 MiB thread safe.)
pub const EXPR_DEPTH_MAX: usize = 200;

impl Params {
    fn bind(&mut self, text: &str) -> Result<usize> {
        let idx = if text == "?" {
            self.next += 1;
            self.next - 1
        } else if let Some(n) = text.strip_prefix('?') {
            let n: usize = n
                .parse()
                .map_err(|_| Error::new(ErrorKind::Params, format!("bad parameter {text:?}")))?;
            if n == 0 || n > 999 {
                return Err(Error::new(
                    ErrorKind::Params,
                    format!("parameter {text} out of range 1..=999"),
                ));
            }
            self.next = self.next.max(n);
            n - 1
        } else {
            return Err(Error::not_supported(format!("parameter syntax {text:?} (use ? or ?NNN)")));
        };
        self.count = self.count.max(idx + 1);
        Ok(idx)
    }
}

/// The name `ROWID`, `_ROWID_` or `OID` (the implicit rowid column).
pub fn is_rowid_name(name: &str) -> bool {
    ["rowid", "_rowid_", "oid"].iter().any(|n| name.eq_ignore_ascii_case(n))
}

/// Parses a numeric literal: integers exact (out of range is an error), others as reals.
pub fn number(text: &str) -> Result<Value> {
    if text.contains(['.', 'e', 'E']) {
        text.parse::<f64>()
            .ok()
            .filter(|r| r.is_finite())
            .map(Value::Real)
            .ok_or_else(|| Error::range(format!("real literal out of range: {text}")))
    } else {
        text.parse::<i64>()
            .map(Value::Integer)
            .map_err(|_| Error::range(format!("integer literal out of range: {text}")))
    }
}

pub fn literal(v: &sql::Value, params: &mut Params) -> Result<Expr> {
    Ok(match v {
        sql::Value::Number(n, _) => Expr::Literal(number(n)?),
        sql::Value::SingleQuotedString(s) => Expr::Literal(Value::Text(s.clone())),
        sql::Value::HexStringLiteral(h) => Expr::Literal(Value::Blob(hex(h)?)),
        sql::Value::Boolean(b) => Expr::Literal(Value::Integer(i64::from(*b))),
        sql::Value::Null => Expr::Literal(Value::Null),
        sql::Value::Placeholder(p) => Expr::Param(params.bind(p)?),
        other => return Err(Error::not_supported(format!("literal {other}"))),
    })
}

fn hex(h: &str) -> Result<Vec<u8>> {
    if !h.len().is_multiple_of(2) {
        return Err(Error::type_error("a blob literal needs an even number of hex digits"));
    }
    (0..h.len())
        .step_by(2)
        .map(|i| {
            u8::from_str_radix(&h[i..i + 2], 16)
                .map_err(|_| Error::type_error(format!("bad hex digit in X'{h}'")))
        })
        .collect()
}

/// What an unsupported expression is, without printing it (its `Display` recurses).
fn expr_kind(e: &sql::Expr) -> &'static str {
    match e {
        sql::Expr::Cast { .. } => "CAST",
        sql::Expr::Case { .. } => "CASE",
        sql::Expr::Subquery(_) | sql::Expr::Exists { .. } | sql::Expr::InSubquery { .. } => {
            "subqueries"
        }
        sql::Expr::ILike { .. } => "ILIKE",
        sql::Expr::Like { .. } => "LIKE with ESCAPE or ANY",
        sql::Expr::SimilarTo { .. } => "SIMILAR TO",
        sql::Expr::IsTrue(_)
        | sql::Expr::IsFalse(_)
        | sql::Expr::IsNotTrue(_)
        | sql::Expr::IsNotFalse(_) => "IS TRUE / IS FALSE",
        sql::Expr::IsDistinctFrom(..) | sql::Expr::IsNotDistinctFrom(..) => "IS DISTINCT FROM",
        sql::Expr::Tuple(_) => "row values",
        sql::Expr::Collate { .. } => "COLLATE",
        sql::Expr::CompoundIdentifier(_) => "names qualified by a schema",
        _ => "this kind of expression",
    }
}

/// The text an expression is known by (GROUP BY matching, column headers).
pub fn expr_text(e: &sql::Expr) -> String {
    e.to_string()
}

/// Binds an expression (at most `EXPR_DEPTH_MAX` deep).
pub fn bind(e: &sql::Expr, scope: &mut Scope<'_>, params: &mut Params) -> Result<Expr> {
    if params.depth >= EXPR_DEPTH_MAX {
        return Err(Error::new(
            ErrorKind::Parse,
            format!("expression nested more than {EXPR_DEPTH_MAX} levels deep"),
        ));
    }
    params.depth += 1;
    let bound = bind_inner(e, scope, params);
    params.depth -= 1;
    bound
}

fn bind_inner(e: &sql::Expr, scope: &mut Scope<'_>, params: &mut Params) -> Result<Expr> {
    if let Some(g) = &scope.group {
        let text = expr_text(e);
        if let Some(i) = g.keys.iter().position(|k| k.eq_ignore_ascii_case(&text)) {
            return Ok(Expr::GroupKey(i));
        }
    }
    let b = |x: &sql::Expr, scope: &mut Scope<'_>, params: &mut Params| -> Result<Box<Expr>> {
        Ok(Box::new(bind(x, scope, params)?))
    };
    Ok(match e {
        sql::Expr::Identifier(id) => column(&id.value, scope)?,
        sql::Expr::CompoundIdentifier(parts) if parts.len() == 2 => column(&parts[1].value, scope)?,
        sql::Expr::Value(v) => literal(&v.value, params)?,
        sql::Expr::Nested(x) => bind(x, scope, params)?,
        sql::Expr::UnaryOp { op, expr } => match (op, expr.as_ref()) {
            // `-9223372036854775808` is in range only with its sign.
            (
                UnaryOperator::Minus,
                sql::Expr::Value(sql::ValueWithSpan { value: sql::Value::Number(n, _), .. }),
            ) => Expr::Literal(number(&format!("-{n}"))?),
            (UnaryOperator::Minus, x) => Expr::Neg(b(x, scope, params)?),
            (UnaryOperator::Plus, x) => bind(x, scope, params)?,
            (UnaryOperator::Not, x) => Expr::Not(b(x, scope, params)?),
            (op, _) => return Err(Error::not_supported(format!("operator {op}"))),
        },
        sql::Expr::BinaryOp { left, op, right } => {
            let op = match op {
                BinaryOperator::Plus => BinOp::Add,
                BinaryOperator::Minus => BinOp::Sub,
                BinaryOperator::Multiply => BinOp::Mul,
                BinaryOperator::Divide => BinOp::Div,
                BinaryOperator::Modulo => BinOp::Rem,
                BinaryOperator::StringConcat => BinOp::Concat,
                BinaryOperator::Eq => BinOp::Eq,
                BinaryOperator::NotEq => BinOp::NotEq,
                BinaryOperator::Lt => BinOp::Lt,
                BinaryOperator::LtEq => BinOp::LtEq,
                BinaryOperator::Gt => BinOp::Gt,
                BinaryOperator::GtEq => BinOp::GtEq,
                BinaryOperator::And => BinOp::And,
                BinaryOperator::Or => BinOp::Or,
                other => return Err(Error::not_supported(format!("operator {other}"))),
            };
            Expr::Binary(op, b(left, scope, params)?, b(right, scope, params)?)
        }
        sql::Expr::IsNull(x) => Expr::IsNull(b(x, scope, params)?, false),
        sql::Expr::IsNotNull(x) => Expr::IsNull(b(x, scope, params)?, true),
        sql::Expr::Like { negated, any: false, expr, pattern, escape_char: None } => Expr::Like {
            expr: b(expr, scope, params)?,
            pattern: b(pattern, scope, params)?,
            negated: *negated,
        },
        sql::Expr::InList { expr, list, negated } => Expr::InList {
            expr: b(expr, scope, params)?,
            list: list.iter().map(|x| bind(x, scope, params)).collect::<Result<_>>()?,
            negated: *negated,
        },
        sql::Expr::Between { expr, negated, low, high } => Expr::Between {
            expr: b(expr, scope, params)?,
            low: b(low, scope, params)?,
            high: b(high, scope, params)?,
            negated: *negated,
        },
        sql::Expr::Function(f) => aggregate(f, scope, params)?,
        other => return Err(Error::not_supported(expr_kind(other))),
    })
}

fn column(name: &str, scope: &mut Scope<'_>) -> Result<Expr> {
    let Some(columns) = scope.columns else {
        return Err(Error::schema(format!("no such column: {name}")));
    };
    let idx = columns
        .iter()
        .position(|c| c.eq_ignore_ascii_case(name))
        .or_else(|| is_rowid_name(name).then_some(columns.len()))
        .ok_or_else(|| Error::schema(format!("no such column: {name}")))?;
    if scope.group.is_some() {
        return Err(Error::new(
            ErrorKind::Schema,
            format!("column {name} must appear in GROUP BY or be used in an aggregate"),
        ));
    }
    Ok(Expr::Column(idx))
}

fn aggregate(f: &sql::Function, scope: &mut Scope<'_>, params: &mut Params) -> Result<Expr> {
    let name = f.name.to_string().to_ascii_lowercase();
    let func = match name.as_str() {
        "count" => AggFunc::Count,
        "sum" => AggFunc::Sum,
        "min" => AggFunc::Min,
        "max" => AggFunc::Max,
        "avg" => AggFunc::Avg,
        _ => return Err(Error::not_supported(format!("function {}", f.name))),
    };
    if f.filter.is_some() || f.over.is_some() || !f.within_group.is_empty() {
        return Err(Error::not_supported(format!("{} with FILTER, OVER or WITHIN GROUP", f.name)));
    }
    let sql::FunctionArguments::List(list) = &f.args else {
        return Err(Error::not_supported(format!("{}() without an argument list", f.name)));
    };
    if list.duplicate_treatment.is_some() || !list.clauses.is_empty() {
        return Err(Error::not_supported(format!("{}(DISTINCT ...) and argument clauses", f.name)));
    }
    let arg = match list.args.as_slice() {
        [sql::FunctionArg::Unnamed(sql::FunctionArgExpr::Wildcard)] if func == AggFunc::Count => {
            None
        }
        [sql::FunctionArg::Unnamed(sql::FunctionArgExpr::Expr(x))] => Some(x),
        _ => return Err(Error::not_supported(format!("{} with these arguments", f.name))),
    };
    if scope.group.is_none() {
        return Err(Error::not_supported(format!("aggregate {} here", f.name)));
    }
    let arg = match arg {
        None => None,
        Some(x) => {
            // The argument reads the row, not the group.
            let mut row_scope = Scope { columns: scope.columns, group: None };
            Some(bind(x, &mut row_scope, params)?)
        }
    };
    let func = if arg.is_none() { AggFunc::CountStar } else { func };
    let group = scope
        .group
        .as_mut()
        .ok_or_else(|| Error::not_supported(format!("aggregate {} here", f.name)))?;
    group.aggregates.push(Aggregate { func, arg });
    Ok(Expr::Aggregate(group.aggregates.len() - 1))
}

/// Whether an AST expression contains an aggregate call (decides an aggregate query). Looks
/// no deeper than `EXPR_DEPTH_MAX` (binding refuses anything deeper anyway).
pub fn has_aggregate(e: &sql::Expr) -> bool {
    has_aggregate_within(e, EXPR_DEPTH_MAX)
}

fn has_aggregate_within(e: &sql::Expr, depth: usize) -> bool {
    let Some(depth) = depth.checked_sub(1) else { return false };
    let f = |x: &sql::Expr| has_aggregate_within(x, depth);
    match e {
        sql::Expr::Function(func) => {
            let n = func.name.to_string().to_ascii_lowercase();
            matches!(n.as_str(), "count" | "sum" | "min" | "max" | "avg")
        }
        sql::Expr::Nested(x) | sql::Expr::IsNull(x) | sql::Expr::IsNotNull(x) => f(x),
        sql::Expr::UnaryOp { expr, .. } => f(expr),
        sql::Expr::BinaryOp { left, right, .. } => f(left) || f(right),
        sql::Expr::Like { expr, pattern, .. } => f(expr) || f(pattern),
        sql::Expr::InList { expr, list, .. } => f(expr) || list.iter().any(f),
        sql::Expr::Between { expr, low, high, .. } => f(expr) || f(low) || f(high),
        _ => false,
    }
}

/// Where an expression reads its inputs.
pub struct Ctx<'a> {
    pub row: &'a [Value],
    pub params: &'a [Value],
    pub keys: &'a [Value],
    pub aggs: &'a [Value],
}

impl<'a> Ctx<'a> {
    pub fn params(params: &'a [Value]) -> Self {
        Ctx { row: &[], params, keys: &[], aggs: &[] }
    }
}

fn int_overflow(op: &str) -> Error {
    Error::range(format!("integer overflow in {op}"))
}

/// SQL truth: `None` is NULL.
pub fn truth(v: &Value) -> Result<Option<bool>> {
    match v {
        Value::Null => Ok(None),
        Value::Integer(i) => Ok(Some(*i != 0)),
        Value::Real(r) => Ok(Some(*r != 0.0)),
        other => {
            Err(Error::type_error(format!("a {} value used as a condition", other.type_name())))
        }
    }
}

fn bool_value(b: Option<bool>) -> Value {
    b.map_or(Value::Null, |b| Value::Integer(i64::from(b)))
}

/// Evaluates `e`.
pub fn eval(e: &Expr, ctx: &Ctx<'_>) -> Result<Value> {
    Ok(match e {
        Expr::Literal(v) => v.clone(),
        Expr::Param(i) => ctx.params.get(*i).cloned().ok_or_else(|| {
            Error::new(ErrorKind::Params, format!("parameter {} not given", i + 1))
        })?,
        Expr::Column(i) => ctx.row.get(*i).cloned().unwrap_or(Value::Null),
        Expr::GroupKey(i) => ctx.keys.get(*i).cloned().unwrap_or(Value::Null),
        Expr::Aggregate(i) => ctx.aggs.get(*i).cloned().unwrap_or(Value::Null),
        Expr::Neg(x) => match eval(x, ctx)? {
            Value::Null => Value::Null,
            Value::Integer(i) => {
                Value::Integer(i.checked_neg().ok_or_else(|| int_overflow("negation"))?)
            }
            Value::Real(r) => Value::Real(-r),
            other => {
                return Err(Error::type_error(format!(
                    "cannot negate a {} value",
                    other.type_name()
                )))
            }
        },
        Expr::Not(x) => bool_value(truth(&eval(x, ctx)?)?.map(|b| !b)),
        Expr::Binary(BinOp::And, l, r) => {
            let l = truth(&eval(l, ctx)?)?;
            if l == Some(false) {
                return Ok(Value::Integer(0));
            }
            let r = truth(&eval(r, ctx)?)?;
            bool_value(match (l, r) {
                (_, Some(false)) => Some(false),
                (Some(true), Some(true)) => Some(true),
                _ => None,
            })
        }
        Expr::Binary(BinOp::Or, l, r) => {
            let l = truth(&eval(l, ctx)?)?;
            if l == Some(true) {
                return Ok(Value::Integer(1));
            }
            let r = truth(&eval(r, ctx)?)?;
            bool_value(match (l, r) {
                (_, Some(true)) => Some(true),
                (Some(false), Some(false)) => Some(false),
                _ => None,
            })
        }
        Expr::Binary(op, l, r) => binary(*op, eval(l, ctx)?, eval(r, ctx)?)?,
        Expr::IsNull(x, negated) => Value::Integer(i64::from(eval(x, ctx)?.is_null() != *negated)),
        Expr::Like { expr, pattern, negated } => match (eval(expr, ctx)?, eval(pattern, ctx)?) {
            (Value::Null, _) | (_, Value::Null) => Value::Null,
            (Value::Text(s), Value::Text(p)) => Value::Integer(i64::from(like(&p, &s) != *negated)),
            (a, b) => {
                return Err(Error::type_error(format!(
                    "LIKE needs TEXT, got {} LIKE {}",
                    a.type_name(),
                    b.type_name()
                )))
            }
        },
        Expr::InList { expr, list, negated } => {
            let v = eval(expr, ctx)?;
            // An empty list contains nothing, not even NULL: `NULL IN ()` is false and
            // `NULL NOT IN ()` true (SQLite).
            if list.is_empty() {
                return Ok(Value::Integer(i64::from(*negated)));
            }
            if v.is_null() {
                return Ok(Value::Null);
            }
            let mut saw_null = false;
            for item in list {
                let x = eval(item, ctx)?;
                match v.sql_cmp(&x) {
                    Some(Ordering::Equal) => return Ok(Value::Integer(i64::from(!*negated))),
                    None => saw_null = true,
                    Some(_) => {}
                }
            }
            if saw_null {
                Value::Null
            } else {
                Value::Integer(i64::from(*negated))
            }
        }
        Expr::Between { expr, low, high, negated } => {
            let v = eval(expr, ctx)?;
            let ge = v.sql_cmp(&eval(low, ctx)?).map(|o| o != Ordering::Less);
            let le = v.sql_cmp(&eval(high, ctx)?).map(|o| o != Ordering::Greater);
            let inside = match (ge, le) {
                (Some(false), _) | (_, Some(false)) => Some(false),
                (Some(true), Some(true)) => Some(true),
                _ => None,
            };
            bool_value(inside.map(|b| b != *negated))
        }
    })
}

fn binary(op: BinOp, l: Value, r: Value) -> Result<Value> {
    use Value::{Integer, Null, Real};
    if op == BinOp::Concat {
        return Ok(match (&l, &r) {
            (Null, _) | (_, Null) => Null,
            _ => Value::Text(format!("{}{}", concat_text(&l)?, concat_text(&r)?)),
        });
    }
    if let Some(cmp) = comparison(op) {
        return Ok(bool_value(l.sql_cmp(&r).map(cmp)));
    }
    Ok(match (l, r) {
        (Null, _) | (_, Null) => Null,
        (Integer(a), Integer(b)) => match op {
            BinOp::Add => Integer(a.checked_add(b).ok_or_else(|| int_overflow("addition"))?),
            BinOp::Sub => Integer(a.checked_sub(b).ok_or_else(|| int_overflow("subtraction"))?),
            BinOp::Mul => Integer(a.checked_mul(b).ok_or_else(|| int_overflow("multiplication"))?),
            // Division and remainder by zero give NULL, as in SQLite.
            BinOp::Div if b == 0 => Null,
            BinOp::Rem if b == 0 => Null,
            BinOp::Div => Integer(a.checked_div(b).ok_or_else(|| int_overflow("division"))?),
            BinOp::Rem => Integer(a.checked_rem(b).unwrap_or(0)),
            _ => return Err(Error::not_supported(format!("{op:?} on these operands"))),
        },
        (a @ (Integer(_) | Real(_)), b @ (Integer(_) | Real(_))) => {
            let (a, b) = (as_real(&a), as_real(&b));
            let v = match op {
                BinOp::Add => a + b,
                BinOp::Sub => a - b,
                BinOp::Mul => a * b,
                BinOp::Div if b == 0.0 => return Ok(Null),
                BinOp::Div => a / b,
                BinOp::Rem => {
                    // SQLite: the remainder of the integer parts.
                    let (ai, bi) = (a.trunc(), b.trunc());
                    if bi == 0.0 {
                        return Ok(Null);
                    }
                    ai % bi
                }
                _ => return Err(Error::not_supported(format!("{op:?} on these operands"))),
            };
            if v.is_finite() {
                Real(v)
            } else {
                Null
            }
        }
        (a, b) => {
            return Err(Error::type_error(format!(
                "arithmetic on {} and {}",
                a.type_name(),
                b.type_name()
            )))
        }
    })
}

fn comparison(op: BinOp) -> Option<fn(Ordering) -> bool> {
    Some(match op {
        BinOp::Eq => |o| o == Ordering::Equal,
        BinOp::NotEq => |o| o != Ordering::Equal,
        BinOp::Lt => |o| o == Ordering::Less,
        BinOp::LtEq => |o| o != Ordering::Greater,
        BinOp::Gt => |o| o == Ordering::Greater,
        BinOp::GtEq => |o| o != Ordering::Less,
        _ => return None,
    })
}

fn as_real(v: &Value) -> f64 {
    match v {
        Value::Integer(i) => *i as f64,
        Value::Real(r) => *r,
        _ => 0.0,
    }
}

fn concat_text(v: &Value) -> Result<String> {
    Ok(match v {
        Value::Text(s) => s.clone(),
        Value::Integer(i) => i.to_string(),
        Value::Real(r) => format_real(*r),
        other => return Err(Error::type_error(format!("|| on a {} value", other.type_name()))),
    })
}

/// SQL LIKE: `%` any run, `_` one character; ASCII letters match case-insensitively.
pub fn like(pattern: &str, s: &str) -> bool {
    let p: Vec<char> = pattern.chars().collect();
    let s: Vec<char> = s.chars().collect();
    // Iterative matcher with backtracking to the last `%` (linear in practice, no recursion).
    let (mut pi, mut si) = (0usize, 0usize);
    let mut star: Option<(usize, usize)> = None;
    while si < s.len() {
        if pi < p.len() && p[pi] == '%' {
            star = Some((pi, si));
            pi += 1;
        } else if pi < p.len() && (p[pi] == '_' || p[pi].eq_ignore_ascii_case(&s[si])) {
            pi += 1;
            si += 1;
        } else if let Some((sp, ss)) = star {
            pi = sp + 1;
            si = ss + 1;
            star = Some((sp, ss + 1));
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|c| *c == '%')
}

/// Running state of one aggregate over a group.
#[derive(Clone, Debug)]
pub enum Acc {
    Count(i64),
    Sum { int: i64, real: f64, is_real: bool, any: bool },
    MinMax(Option<Value>),
    Avg { sum: f64, n: i64 },
}

impl Acc {
    pub fn new(f: AggFunc) -> Acc {
        match f {
            AggFunc::CountStar | AggFunc::Count => Acc::Count(0),
            AggFunc::Sum => Acc::Sum { int: 0, real: 0.0, is_real: false, any: false },
            AggFunc::Min | AggFunc::Max => Acc::MinMax(None),
            AggFunc::Avg => Acc::Avg { sum: 0.0, n: 0 },
        }
    }

    pub fn add(&mut self, agg: &Aggregate, ctx: &Ctx<'_>) -> Result<()> {
        let v = match &agg.arg {
            None => Value::Integer(1),
            Some(e) => eval(e, ctx)?,
        };
        if v.is_null() {
            return Ok(());
        }
        match self {
            Acc::Count(n) => *n += 1,
            Acc::Sum { int, real, is_real, any } => {
                *any = true;
                match v {
                    Value::Integer(i) if !*is_real => {
                        *int = int.checked_add(i).ok_or_else(|| int_overflow("SUM"))?;
                    }
                    Value::Integer(i) => *real += i as f64,
                    Value::Real(r) => {
                        if !*is_real {
                            *is_real = true;
                            *real = *int as f64;
                        }
                        *real += r;
                    }
                    other => {
                        return Err(Error::type_error(format!(
                            "SUM of a {} value",
                            other.type_name()
                        )))
                    }
                }
            }
            Acc::MinMax(best) => {
                let keep_new = match best {
                    None => true,
                    Some(b) => {
                        let o = v.total_cmp(b);
                        if agg.func == AggFunc::Min {
                            o == Ordering::Less
                        } else {
                            o == Ordering::Greater
                        }
                    }
                };
                if keep_new {
                    *best = Some(v);
                }
            }
            Acc::Avg { sum, n } => match v {
                Value::Integer(i) => {
                    *sum += i as f64;
                    *n += 1;
                }
                Value::Real(r) => {
                    *sum += r;
                    *n += 1;
                }
                other => {
                    return Err(Error::type_error(format!("AVG of a {} value", other.type_name())))
                }
            },
        }
        Ok(())
    }

    pub fn finish(self) -> Value {
        match self {
            Acc::Count(n) => Value::Integer(n),
            Acc::Sum { any: false, .. } => Value::Null,
            Acc::Sum { real, is_real: true, .. } => Value::Real(real),
            Acc::Sum { int, .. } => Value::Integer(int),
            Acc::MinMax(v) => v.unwrap_or(Value::Null),
            Acc::Avg { n: 0, .. } => Value::Null,
            Acc::Avg { sum, n } => Value::Real(sum / n as f64),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn like_matches_sql_patterns() {
        assert!(like("a%", "abc"));
        assert!(like("%B%", "abc"));
        assert!(like("a_c", "abc"));
        assert!(!like("a_c", "abbc"));
        assert!(like("%", ""));
        assert!(!like("_", ""));
        assert!(like("%a%a%a%", "banana a"));
        assert!(!like("abc", "abcd"));
    }

    #[test]
    fn arithmetic_is_exact_or_an_error() {
        let i = Value::Integer;
        assert_eq!(binary(BinOp::Add, i(i64::MAX - 1), i(1)).unwrap(), i(i64::MAX));
        assert_eq!(binary(BinOp::Add, i(i64::MAX), i(1)).unwrap_err().kind(), ErrorKind::Range);
        assert_eq!(binary(BinOp::Div, i(7), i(2)).unwrap(), i(3));
        assert_eq!(binary(BinOp::Rem, i(-7), i(2)).unwrap(), i(-1));
        assert_eq!(binary(BinOp::Div, i(1), i(0)).unwrap(), Value::Null);
        assert_eq!(binary(BinOp::Div, i(i64::MIN), i(-1)).unwrap_err().kind(), ErrorKind::Range);
        assert_eq!(binary(BinOp::Add, i(1), Value::Real(0.5)).unwrap(), Value::Real(1.5));
        assert_eq!(binary(BinOp::Eq, Value::Null, i(1)).unwrap(), Value::Null);
        assert_eq!(
            binary(BinOp::Concat, Value::Text("a".into()), i(1)).unwrap(),
            Value::Text("a1".into())
        );
        assert_eq!(
            binary(BinOp::Add, Value::Text("a".into()), i(1)).unwrap_err().kind(),
            ErrorKind::Type
        );
    }
}

//! `Connection`: statements, transactions, prepared statements and the statement cache.

use crate::error::{Error, ErrorKind, Result};
use crate::exec::{self, Env, Plan, Rows};
use crate::schema::{self, TableSchema};
use crate::value::{key_rowid, Value};
use sqlparser::ast::{self as sql};
use sqlparser::dialect::SQLiteDialect;
use sqlparser::parser::Parser;
use std::collections::HashMap;
use std::path::Path;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex};
use strata::{Database, Durability, Isolation, Options, Table, Timestamp, Txn};

/// Statements kept parsed per connection.
const STATEMENT_CACHE_MAX: usize = 256;
/// Attempts of an autocommit statement that meets write-write conflicts.
const AUTOCOMMIT_ATTEMPTS: u32 = 64;
/// Stack the parser gets: sqlparser recurses per nesting level (its limit: 50 levels) with
/// frames of ~70 KiB in a debug build, so parsing (and dropping a parsed statement) runs where
/// at least this much stack is left — on a fresh segment if needed (`stacker`).
const PARSE_STACK_BYTES: usize = 4 << 20;
/// Stack planning and evaluation get (they recurse at most `EXPR_DEPTH_MAX` levels, ~5 KiB
/// each in a debug build).
const RUN_STACK_BYTES: usize = 3 << 19;
/// Size of a fresh stack segment when one is needed.
const STACK_SEGMENT_BYTES: usize = 16 << 20;

/// Most operators (and parentheses) in one statement (`check_complexity`).
pub const OPERATORS_MAX: usize = 10_000;
/// Longest statement accepted, in bytes (a guard against unbounded parser memory).
pub const STATEMENT_BYTES_MAX: usize = 1 << 20;

/// Per-database state shared by every connection (`Database::extension`): the rowid counters.
#[derive(Default)]
struct Shared {
    counters: Mutex<HashMap<String, Arc<AtomicI64>>>,
}

impl Shared {
    /// The counter of `key`'s table, initialised past the largest rowid committed now.
    fn counter(&self, db: &Database, table: &Table, key: &str) -> Result<Arc<AtomicI64>> {
        let mut map = self.counters.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(c) = map.get(key) {
            return Ok(Arc::clone(c));
        }
        let snap = db.begin_read()?;
        let max = snap.scan(table)?.last().map(|(k, _)| key_rowid(k)).transpose()?.unwrap_or(0);
        // The counter holds the largest rowid handed out or seen (0 for none): the next
        // automatic one is one more, so i64::MAX itself is never ambiguous.
        let c = Arc::new(AtomicI64::new(max.max(0)));
        map.insert(key.to_string(), Arc::clone(&c));
        Ok(c)
    }
}

/// What a parsed statement is.
#[derive(Debug)]
enum Kind {
    /// `BEGIN`, with an isolation level if the statement names one.
    Begin(Option<Isolation>),
    Commit,
    Rollback,
    Pragma {
        name: String,
        value: Option<String>,
    },
    Statement(Box<sql::Statement>),
}

#[derive(Debug)]
struct Parsed {
    kind: Kind,
    /// The statement as written (for `.schema` and error messages).
    text: String,
}

impl Drop for Parsed {
    /// A parsed statement's tree is as deep as its longest operator chain, and its destructor
    /// recurses: drop it where there is stack for that.
    fn drop(&mut self) {
        let kind = std::mem::replace(&mut self.kind, Kind::Commit);
        stacker::maybe_grow(PARSE_STACK_BYTES, STACK_SEGMENT_BYTES, move || drop(kind));
    }
}

/// A prepared statement: parsed once, bound against the current schema at each execution.
#[derive(Clone, Debug)]
pub struct Statement {
    parsed: Arc<Parsed>,
}

impl Statement {
    /// Runs it; returns the number of rows changed (0 for other statements).
    pub fn execute(&self, conn: &mut Connection, params: &[Value]) -> Result<u64> {
        conn.run(&self.parsed, params).map(|o| o.changed)
    }

    /// Runs it; returns the rows of a query (none for other statements).
    pub fn query(&self, conn: &mut Connection, params: &[Value]) -> Result<Rows> {
        conn.run(&self.parsed, params).map(|o| o.rows)
    }
}

struct Outcome {
    changed: u64,
    rows: Rows,
}

enum TxnState {
    Auto,
    Open(Box<Txn>),
    /// An explicit txn that failed: everything but COMMIT/ROLLBACK is refused.
    Failed(Error),
}

/// A connection: one per thread (`Send`), sharing one engine with its siblings
/// (`Connection::connect`).
pub struct Connection {
    db: Database,
    shared: Arc<Shared>,
    catalog: Table,
    tables: HashMap<String, Table>,
    state: TxnState,
    cache: HashMap<String, Arc<Parsed>>,
    durability: Option<Durability>,
    /// `PRAGMA isolation_level`; `None`: the database's default.
    isolation: Option<Isolation>,
    /// The commit timestamp of the last explicit txn this connection committed.
    last_commit: Option<Timestamp>,
}

impl std::fmt::Debug for Connection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Connection").field("in_txn", &self.in_transaction()).finish()
    }
}

impl Connection {
    /// Opens (or creates) the database in `dir`.
    pub fn open(dir: impl AsRef<Path>) -> Result<Connection> {
        Connection::from_database(Database::open(dir, Options::default())?)
    }

    /// A new in-memory database.
    pub fn open_in_memory() -> Result<Connection> {
        Connection::from_database(Database::in_memory())
    }

    /// A connection to an existing engine handle.
    pub fn from_database(db: Database) -> Result<Connection> {
        if let Some(old) =
            db.list_tables().into_iter().find(|t| t.starts_with(schema::LEGACY_KEY_TABLE_PREFIX))
        {
            return Err(Error::new(
                ErrorKind::Engine,
                format!(
                    "this database was written by an earlier Strata whose primary-key index \
                     format ({old}) this version does not read; export it with that version"
                ),
            ));
        }
        let catalog = schema::catalog_table(&db)?;
        let shared = db.extension(Shared::default);
        Ok(Connection {
            db,
            shared,
            catalog,
            tables: HashMap::new(),
            state: TxnState::Auto,
            cache: HashMap::new(),
            durability: None,
            isolation: None,
            last_commit: None,
        })
    }

    /// A sibling connection to the same engine (for another thread).
    pub fn connect(&self) -> Result<Connection> {
        Connection::from_database(self.db.clone())
    }

    /// The engine underneath.
    pub fn database(&self) -> &Database {
        &self.db
    }

    /// Whether an explicit txn is open (or failed and awaiting ROLLBACK).
    pub fn in_transaction(&self) -> bool {
        !matches!(self.state, TxnState::Auto)
    }

    /// The snapshot of the open explicit txn: it sees every commit at or below this timestamp
    /// and none above. `None` outside an explicit txn or in a failed one.
    pub fn txn_read_ts(&self) -> Option<Timestamp> {
        match &self.state {
            TxnState::Open(txn) => Some(txn.read_ts()),
            _ => None,
        }
    }

    /// The commit timestamp of the last explicit txn (`BEGIN` … `COMMIT`) this connection
    /// committed, in the engine's commit order (`None` before the first). For a txn that wrote
    /// nothing it is the txn's snapshot, as `strata::Txn::commit` returns.
    pub fn last_commit_ts(&self) -> Option<Timestamp> {
        self.last_commit
    }

    /// Whether the open txn failed (every statement but ROLLBACK/COMMIT is refused).
    pub fn transaction_failed(&self) -> bool {
        matches!(self.state, TxnState::Failed(_))
    }

    /// Parses `sql` (one statement) into a reusable statement; cached per connection.
    pub fn prepare(&mut self, sql: &str) -> Result<Statement> {
        if let Some(p) = self.cache.get(sql) {
            return Ok(Statement { parsed: Arc::clone(p) });
        }
        let parsed = Arc::new(parse(sql)?);
        if self.cache.len() >= STATEMENT_CACHE_MAX {
            self.cache.clear();
        }
        self.cache.insert(sql.to_string(), Arc::clone(&parsed));
        Ok(Statement { parsed })
    }

    /// Runs one statement; returns the rows it changed.
    pub fn execute(&mut self, sql: &str, params: &[Value]) -> Result<u64> {
        let s = self.prepare(sql)?;
        s.execute(self, params)
    }

    /// Runs one statement; returns its rows (with column names).
    pub fn query(&mut self, sql: &str, params: &[Value]) -> Result<Rows> {
        let s = self.prepare(sql)?;
        s.query(self, params)
    }

    /// Runs every statement of a script, stopping at the first error.
    pub fn execute_batch(&mut self, sql: &str) -> Result<()> {
        for text in split_statements(sql) {
            self.execute(&text, &[])?;
        }
        Ok(())
    }

    /// The schemas of every table (for `.tables` and `.schema`), in this connection's view.
    pub fn schemas(&mut self) -> Result<Vec<TableSchema>> {
        match &self.state {
            TxnState::Open(txn) => schema::all(txn, &self.catalog),
            _ => {
                let snap = self.db.begin()?;
                let all = schema::all(&snap, &self.catalog);
                snap.rollback();
                all
            }
        }
    }

    fn run(&mut self, parsed: &Parsed, params: &[Value]) -> Result<Outcome> {
        stacker::maybe_grow(RUN_STACK_BYTES, STACK_SEGMENT_BYTES, || self.run_here(parsed, params))
    }

    fn run_here(&mut self, parsed: &Parsed, params: &[Value]) -> Result<Outcome> {
        let none = |changed| Outcome { changed, rows: Rows::default() };
        match &parsed.kind {
            Kind::Begin(isolation) => match self.state {
                TxnState::Auto => {
                    let mut txn = self.db.begin_with(isolation.unwrap_or(self.isolation()))?;
                    if let Some(d) = self.durability {
                        txn.set_durability(d);
                    }
                    self.state = TxnState::Open(Box::new(txn));
                    Ok(none(0))
                }
                _ => Err(Error::new(
                    ErrorKind::TxnState,
                    "cannot start a transaction within a transaction",
                )),
            },
            Kind::Commit => match std::mem::replace(&mut self.state, TxnState::Auto) {
                TxnState::Auto => Err(Error::new(ErrorKind::TxnState, "no transaction is active")),
                TxnState::Failed(e) => Err(Error::new(
                    ErrorKind::TxnAborted,
                    format!("the transaction was aborted and has been rolled back (by: {e})"),
                )),
                TxnState::Open(txn) => match txn.commit() {
                    Ok(ts) => {
                        self.last_commit = Some(ts);
                        Ok(none(0))
                    }
                    Err(e) => Err(Error::from(e)),
                },
            },
            Kind::Rollback => match std::mem::replace(&mut self.state, TxnState::Auto) {
                TxnState::Auto => Err(Error::new(ErrorKind::TxnState, "no transaction is active")),
                TxnState::Failed(_) => Ok(none(0)),
                TxnState::Open(txn) => {
                    txn.rollback();
                    Ok(none(0))
                }
            },
            Kind::Pragma { name, value } => {
                if let TxnState::Failed(_) = self.state {
                    return Err(aborted());
                }
                self.pragma(name, value.as_deref())
            }
            Kind::Statement(stmt) => match std::mem::replace(&mut self.state, TxnState::Auto) {
                TxnState::Failed(e) => {
                    self.state = TxnState::Failed(e);
                    Err(aborted())
                }
                TxnState::Open(mut txn) => {
                    let result = self.run_in(stmt, &parsed.text, &mut txn, params);
                    match result {
                        Ok(o) => {
                            self.state = TxnState::Open(txn);
                            Ok(o)
                        }
                        Err(e) => {
                            // PostgreSQL's rule: the txn is done for; its writes are discarded.
                            txn.rollback();
                            self.state = TxnState::Failed(e.clone());
                            Err(e)
                        }
                    }
                }
                TxnState::Auto => self.autocommit(stmt, &parsed.text, params),
            },
        }
    }

    fn run_in(
        &mut self,
        stmt: &sql::Statement,
        text: &str,
        txn: &mut Txn,
        params: &[Value],
    ) -> Result<Outcome> {
        let (plan, count) = exec::plan(stmt, text, txn, &self.catalog)?;
        check_params(count, params)?;
        let mut env = ConnEnv {
            db: &self.db,
            shared: &self.shared,
            catalog: &self.catalog,
            tables: &mut self.tables,
        };
        match &plan {
            Plan::Explain(lines) => Ok(Outcome {
                changed: 0,
                rows: Rows {
                    columns: vec!["detail".to_string()],
                    rows: lines.iter().map(|l| vec![Value::Text(l.clone())]).collect(),
                },
            }),
            Plan::Select(sel) => {
                Ok(Outcome { changed: 0, rows: exec::run_select(sel, txn, &mut env, params)? })
            }
            _ => Ok(Outcome {
                changed: exec::run_write(&plan, txn, &mut env, params)?,
                rows: Rows::default(),
            }),
        }
    }

    /// One statement in its own txn; write-write conflicts are retried (nothing of a failed
    /// attempt is visible, so the retry is the statement run later).
    fn autocommit(
        &mut self,
        stmt: &sql::Statement,
        text: &str,
        params: &[Value],
    ) -> Result<Outcome> {
        let mut last = None;
        for attempt in 0..AUTOCOMMIT_ATTEMPTS {
            if attempt > 0 {
                std::thread::yield_now();
            }
            let mut txn = self.db.begin_with(self.isolation())?;
            if let Some(d) = self.durability {
                txn.set_durability(d);
            }
            match self.run_in(stmt, text, &mut txn, params) {
                Ok(o) => match txn.commit() {
                    Ok(_) => return Ok(o),
                    Err(e) if e.is_retryable() => last = Some(Error::from(e)),
                    Err(e) => return Err(e.into()),
                },
                Err(e) if e.is_retryable() => {
                    txn.rollback();
                    last = Some(e);
                }
                Err(e) => {
                    txn.rollback();
                    return Err(e);
                }
            }
        }
        Err(last.unwrap_or_else(|| Error::new(ErrorKind::Conflict, "conflict")))
    }

    fn pragma(&mut self, name: &str, value: Option<&str>) -> Result<Outcome> {
        let one = |column: &str, v: Value| Outcome {
            changed: 0,
            rows: Rows { columns: vec![column.to_string()], rows: vec![vec![v]] },
        };
        let value = value.map(|v| v.trim_matches(|c| c == '\'' || c == '"').to_ascii_lowercase());
        match (name, value.as_deref()) {
            ("journal_mode", _) => Ok(one("journal_mode", Value::from("mvcc"))),
            ("isolation_level", None) => {
                Ok(one("isolation_level", Value::from(self.isolation().name())))
            }
            ("isolation_level", Some(v)) => {
                self.isolation = Some(isolation_level(v).ok_or_else(|| {
                    Error::type_error(format!(
                        "isolation_level must be snapshot or serializable (or a SQL level: read \
                         committed, repeatable read), not {v}"
                    ))
                })?);
                Ok(Outcome { changed: 0, rows: Rows::default() })
            }
            ("durability" | "synchronous", None) => {
                let d = self.durability.unwrap_or(self.db.options().durability);
                let text = match (name, d) {
                    ("durability", Durability::None) => "none",
                    ("durability", Durability::Buffered) => "buffered",
                    ("durability", _) => "sync",
                    (_, Durability::None) => "off",
                    (_, Durability::Buffered) => "normal",
                    (_, _) => "full",
                };
                Ok(one(name, Value::from(text)))
            }
            ("durability" | "synchronous", Some(v)) => {
                let d = match v {
                    "none" | "off" | "0" => Durability::None,
                    "buffered" | "normal" | "1" => Durability::Buffered,
                    "sync" | "full" | "2" | "extra" | "3" => Durability::Sync,
                    other => {
                        return Err(Error::type_error(format!(
                            "{name} must be none/off, buffered/normal or sync/full, not {other}"
                        )))
                    }
                };
                self.durability = Some(d);
                if let TxnState::Open(txn) = &mut self.state {
                    txn.set_durability(d);
                }
                Ok(Outcome { changed: 0, rows: Rows::default() })
            }
            (other, _) => Err(Error::not_supported(format!("PRAGMA {other}"))),
        }
    }
}

impl Connection {
    /// The isolation level new txns of this connection get (`PRAGMA isolation_level`, else the
    /// database's `Options::isolation`).
    pub fn isolation(&self) -> Isolation {
        self.isolation.unwrap_or(self.db.options().isolation)
    }
}

/// An isolation level by name. The SQL levels weaker than snapshot isolation run as snapshot
/// isolation (stronger than asked, which the standard allows); REPEATABLE READ is snapshot
/// isolation as in PostgreSQL.
fn isolation_level(name: &str) -> Option<Isolation> {
    let words: Vec<String> = name.split_whitespace().map(str::to_ascii_lowercase).collect();
    let words: Vec<&str> = words.iter().map(String::as_str).collect();
    match words.as_slice() {
        ["serializable"] => Some(Isolation::Serializable),
        ["snapshot"] | ["repeatable", "read"] | ["read", "committed"] | ["read", "uncommitted"] => {
            Some(Isolation::Snapshot)
        }
        [one] if one.contains('_') => isolation_level(&one.replace('_', " ")),
        _ => None,
    }
}

fn aborted() -> Error {
    Error::new(
        ErrorKind::TxnAborted,
        "current transaction is aborted, statements are refused until ROLLBACK (or COMMIT, which reports the failure)",
    )
}

fn check_params(expected: usize, given: &[Value]) -> Result<()> {
    if expected != given.len() {
        return Err(Error::new(
            ErrorKind::Params,
            format!("the statement takes {expected} parameters, {} given", given.len()),
        ));
    }
    Ok(())
}

struct ConnEnv<'a> {
    db: &'a Database,
    shared: &'a Shared,
    catalog: &'a Table,
    tables: &'a mut HashMap<String, Table>,
}

impl ConnEnv<'_> {
    /// An engine table by name, through the connection's cache of handles.
    fn engine_table(&mut self, engine_name: String, create: bool) -> Result<Table> {
        if let Some(t) = self.tables.get(&engine_name) {
            return Ok(t.clone());
        }
        let t = if create {
            self.db.create_or_open_table(&engine_name)?
        } else {
            self.db.open_table(&engine_name)?
        };
        self.tables.insert(engine_name, t.clone());
        Ok(t)
    }
}

impl Env for ConnEnv<'_> {
    fn catalog(&self) -> &Table {
        self.catalog
    }

    fn data_table(&mut self, name: &str, create: bool) -> Result<Table> {
        self.engine_table(schema::data_table_name(name), create)
    }

    fn key_table(&mut self, name: &str, create: bool) -> Result<Table> {
        self.engine_table(schema::key_table_name(name), create)
    }

    fn next_rowid(&mut self, table: &Table, key: &str) -> Result<i64> {
        let c = self.shared.counter(self.db, table, key)?;
        // Never past i64::MAX: a plain fetch_add wrapped to -2^63 after an explicit rowid of
        // i64::MAX. Relaxed: a unique-id counter, ordered by nothing else.
        c.fetch_update(Ordering::Relaxed, Ordering::Relaxed, |last| last.checked_add(1))
            .map(|last| last + 1)
            .map_err(|_| Error::range("the table's rowids are exhausted (a rowid is i64::MAX)"))
    }

    fn saw_rowid(&mut self, table: &Table, key: &str, rowid: i64) -> Result<()> {
        self.shared.counter(self.db, table, key)?.fetch_max(rowid, Ordering::Relaxed);
        Ok(())
    }
}

/// Parses one statement. `BEGIN CONCURRENT` is recognised before sqlparser (which has no such
/// statement); plain `BEGIN` is the same thing on this engine (every txn is optimistic).
fn parse(text: &str) -> Result<Parsed> {
    stacker::maybe_grow(PARSE_STACK_BYTES, STACK_SEGMENT_BYTES, || parse_here(text))
}

fn parse_here(text: &str) -> Result<Parsed> {
    if text.len() > STATEMENT_BYTES_MAX {
        return Err(Error::new(
            ErrorKind::Parse,
            format!("statement longer than {STATEMENT_BYTES_MAX} bytes"),
        ));
    }
    let words: Vec<String> = text
        .trim()
        .trim_end_matches(';')
        .split_whitespace()
        .map(|w| w.to_ascii_uppercase())
        .collect();
    let words: Vec<&str> = words.iter().map(String::as_str).collect();
    if words.first() == Some(&"BEGIN") {
        return parse_begin(&words, text);
    }
    if words.first() == Some(&"PRAGMA") {
        return parse_pragma(text);
    }
    check_complexity(text)?;
    let mut stmts = Parser::parse_sql(&SQLiteDialect {}, text)?;
    let stmt = match stmts.len() {
        1 => stmts.remove(0),
        0 => return Err(Error::new(ErrorKind::Parse, "no statement")),
        n => {
            return Err(Error::new(
                ErrorKind::Parse,
                format!("{n} statements where one was expected (use execute_batch)"),
            ))
        }
    };
    let kind = match stmt {
        sql::Statement::StartTransaction {
            modes, statements, exception, has_end_keyword, ..
        } => {
            if !statements.is_empty() || exception.is_some() || has_end_keyword {
                return Err(Error::not_supported("BEGIN ... END blocks"));
            }
            let mut isolation = None;
            for mode in &modes {
                use sql::{TransactionIsolationLevel as L, TransactionMode as M};
                isolation = Some(match mode {
                    M::IsolationLevel(L::Serializable) => Isolation::Serializable,
                    M::IsolationLevel(
                        L::RepeatableRead | L::ReadCommitted | L::ReadUncommitted | L::Snapshot,
                    ) => Isolation::Snapshot,
                    other => return Err(Error::not_supported(format!("transaction mode {other}"))),
                });
            }
            Kind::Begin(isolation)
        }
        sql::Statement::Commit { chain: false, .. } => Kind::Commit,
        sql::Statement::Rollback { chain: false, savepoint: None } => Kind::Rollback,
        sql::Statement::Commit { .. } | sql::Statement::Rollback { .. } => {
            return Err(Error::not_supported("AND CHAIN and savepoints"))
        }
        other => Kind::Statement(Box::new(other)),
    };
    Ok(Parsed { kind, text: text.to_string() })
}

/// `BEGIN [CONCURRENT | DEFERRED | IMMEDIATE | EXCLUSIVE] [TRANSACTION] [ISOLATION LEVEL level]`
/// (`words` upper-cased). Every txn here is optimistic, so the SQLite locking words are accepted
/// and mean the same as plain `BEGIN`.
fn parse_begin(words: &[&str], text: &str) -> Result<Parsed> {
    let mut rest = &words[1..];
    if let [first, tail @ ..] = rest {
        if matches!(*first, "CONCURRENT" | "DEFERRED" | "IMMEDIATE" | "EXCLUSIVE") {
            rest = tail;
        }
    }
    if let ["TRANSACTION", tail @ ..] = rest {
        rest = tail;
    }
    let isolation = match rest {
        [] => None,
        ["ISOLATION", "LEVEL", level @ ..] if !level.is_empty() => {
            Some(isolation_level(&level.join(" ")).ok_or_else(|| {
                Error::new(ErrorKind::Parse, format!("unknown isolation level {}", level.join(" ")))
            })?)
        }
        _ => return Err(Error::new(
            ErrorKind::Parse,
            "expected BEGIN [CONCURRENT] [TRANSACTION] [ISOLATION LEVEL SERIALIZABLE | SNAPSHOT]",
        )),
    };
    Ok(Parsed { kind: Kind::Begin(isolation), text: text.to_string() })
}

/// Refuses a statement with more than `OPERATORS_MAX` operators before it is parsed: a long
/// chain like `1+1+...+1` parses (without recursion) into a tree as deep as it is long, and
/// the tree's destructor recurses — 100,000 terms overflow a 2 MiB thread stack.
fn check_complexity(text: &str) -> Result<()> {
    use sqlparser::tokenizer::{Token, Tokenizer};
    let tokens = Tokenizer::new(&SQLiteDialect {}, text).tokenize()?;
    let operators = tokens
        .iter()
        .filter(|t| match t {
            Token::Plus
            | Token::Minus
            | Token::Mul
            | Token::Div
            | Token::Mod
            | Token::StringConcat
            | Token::Eq
            | Token::DoubleEq
            | Token::Neq
            | Token::Lt
            | Token::Gt
            | Token::LtEq
            | Token::GtEq
            | Token::LParen => true,
            Token::Word(w) => ["AND", "OR", "NOT", "IS", "IN", "BETWEEN", "LIKE"]
                .iter()
                .any(|k| w.quote_style.is_none() && w.value.eq_ignore_ascii_case(k)),
            _ => false,
        })
        .count();
    if operators > OPERATORS_MAX {
        return Err(Error::new(
            ErrorKind::Parse,
            format!("statement too complex: {operators} operators (at most {OPERATORS_MAX})"),
        ));
    }
    Ok(())
}

/// `PRAGMA name`, `PRAGMA name = value` or `PRAGMA name(value)` (values are bare words,
/// numbers or quoted strings; sqlparser accepts no bare words there).
fn parse_pragma(text: &str) -> Result<Parsed> {
    let body = text.trim().trim_end_matches(';').trim();
    let body = body.get(6..).unwrap_or("").trim(); // after "PRAGMA"
    let (name, value) = match body.find(['=', '(']) {
        None => (body, None),
        Some(i) => {
            let v = body[i + 1..].trim().trim_end_matches(')').trim();
            (body[..i].trim(), Some(v.trim_matches(|c| c == '\'' || c == '"').to_string()))
        }
    };
    let valid = |s: &str| !s.is_empty() && s.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
    if !valid(name) || value.as_deref().is_some_and(|v| !valid(v)) {
        return Err(Error::new(ErrorKind::Parse, format!("malformed PRAGMA: {text}")));
    }
    Ok(Parsed {
        kind: Kind::Pragma { name: name.to_ascii_lowercase(), value },
        text: text.to_string(),
    })
}

/// Splits a script at top-level semicolons (outside quotes and comments).
pub fn split_statements(script: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut chars = script.chars().peekable();
    let mut quote: Option<char> = None;
    while let Some(c) = chars.next() {
        match quote {
            Some(q) => {
                cur.push(c);
                if c == q {
                    if chars.peek() == Some(&q) {
                        cur.push(q);
                        chars.next();
                    } else {
                        quote = None;
                    }
                }
            }
            None => match c {
                '\'' | '"' | '`' => {
                    quote = Some(c);
                    cur.push(c);
                }
                '-' if chars.peek() == Some(&'-') => {
                    for c in chars.by_ref() {
                        if c == '\n' {
                            break;
                        }
                    }
                    cur.push('\n');
                }
                ';' => {
                    if !cur.trim().is_empty() {
                        out.push(cur.trim().to_string());
                    }
                    cur.clear();
                }
                c => cur.push(c),
            },
        }
    }
    if !cur.trim().is_empty() {
        out.push(cur.trim().to_string());
    }
    out
}

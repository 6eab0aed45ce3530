//! `strata shell [DIR]`: SQL statements (ending in `;`) and dot-commands from stdin, with line
//! editing when stdin is a terminal. Output is plain text for scripts to compare: one line per
//! row, values separated by `|`, NULL as empty, no header unless `.headers on`; a failed
//! statement prints `Error: <kind>: <message>` (on stdout, in order with the rows) and the shell
//! goes on. Several connections at once: the first is `A`, `.spawn` opens the next (`B`, `C`,
//! ...) and switches to it, `.use NAME` switches, `.conns` lists them.

use clap::Args;
use std::io::{BufRead, IsTerminal, Write};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;
use strata_sql::{Connection, Rows};

#[derive(Args, Debug, Clone)]
pub struct ShellArgs {
    /// Database directory (created if missing); without it, an in-memory database.
    pub dir: Option<PathBuf>,
}

const HELP: &str = "\
.conns              list the connections (* current, [txn] open txn, [failed] failed txn)
.headers on|off     print column names before rows
.help               this text
.quit               leave (also .exit, or end of input)
.schema [TABLE]     the CREATE statements
.spawn              open a new connection to the same database and switch to it
.tables             the table names
.timer on|off       print how long each statement took
.use NAME           switch to connection NAME";

/// The shell's state; `run_line` is its whole behaviour (the tests drive it directly).
pub struct Shell {
    conns: Vec<(String, Connection)>,
    current: usize,
    headers: bool,
    timer: bool,
    /// A statement being typed over several lines.
    pending: String,
    /// Statements that printed an error: the exit status says so.
    pub failures: u64,
}

/// What a line asked for.
#[derive(Debug, PartialEq, Eq)]
pub enum Flow {
    Continue,
    Quit,
}

impl Shell {
    pub fn new(first: Connection) -> Shell {
        Shell {
            conns: vec![("A".into(), first)],
            current: 0,
            headers: false,
            timer: false,
            pending: String::new(),
            failures: 0,
        }
    }

    /// Whether a statement is partly typed (for the continuation prompt). Comment lines alone
    /// are not a statement: a dot-command after them runs (it used to be swallowed into the next
    /// statement).
    pub fn in_statement(&self) -> bool {
        let (in_quote, last) = scan(&self.pending);
        in_quote || last.is_some()
    }

    pub fn prompt(&self) -> String {
        let name = &self.conns[self.current].0;
        if self.in_statement() {
            format!("{}...> ", " ".repeat(name.len()))
        } else {
            format!("{name}> ")
        }
    }

    /// Handles one input line, writing what it prints to `out`.
    pub fn run_line(&mut self, line: &str, out: &mut dyn Write) -> std::io::Result<Flow> {
        if !self.in_statement() && line.trim_start().starts_with('.') {
            self.pending.clear(); // comments only
            return self.dot(line.trim(), out);
        }
        self.pending.push_str(line);
        self.pending.push('\n');
        if !statement_complete(&self.pending) {
            return Ok(Flow::Continue);
        }
        let text = std::mem::take(&mut self.pending);
        for stmt in strata_sql::split_statements(&text) {
            self.statement(&stmt, out)?;
        }
        Ok(Flow::Continue)
    }

    /// Runs whatever is left at the end of input (a last statement without `;`).
    pub fn finish(&mut self, out: &mut dyn Write) -> std::io::Result<()> {
        let text = std::mem::take(&mut self.pending);
        for stmt in strata_sql::split_statements(&text) {
            self.statement(&stmt, out)?;
        }
        Ok(())
    }

    fn statement(&mut self, sql: &str, out: &mut dyn Write) -> std::io::Result<()> {
        let started = Instant::now();
        let conn = &mut self.conns[self.current].1;
        match conn.query(sql, &[]) {
            Ok(rows) => print_rows(&rows, self.headers, out)?,
            Err(e) => {
                self.failures += 1;
                writeln!(out, "Error: {}: {}", e.kind(), e.message())?
            }
        }
        if self.timer {
            writeln!(out, "Run Time: {:.3} ms", started.elapsed().as_secs_f64() * 1e3)?;
        }
        // Each answer reaches a program driving the shell through a pipe at once, as sqlite3's
        // do (it sat in the buffer until 8 KiB or exit).
        out.flush()
    }

    fn dot(&mut self, line: &str, out: &mut dyn Write) -> std::io::Result<Flow> {
        let words: Vec<&str> = line.split_whitespace().collect();
        let on_off = |w: Option<&&str>| match w.map(|s| s.to_ascii_lowercase()) {
            Some(s) if s == "on" => Some(true),
            Some(s) if s == "off" => Some(false),
            _ => None,
        };
        match words.as_slice() {
            [".quit"] | [".exit"] => return Ok(Flow::Quit),
            [".help"] => writeln!(out, "{HELP}")?,
            [".headers", ..] => match on_off(words.get(1)) {
                Some(b) => self.headers = b,
                None => writeln!(out, "Error: usage: .headers on|off")?,
            },
            [".timer", ..] => match on_off(words.get(1)) {
                Some(b) => self.timer = b,
                None => writeln!(out, "Error: usage: .timer on|off")?,
            },
            [".spawn"] => {
                let name = next_name(self.conns.len());
                match self.conns[0].1.connect() {
                    Ok(c) => {
                        self.conns.push((name, c));
                        self.current = self.conns.len() - 1;
                    }
                    Err(e) => writeln!(out, "Error: {}: {}", e.kind(), e.message())?,
                }
            }
            [".use", name] => {
                match self.conns.iter().position(|(n, _)| n.eq_ignore_ascii_case(name)) {
                    Some(i) => self.current = i,
                    None => writeln!(out, "Error: no connection named {name} (see .conns)")?,
                }
            }
            [".conns"] => {
                for (i, (name, c)) in self.conns.iter().enumerate() {
                    let mark = if i == self.current { " *" } else { "" };
                    let txn = if c.transaction_failed() {
                        " [failed]"
                    } else if c.in_transaction() {
                        " [txn]"
                    } else {
                        ""
                    };
                    writeln!(out, "{name}{mark}{txn}")?;
                }
            }
            [".tables"] | [".schema"] | [".schema", _] => {
                let conn = &mut self.conns[self.current].1;
                match conn.schemas() {
                    Ok(mut all) => {
                        all.sort_by(|a, b| {
                            a.name.to_ascii_lowercase().cmp(&b.name.to_ascii_lowercase())
                        });
                        for s in all {
                            if words[0] == ".tables" {
                                writeln!(out, "{}", s.name)?;
                            } else if words.get(1).is_none_or(|t| t.eq_ignore_ascii_case(&s.name)) {
                                writeln!(out, "{};", s.sql)?;
                            }
                        }
                    }
                    Err(e) => writeln!(out, "Error: {}: {}", e.kind(), e.message())?,
                }
            }
            _ => writeln!(out, "Error: unknown command or wrong arguments: {line} (see .help)")?,
        }
        Ok(Flow::Continue)
    }
}

/// `A`, `B`, ..., `Z`, `AA`, `AB`, ...
fn next_name(index: usize) -> String {
    let mut n = index;
    let mut name = Vec::new();
    loop {
        name.push(b'A' + (n % 26) as u8);
        if n < 26 {
            break;
        }
        n = n / 26 - 1;
    }
    name.reverse();
    String::from_utf8(name).unwrap_or_default()
}

/// Whether `text` ends with a `;` outside quotes and comments.
fn statement_complete(text: &str) -> bool {
    let (in_quote, last) = scan(text);
    !in_quote && last == Some(';')
}

/// Scans SQL text: whether it ends inside a quote, and its last character outside quotes, `--`
/// comments and whitespace (`None`: nothing but comments and whitespace).
fn scan(text: &str) -> (bool, Option<char>) {
    let mut quote: Option<char> = None;
    let mut last_significant = None;
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        match quote {
            Some(q) if c == q => quote = None,
            Some(_) => {}
            None => match c {
                '\'' | '"' | '`' => {
                    quote = Some(c);
                    last_significant = Some(c);
                }
                '-' if chars.peek() == Some(&'-') => {
                    for c in chars.by_ref() {
                        if c == '\n' {
                            break;
                        }
                    }
                }
                c if c.is_whitespace() => {}
                c => last_significant = Some(c),
            },
        }
    }
    (quote.is_some(), last_significant)
}

fn print_rows(rows: &Rows, headers: bool, out: &mut dyn Write) -> std::io::Result<()> {
    if headers && !rows.columns.is_empty() {
        writeln!(out, "{}", rows.columns.join("|"))?;
    }
    for row in &rows.rows {
        let line: Vec<String> = row.iter().map(ToString::to_string).collect();
        writeln!(out, "{}", line.join("|"))?;
    }
    Ok(())
}

pub fn run(args: &ShellArgs) -> ExitCode {
    let first = match &args.dir {
        Some(dir) => Connection::open(dir),
        None => Connection::open_in_memory(),
    };
    let first = match first {
        Ok(c) => c,
        Err(e) => {
            eprintln!("strata shell: {e}");
            return ExitCode::FAILURE;
        }
    };
    let db = first.database().clone();
    let mut shell = Shell::new(first);
    let result =
        if std::io::stdin().is_terminal() { interactive(&mut shell) } else { piped(&mut shell) };
    let closed = db.close();
    match (result, closed) {
        (Err(e), _) => {
            eprintln!("strata shell: {e}");
            ExitCode::FAILURE
        }
        (_, Err(e)) => {
            eprintln!("strata shell: closing the database: {e}");
            ExitCode::FAILURE
        }
        // Like `sqlite3 -bail`'s status, without stopping: 1 if any statement failed.
        _ if shell.failures > 0 => ExitCode::FAILURE,
        _ => ExitCode::SUCCESS,
    }
}

fn piped(shell: &mut Shell) -> std::io::Result<()> {
    let stdin = std::io::stdin();
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::new(stdout.lock());
    for line in stdin.lock().lines() {
        if shell.run_line(&line?, &mut out)? == Flow::Quit {
            return out.flush();
        }
    }
    shell.finish(&mut out)?;
    out.flush()
}

fn interactive(shell: &mut Shell) -> std::io::Result<()> {
    let mut editor = rustyline::DefaultEditor::new().map_err(std::io::Error::other)?;
    println!("strata shell: statements end with ';', .help for commands");
    let mut out = std::io::stdout();
    loop {
        match editor.readline(&shell.prompt()) {
            Ok(line) => {
                let _ = editor.add_history_entry(line.as_str());
                if shell.run_line(&line, &mut out)? == Flow::Quit {
                    return Ok(());
                }
                out.flush()?;
            }
            // Ctrl-C drops the statement being typed; Ctrl-D leaves.
            Err(rustyline::error::ReadlineError::Interrupted) => shell.pending.clear(),
            Err(rustyline::error::ReadlineError::Eof) => return shell.finish(&mut out),
            Err(e) => return Err(std::io::Error::other(e)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_statement_ends() {
        assert_eq!(next_name(0), "A");
        assert_eq!(next_name(25), "Z");
        assert_eq!(next_name(26), "AA");
        assert!(statement_complete("SELECT 1;"));
        assert!(statement_complete("SELECT 1; -- done\n"));
        assert!(!statement_complete("SELECT ';'"));
        assert!(!statement_complete("SELECT 1"));
        assert!(statement_complete("SELECT 'a;b';"));
    }
}

//! `strata shell`: each `tests/shell/NAME.sql` is piped into the binary and its output must
//! equal `tests/shell/NAME.out` exactly (rows, errors, connection lists, conflicts). Set
//! `STRATA_BLESS=1` to rewrite the `.out` files from the current output (then review the diff).
#![allow(clippy::unwrap_used)] // tests: a failed unwrap is a failed test

use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};

fn shell(args: &[&str], input: &str) -> (String, bool) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_strata"))
        .arg("shell")
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(input.as_bytes()).unwrap();
    let out = child.wait_with_output().unwrap();
    (String::from_utf8(out.stdout).unwrap(), out.status.success())
}

#[test]
fn scripts_print_exactly_their_expected_output() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/shell");
    let mut names: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "sql"))
        .collect();
    names.sort();
    assert!(names.len() >= 3);
    let bless = std::env::var_os("STRATA_BLESS").is_some();
    for script in names {
        let (got, ok) = shell(&[], &std::fs::read_to_string(&script).unwrap());
        let expected_path = script.with_extension("out");
        if bless {
            std::fs::write(&expected_path, &got).unwrap();
            continue;
        }
        let expected = std::fs::read_to_string(&expected_path).unwrap();
        assert_eq!(got, expected, "{}", script.display());
        // The exit status says whether any statement failed (as `sqlite3 -bail` would).
        let failed = expected.lines().any(|l| l.starts_with("Error:"));
        assert_eq!(ok, !failed, "{}: exit status", script.display());
    }
}

#[test]
fn a_shell_on_a_directory_keeps_its_tables() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("shell");
    let d = dir.to_str().unwrap();
    let (out, ok) = shell(&[d], "CREATE TABLE t (a INTEGER);\nINSERT INTO t VALUES (1), (2);\n");
    assert!(ok && out.is_empty(), "{out}");
    let (out, ok) = shell(&[d], "SELECT SUM(a) FROM t;\n.tables\n.quit\nSELECT 'not reached';\n");
    assert!(ok);
    assert_eq!(out, "3\nt\n");
    // A statement without a final `;` at the end of input still runs.
    let (out, _) = shell(&[d], "SELECT COUNT(*) FROM t");
    assert_eq!(out, "2\n");
}

#[test]
fn a_comment_line_does_not_swallow_the_next_dot_command() {
    let (out, ok) = shell(&[], "-- make a table\n.tables\nCREATE TABLE t (a INTEGER);\n.tables\n");
    assert!(ok, "{out}");
    assert_eq!(out, "t\n", "the first .tables lists nothing, the second lists t");
    let (out, _) = shell(&[], "-- one\n-- two\nSELECT 1;\n");
    assert_eq!(out, "1\n");
}

#[test]
fn a_failed_statement_makes_the_exit_status_nonzero() {
    let (out, ok) = shell(&[], "SELECT * FROM missing;\nSELECT 2;\n");
    assert!(!ok);
    assert!(out.starts_with("Error:") && out.ends_with("2\n"), "it goes on after the error: {out}");
}

/// A program that drives the shell through pipes, one statement at a time, gets each answer
/// before it sends the next (the shell flushes after every statement, as sqlite3 does).
#[test]
fn answers_reach_a_pipe_statement_by_statement() {
    use std::io::{BufRead, BufReader};
    let mut child = Command::new(env!("CARGO_BIN_EXE_strata"))
        .arg("shell")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let stdout = BufReader::new(child.stdout.take().unwrap());
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in stdout.lines() {
            if tx.send(line.unwrap()).is_err() {
                return;
            }
        }
    });
    for i in 1..=3 {
        writeln!(stdin, "SELECT {i};").unwrap();
        stdin.flush().unwrap();
        let answer = rx.recv_timeout(std::time::Duration::from_secs(10));
        assert_eq!(
            answer.as_deref(),
            Ok(i.to_string().as_str()),
            "answer {i} while the pipe is open"
        );
    }
    drop(stdin);
    assert!(child.wait().unwrap().success());
}

//! `strata bench --suite cold-open` end to end, through the binary (its fresh-process read
//! starts the binary again): every engine's gates pass (redb's included) on a small database, the storage table
//! is printed, and the JSON holds its figures.
#![allow(clippy::unwrap_used)] // tests: a failed unwrap is a failed test

use std::process::Command;

#[test]
fn cold_open_reopens_every_engine_with_passing_gates() {
    let tmp = tempfile::tempdir().unwrap();
    let json = tmp.path().join("cold.json");
    let out = Command::new(env!("CARGO_BIN_EXE_strata"))
        .args(["bench", "--suite", "cold-open", "--keys", "5000"])
        .args(["--engine", "strata,strata-sql,sqlite,redb,map", "--path"])
        .arg(tmp.path().join("db"))
        .arg("--json")
        .arg(&json)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "every cold-open gate passes (map is skipped):\n{text}\n{err}");
    assert!(text.contains("fresh-process read ms"), "the storage table:\n{text}");
    let rows: serde_json::Value = serde_json::from_slice(&std::fs::read(&json).unwrap()).unwrap();
    let rows = rows.as_array().unwrap();
    assert_eq!(rows.len(), 4, "strata, strata-sql, sqlite, redb");
    for r in rows {
        let engine = r["engine"].as_str().unwrap();
        if engine == "strata-sql" {
            assert!(r["storage"].is_null());
            continue;
        }
        let s = &r["storage"];
        assert_eq!(s["gate"], "pass", "{engine}: {s}");
        assert!(s["fresh_process_read_ms"].as_f64().unwrap() > 0.0, "{engine}: {s}");
        assert!(s["ycsb_c_reads_s"].as_f64().unwrap() > 0.0, "{engine}: {s}");
        assert!(s["commit_p99_us"].as_f64().unwrap() > 0.0, "{engine}: {s}");
        // redb writes its tree at each commit: no checkpoint window to measure.
        assert_eq!(s["commit_p99_checkpoint_us"].is_null(), engine == "redb", "{engine}: {s}");
    }
}

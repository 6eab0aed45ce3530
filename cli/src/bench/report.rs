//! What a run of `strata bench` writes: the table on stdout, `--csv` and `--json` files, and the
//! median of `--repeat` runs.

use super::*;

pub(super) fn write_csv(path: Option<&Path>, rows: &[Row]) -> Result<(), String> {
    let Some(path) = path else { return Ok(()) };
    let failed = |e: csv::Error| format!("writing {}: {e}", path.display());
    // One column per `Row` field, in declaration order, named as the JSON keys are.
    let mut out = csv::Writer::from_path(path).map_err(failed)?;
    for r in rows {
        // The per-site counts are nested: JSON only.
        out.serialize(Row { lines: None, ..r.clone() }).map_err(failed)?;
    }
    out.flush().map_err(|e| format!("writing {}: {e}", path.display()))?;
    println!("wrote {}", path.display());
    Ok(())
}

pub(super) fn write_json(path: Option<&Path>, value: &impl Serialize) -> Result<(), String> {
    if let Some(path) = path {
        let text = serde_json::to_string_pretty(value).map_err(|e| e.to_string())?;
        std::fs::write(path, text).map_err(|e| format!("writing {}: {e}", path.display()))?;
        println!("wrote {}", path.display());
    }
    Ok(())
}

/// The run with the median throughput; a failed gate in any run fails the row.
pub(super) fn median(mut runs: Vec<Row>) -> Row {
    let failed = runs.iter().find(|r| r.gate.starts_with("FAILED")).map(|r| r.gate.clone());
    let n = runs.len() as u32;
    // Starvation is about the worst op of any run, not the median run's.
    let attempts_max = runs.iter().map(|r| r.attempts_max).max().unwrap_or(0);
    let attempts_p999 = runs.iter().map(|r| r.attempts_p999).max().unwrap_or(0);
    runs.sort_by(|a, b| a.commits_per_s.total_cmp(&b.commits_per_s));
    let mut row = runs.swap_remove(runs.len() / 2);
    row.runs = n;
    row.attempts_max = attempts_max;
    row.attempts_p999 = attempts_p999;
    if let Some(gate) = failed {
        row.gate = gate;
    }
    row
}

pub(super) fn print_table(rows: &[Row]) {
    let mut grid = Grid::new();
    grid.load_preset(UTF8_BORDERS_ONLY);
    // The long-reader columns only when some row has them.
    let versions = rows.iter().any(|r| r.retained_versions.is_some() || r.reclaim_ms.is_some());
    let mut header = vec![
        "engine",
        "via",
        "workload",
        "threads",
        "runs",
        "commits/s",
        "aborts/s",
        "p50 µs",
        "p99 µs",
        "p999 µs",
        "RSS MiB",
        "attempts max",
    ];
    if versions {
        header.extend(["kept versions", "reclaim ms"]);
    }
    header.push("gate");
    grid.set_header(header);
    let right = |text: String| Cell::new(text).set_alignment(CellAlignment::Right);
    for r in rows {
        let mut cells = vec![
            Cell::new(&r.engine),
            Cell::new(&r.via),
            Cell::new(&r.workload),
            right(r.threads.to_string()),
            right(r.runs.to_string()),
            right(format!("{:.0}", r.commits_per_s)),
            right(format!("{:.0}", r.aborts_per_s)),
            right(format!("{:.2}", r.p50_us)),
            right(format!("{:.2}", r.p99_us)),
            right(format!("{:.2}", r.p999_us)),
            right(r.rss_mib.map_or(String::new(), |v| format!("{v:.0}"))),
            right(r.attempts_max.to_string()),
        ];
        if versions {
            cells.push(right(r.retained_versions.map_or(String::new(), |v| v.to_string())));
            cells.push(right(r.reclaim_ms.map_or(String::new(), |v| format!("{v:.0}"))));
        }
        cells.push(Cell::new(&r.gate));
        grid.add_row(cells);
    }
    println!("{grid}");
    print_lines(rows);
}

/// `--lines`: per committed txn, the transfers (and, in brackets, all instrumented writes) at
/// each write site that any row wrote to, and the total.
fn print_lines(rows: &[Row]) {
    let counted: Vec<(&Row, &Vec<LineTally>)> =
        rows.iter().filter_map(|r| r.lines.as_ref().map(|l| (r, l))).collect();
    let Some((_, first)) = counted.first() else { return };
    let used: Vec<usize> = (0..first.len())
        .filter(|&i| counted.iter().any(|(_, l)| l.get(i).is_some_and(|t| t.writes_per_txn > 0.0)))
        .collect();
    let mut grid = Grid::new();
    grid.load_preset(UTF8_BORDERS_ONLY);
    let mut header = vec!["engine".to_string(), "workload".to_string(), "threads".to_string()];
    header.extend(used.iter().map(|&i| first[i].site.clone()));
    header.push("total".to_string());
    grid.set_header(header);
    let right = |text: String| Cell::new(text).set_alignment(CellAlignment::Right);
    for (r, l) in &counted {
        let mut cells =
            vec![Cell::new(&r.engine), Cell::new(&r.workload), right(r.threads.to_string())];
        let (mut w, mut x) = (0.0, 0.0);
        for &i in &used {
            let t = &l[i];
            w += t.writes_per_txn;
            x += t.transfers_per_txn;
            cells.push(right(format!("{:.2} ({:.2})", t.transfers_per_txn, t.writes_per_txn)));
        }
        cells.push(right(format!("{x:.2} ({w:.2})")));
        grid.add_row(cells);
    }
    println!("cache-line transfers per committed txn (all instrumented writes in brackets):");
    println!("{grid}");
}

//! `--plot DIR`: one SVG chart per workload — throughput against thread count, one line per
//! engine (log scales on both axes: the engines differ by up to four orders of magnitude).
//! Rows whose gate failed are left out of the lines; the caption says how many.

use super::Row;
use plotters::prelude::*;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// Line colours, one per engine in order of first appearance.
const COLOURS: [RGBColor; 8] = [
    RGBColor(31, 119, 180),
    RGBColor(255, 127, 14),
    RGBColor(44, 160, 44),
    RGBColor(214, 39, 40),
    RGBColor(148, 103, 189),
    RGBColor(140, 86, 75),
    RGBColor(227, 119, 194),
    RGBColor(127, 127, 127),
];

/// Writes `DIR/<workload>.svg` for every workload in `rows`; returns the files written.
pub fn write(dir: &Path, rows: &[Row], machine: &str) -> Result<Vec<PathBuf>, String> {
    std::fs::create_dir_all(dir).map_err(|e| format!("creating {}: {e}", dir.display()))?;
    let mut by_workload: BTreeMap<&str, Vec<&Row>> = BTreeMap::new();
    for r in rows {
        by_workload.entry(&r.workload).or_default().push(r);
    }
    let mut files = Vec::new();
    for (workload, rows) in by_workload {
        let file = dir.join(format!("{workload}.svg"));
        chart(&file, workload, &rows, machine).map_err(|e| format!("{}: {e}", file.display()))?;
        files.push(file);
    }
    Ok(files)
}

fn chart(
    file: &Path,
    workload: &str,
    rows: &[&Row],
    machine: &str,
) -> Result<(), Box<dyn std::error::Error>> {
    let passed: Vec<&&Row> = rows.iter().filter(|r| !r.gate.starts_with("FAILED")).collect();
    let failed = rows.len() - passed.len();
    let mut engines: Vec<&str> = Vec::new();
    for r in &passed {
        if !engines.contains(&r.engine.as_str()) {
            engines.push(&r.engine);
        }
    }
    let max_threads = passed.iter().map(|r| r.threads).max().unwrap_or(1).max(2) as f64;
    let rates = passed.iter().map(|r| r.commits_per_s.max(1.0));
    let (lo, hi) = rates.fold((f64::MAX, 1.0f64), |(lo, hi), v| (lo.min(v), hi.max(v)));
    let lo = if lo == f64::MAX { 1.0 } else { lo };
    let root = SVGBackend::new(file, (900, 560)).into_drawing_area();
    root.fill(&WHITE)?;
    let caption = if failed > 0 {
        format!("{workload}: ops/s by threads ({failed} failed runs left out)")
    } else {
        format!("{workload}: ops/s by threads")
    };
    let mut chart = ChartBuilder::on(&root)
        .caption(caption, ("sans-serif", 22))
        .margin(16)
        .x_label_area_size(44)
        .y_label_area_size(80)
        .build_cartesian_2d(
            (0.9f64..max_threads * 1.1).log_scale(),
            (lo / 2.0..hi * 2.0).log_scale(),
        )?;
    chart
        .configure_mesh()
        .x_desc(format!("threads ({machine})"))
        .y_desc("committed ops/s")
        .x_label_formatter(&|x| format!("{x:.0}"))
        .y_label_formatter(&|y| human(*y))
        .draw()?;
    for (i, engine) in engines.iter().enumerate() {
        let colour = COLOURS[i % COLOURS.len()];
        let mut points: Vec<(f64, f64)> = passed
            .iter()
            .filter(|r| r.engine == *engine)
            .map(|r| (r.threads as f64, r.commits_per_s.max(1.0)))
            .collect();
        points.sort_by(|a, b| a.0.total_cmp(&b.0));
        chart
            .draw_series(LineSeries::new(points.clone(), colour.stroke_width(2)))?
            .label(*engine)
            .legend(move |(x, y)| {
                PathElement::new(vec![(x, y), (x + 18, y)], colour.stroke_width(2))
            });
        chart.draw_series(points.into_iter().map(|p| Circle::new(p, 3, colour.filled())))?;
    }
    chart
        .configure_series_labels()
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK)
        .position(SeriesLabelPosition::LowerRight)
        .draw()?;
    root.present()?;
    Ok(())
}

/// `1.2M`, `35K`, `950`.
fn human(v: f64) -> String {
    if v >= 1e6 {
        format!("{:.1}M", v / 1e6)
    } else if v >= 1e3 {
        format!("{:.0}K", v / 1e3)
    } else {
        format!("{v:.0}")
    }
}

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
    let mut threads: Vec<u32> = passed.iter().map(|r| r.threads as u32).collect();
    threads.sort_unstable();
    threads.dedup();
    let max_threads = f64::from(threads.last().copied().unwrap_or(1).max(2));
    let rates = passed.iter().map(|r| r.commits_per_s.max(1.0));
    let (lo, hi) = rates.fold((f64::MAX, 1.0f64), |(lo, hi), v| (lo.min(v), hi.max(v)));
    let lo = if lo == f64::MAX { 1.0 } else { lo };
    let (y_lo, y_hi) = (lo / 2.0, hi * 2.0);
    let root = SVGBackend::new(file, (960, 560)).into_drawing_area();
    root.fill(&WHITE)?;
    // The legend gets its own column right of the plot, so it never covers a line.
    let (plot_area, legend_area) = root.split_horizontally(780);
    let caption = if failed > 0 {
        format!("{workload}: ops/s by threads ({failed} failed runs left out)")
    } else {
        format!("{workload}: ops/s by threads")
    };
    // Ticks exactly at the thread counts measured (each labelled, the largest included), and at
    // 1-2-5 steps of each decade of throughput; no minor grid lines.
    let x_ticks: Vec<f64> = threads.iter().map(|&t| f64::from(t)).collect();
    let mut chart = ChartBuilder::on(&plot_area)
        .caption(caption, ("sans-serif", 22))
        .margin(16)
        .x_label_area_size(44)
        .y_label_area_size(80)
        .build_cartesian_2d(
            (0.9f64..max_threads * 1.1).log_scale().with_key_points(x_ticks),
            (y_lo..y_hi).log_scale().with_key_points(one_two_five(y_lo, y_hi)),
        )?;
    chart
        .configure_mesh()
        .x_desc(format!("threads ({machine})"))
        .y_desc("committed ops/s")
        .x_label_formatter(&|x| format!("{x:.0}"))
        .y_label_formatter(&|y| human(*y))
        .bold_line_style(RGBColor(225, 225, 225))
        .light_line_style(TRANSPARENT)
        .draw()?;
    for (i, engine) in engines.iter().enumerate() {
        let colour = COLOURS[i % COLOURS.len()];
        let mut points: Vec<(f64, f64)> = passed
            .iter()
            .filter(|r| r.engine == *engine)
            .map(|r| (r.threads as f64, r.commits_per_s.max(1.0)))
            .collect();
        points.sort_by(|a, b| a.0.total_cmp(&b.0));
        chart.draw_series(LineSeries::new(points.clone(), colour.stroke_width(2)))?;
        chart.draw_series(points.into_iter().map(|p| Circle::new(p, 3, colour.filled())))?;
        let y = 70 + 26 * i as i32;
        legend_area.draw(&PathElement::new(vec![(8, y), (34, y)], colour.stroke_width(3)))?;
        legend_area.draw(&Circle::new((21, y), 3, colour.filled()))?;
        legend_area.draw(&Text::new(engine.to_string(), (42, y - 8), ("sans-serif", 16)))?;
    }
    root.present()?;
    Ok(())
}

/// 1, 2, 5, 10, 20, 50, … within `[lo, hi]`.
fn one_two_five(lo: f64, hi: f64) -> Vec<f64> {
    let mut ticks = Vec::new();
    let mut decade = 10f64.powf(lo.max(1e-9).log10().floor());
    while decade <= hi {
        for step in [1.0, 2.0, 5.0] {
            let t = decade * step;
            if t >= lo && t <= hi {
                ticks.push(t);
            }
        }
        decade *= 10.0;
    }
    ticks
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

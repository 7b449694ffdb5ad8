//! `cargo xtask report`: turn criterion's output into the tables and plots of
//! docs/benchmarks.md — a markdown table per group (median, 95 % interval, throughput,
//! ratio to the pipe baseline) and an SVG per group (throughput against message size on
//! log-log axes, one line per transport; or a bar per transport for groups without sizes).

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use plotters::prelude::*;
use serde::Deserialize;

#[derive(Deserialize)]
struct BenchmarkJson {
    group_id: String,
    function_id: Option<String>,
    value_str: Option<String>,
    throughput: Option<Throughput>,
}

#[derive(Deserialize)]
enum Throughput {
    Bytes(u64),
    Elements(u64),
    #[serde(other)]
    Other,
}

#[derive(Deserialize)]
struct Estimate {
    point_estimate: f64,
    confidence_interval: Interval,
}

#[derive(Deserialize)]
struct Interval {
    lower_bound: f64,
    upper_bound: f64,
}

#[derive(Deserialize)]
struct EstimatesJson {
    median: Estimate,
}

/// One measured benchmark id.
struct Point {
    transport: String,
    size_label: String,
    bytes: Option<u64>,
    elements: Option<u64>,
    median_ns: f64,
    low_ns: f64,
    high_ns: f64,
}

fn find_benchmarks(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for e in entries.flatten() {
        let p = e.path();
        if p.is_dir() {
            if p.file_name().is_some_and(|n| n == "new") && p.join("benchmark.json").exists() {
                out.push(p);
            } else if p.file_name().is_none_or(|n| n != "report") {
                find_benchmarks(&p, out);
            }
        }
    }
}

fn load(criterion_dir: &Path) -> Result<BTreeMap<String, Vec<Point>>, String> {
    let mut dirs = Vec::new();
    find_benchmarks(criterion_dir, &mut dirs);
    if dirs.is_empty() {
        return Err(format!(
            "no criterion results under {} (run `cargo bench` first)",
            criterion_dir.display()
        ));
    }
    let mut groups: BTreeMap<String, Vec<Point>> = BTreeMap::new();
    for d in dirs {
        let read = |f: &str| {
            std::fs::read_to_string(d.join(f)).map_err(|e| format!("{}: {e}", d.join(f).display()))
        };
        let b: BenchmarkJson =
            serde_json::from_str(&read("benchmark.json")?).map_err(|e| e.to_string())?;
        let est: EstimatesJson =
            serde_json::from_str(&read("estimates.json")?).map_err(|e| e.to_string())?;
        let (bytes, elements) = match b.throughput {
            Some(Throughput::Bytes(n)) => (Some(n), None),
            Some(Throughput::Elements(n)) => (None, Some(n)),
            _ => (None, None),
        };
        groups.entry(b.group_id).or_default().push(Point {
            transport: b.function_id.unwrap_or_default(),
            size_label: b.value_str.unwrap_or_default(),
            bytes,
            elements,
            median_ns: est.median.point_estimate,
            low_ns: est.median.confidence_interval.lower_bound,
            high_ns: est.median.confidence_interval.upper_bound,
        });
    }
    for points in groups.values_mut() {
        points.sort_by(|a, b| {
            (a.bytes.unwrap_or(0), &a.transport).cmp(&(b.bytes.unwrap_or(0), &b.transport))
        });
    }
    Ok(groups)
}

/// An axis label in the units of the bench ids (`8B`, `64KiB`, `1MiB`).
fn axis_bytes(x: f64) -> String {
    const UNITS: [&str; 4] = ["B", "KiB", "MiB", "GiB"];
    let (mut v, mut unit) = (x, 0);
    while v >= 1024.0 && unit + 1 < UNITS.len() {
        v /= 1024.0;
        unit += 1;
    }
    format!("{v:.0}{}", UNITS[unit])
}

fn time(ns: f64) -> String {
    match ns {
        n if n >= 1e9 => format!("{:.2} s", n / 1e9),
        n if n >= 1e6 => format!("{:.2} ms", n / 1e6),
        n if n >= 1e3 => format!("{:.2} us", n / 1e3),
        n => format!("{n:.1} ns"),
    }
}

fn rate(p: &Point) -> String {
    let secs = p.median_ns / 1e9;
    match (p.bytes, p.elements) {
        (Some(b), _) => {
            let bps = b as f64 / secs;
            if bps >= 1e9 {
                format!("{:.2} GB/s", bps / 1e9)
            } else {
                format!("{:.1} MB/s", bps / 1e6)
            }
        }
        (_, Some(n)) => format!("{:.2} M/s", n as f64 / secs / 1e6),
        _ => "-".into(),
    }
}

fn table(group: &str, points: &[Point]) -> String {
    let mut s = format!(
        "### {group}\n\n| transport | size | median | 95 % interval | throughput | vs pipe |\n|---|---|---:|---:|---:|---:|\n"
    );
    for p in points {
        let pipe = points
            .iter()
            .find(|q| q.transport == "pipe" && q.size_label == p.size_label);
        let ratio = match pipe {
            Some(q) if p.transport != "pipe" && p.median_ns <= q.median_ns => {
                format!("{:.1}x faster", q.median_ns / p.median_ns)
            }
            Some(q) if p.transport != "pipe" => format!("{:.1}x slower", p.median_ns / q.median_ns),
            _ => "-".into(),
        };
        let _ = writeln!(
            s,
            "| {} | {} | {} | {} – {} | {} | {} |",
            p.transport,
            p.size_label,
            time(p.median_ns),
            time(p.low_ns),
            time(p.high_ns),
            rate(p),
            ratio
        );
    }
    s
}

const COLORS: [RGBColor; 8] = [
    RGBColor(31, 119, 180),
    RGBColor(255, 127, 14),
    RGBColor(44, 160, 44),
    RGBColor(214, 39, 40),
    RGBColor(148, 103, 189),
    RGBColor(140, 86, 75),
    RGBColor(227, 119, 194),
    RGBColor(127, 127, 127),
];

fn plot(group: &str, points: &[Point], out: &Path) -> Result<(), String> {
    let err = |e: &dyn std::fmt::Display| format!("plot {group}: {e}");
    let root = SVGBackend::new(out, (900, 540)).into_drawing_area();
    root.fill(&WHITE).map_err(|e| err(&e))?;
    let mut transports: Vec<&str> = points.iter().map(|p| p.transport.as_str()).collect();
    transports.dedup();
    transports.sort();
    transports.dedup();
    let sized = points.iter().all(|p| p.bytes.is_some())
        && points.iter().any(|p| p.bytes != points[0].bytes);
    if sized {
        // Throughput against message size, log-log, one line per transport.
        let bps = |p: &Point| p.bytes.unwrap_or(1) as f64 / (p.median_ns / 1e9);
        let (xmin, xmax) = points.iter().fold((f64::MAX, 0f64), |(lo, hi), p| {
            let x = p.bytes.unwrap_or(1) as f64;
            (lo.min(x), hi.max(x))
        });
        let (ymin, ymax) = points.iter().fold((f64::MAX, 0f64), |(lo, hi), p| {
            (lo.min(bps(p)), hi.max(bps(p)))
        });
        let mut chart = ChartBuilder::on(&root)
            .caption(
                format!("{group}: throughput vs message size"),
                ("sans-serif", 22),
            )
            .margin(12)
            .x_label_area_size(40)
            .y_label_area_size(70)
            .build_cartesian_2d(
                (xmin * 0.8..xmax * 1.25).log_scale(),
                (ymin * 0.5..ymax * 2.0).log_scale(),
            )
            .map_err(|e| err(&e))?;
        chart
            .configure_mesh()
            .x_desc("message size (bytes)")
            .y_desc("bytes / second")
            .x_label_formatter(&|x| axis_bytes(*x))
            .y_label_formatter(&|y| format!("{:.0e}", y))
            .draw()
            .map_err(|e| err(&e))?;
        for (i, t) in transports.iter().enumerate() {
            let color = COLORS[i % COLORS.len()];
            let series: Vec<(f64, f64)> = points
                .iter()
                .filter(|p| p.transport == *t)
                .map(|p| (p.bytes.unwrap_or(1) as f64, bps(p)))
                .collect();
            chart
                .draw_series(LineSeries::new(series.clone(), color.stroke_width(2)))
                .map_err(|e| err(&e))?
                .label(*t)
                .legend(move |(x, y)| {
                    PathElement::new(vec![(x, y), (x + 20, y)], color.stroke_width(2))
                });
            chart
                .draw_series(
                    series
                        .into_iter()
                        .map(|xy| Circle::new(xy, 3, color.filled())),
                )
                .map_err(|e| err(&e))?;
        }
        chart
            .configure_series_labels()
            .background_style(WHITE.mix(0.8))
            .border_style(BLACK)
            .position(SeriesLabelPosition::UpperLeft)
            .draw()
            .map_err(|e| err(&e))?;
    } else {
        // One bar per id: the median time, log scale (lower is better).
        let labels: Vec<String> = points
            .iter()
            .map(|p| format!("{} {}", p.transport, p.size_label))
            .collect();
        let (ymin, ymax) = points.iter().fold((f64::MAX, 0f64), |(lo, hi), p| {
            (lo.min(p.median_ns), hi.max(p.median_ns))
        });
        let n = points.len();
        let mut chart = ChartBuilder::on(&root)
            .caption(
                format!("{group}: median time (lower is better)"),
                ("sans-serif", 22),
            )
            .margin(12)
            .x_label_area_size(40)
            .y_label_area_size(230)
            .build_cartesian_2d((ymin * 0.5..ymax * 2.0).log_scale(), -0.5..(n as f64 - 0.5))
            .map_err(|e| err(&e))?;
        chart
            .configure_mesh()
            .disable_y_mesh()
            .x_desc("nanoseconds")
            .x_label_formatter(&|x| time(*x))
            .y_labels(points.len())
            .y_label_formatter(&|y| {
                let i = y.round();
                if (y - i).abs() < 0.05 && i >= 0.0 {
                    labels.get(i as usize).cloned().unwrap_or_default()
                } else {
                    String::new()
                }
            })
            .draw()
            .map_err(|e| err(&e))?;
        chart
            .draw_series(points.iter().enumerate().map(|(i, p)| {
                let color = COLORS[transports
                    .iter()
                    .position(|t| *t == p.transport)
                    .unwrap_or(0)
                    % COLORS.len()];
                let y = i as f64;
                Rectangle::new(
                    [(ymin * 0.5, y - 0.35), (p.median_ns, y + 0.35)],
                    color.filled(),
                )
            }))
            .map_err(|e| err(&e))?;
    }
    root.present().map_err(|e| err(&e))?;
    Ok(())
}

/// Print the markdown tables and write one SVG per group into `out_dir`.
pub(crate) fn run(criterion_dir: &Path, out_dir: &Path) -> Result<(), String> {
    let groups = load(criterion_dir)?;
    std::fs::create_dir_all(out_dir).map_err(|e| format!("{}: {e}", out_dir.display()))?;
    for (group, points) in &groups {
        println!("{}", table(group, points));
        let svg = out_dir.join(format!("{group}.svg"));
        plot(group, points, &svg)?;
        println!("![{group}]({})\n", svg.display());
    }
    Ok(())
}

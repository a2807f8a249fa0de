//! The reports of a run: the terminal table, Markdown, and JSON.

use std::fmt::Write as _;

use procwire_bench::cases::format_size;
use procwire_bench::Technique;
use serde_json::{json, Value};

use super::{is_latency, Outcome, Run};

/// `12.3 µs`, `45 ns`.
fn time(ns: f64) -> String {
    match ns {
        n if n >= 1e6 => format!("{:.2} ms", n / 1e6),
        n if n >= 1e3 => format!("{:.2} µs", n / 1e3),
        n => format!("{n:.1} ns"),
    }
}

/// `1.23 GiB/s`, `456 MiB/s`.
fn rate(bytes_per_s: f64) -> String {
    let mib = bytes_per_s / (1u64 << 20) as f64;
    if mib >= 1024.0 {
        format!("{:.2} GiB/s", mib / 1024.0)
    } else {
        format!("{mib:.1} MiB/s")
    }
}

/// One row's cells: case, size, median, p99, spread, ratio.
fn cells(run: &Run, o: &Outcome) -> [String; 6] {
    let (lo, hi) = o.spread();
    let (median, p99, spread) = if is_latency(o) {
        (
            time(o.median()),
            time(o.p99()),
            format!("{} – {}", time(lo), time(hi)),
        )
    } else {
        // The slow tail of the time is the low tail of the rate.
        (
            rate(o.rate(o.median())),
            rate(o.rate(o.p99())),
            format!("{} – {}", rate(o.rate(hi)), rate(o.rate(lo))),
        )
    };
    let size = if o.case.size == 0 {
        "–".to_owned()
    } else {
        format_size(o.case.size)
    };
    let ratio = run.ratio(o).map_or("–".to_owned(), |r| format!("×{r:.2}"));
    let name = if o.case.raw {
        format!("{} (floor)", o.case.name)
    } else {
        o.case.name.to_owned()
    };
    [name, size, median, p99, spread, ratio]
}

/// The outcomes of `technique`, latency first.
fn sections(run: &Run) -> Vec<(Technique, bool, Vec<&Outcome>)> {
    let mut out = Vec::new();
    for technique in Technique::ALL {
        for latency in [true, false] {
            let rows: Vec<&Outcome> = run
                .outcomes
                .iter()
                .filter(|o| o.case.technique == technique && is_latency(o) == latency)
                .collect();
            if !rows.is_empty() {
                out.push((technique, latency, rows));
            }
        }
    }
    out
}

const HEADERS: [&str; 6] = [
    "case",
    "size",
    "median",
    "p99",
    "spread of medians",
    "ratio",
];

fn heading(technique: Technique, latency: bool) -> String {
    if latency && technique == Technique::Sync {
        format!("{technique}: latency (one round trip; a lock and unlock for mutexes)")
    } else if latency {
        format!("{technique}: latency (one round trip)")
    } else {
        format!("{technique}: throughput (one way)")
    }
}

fn header(run: &Run) -> String {
    format!(
        "machine: {}\nCPUs: {}\nrepetitions: {}\nratio: procwire's time per round trip or per byte over the floor's (×1.00 is the floor)\n",
        run.machine,
        run.pinning.describe(),
        run.reps
    )
}

/// The table for the terminal.
pub(crate) fn table(run: &Run) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "\n{}", header(run));
    for (technique, latency, rows) in sections(run) {
        let rows: Vec<[String; 6]> = rows.iter().map(|o| cells(run, o)).collect();
        let mut widths = HEADERS.map(|h| h.chars().count());
        for row in &rows {
            for (w, cell) in widths.iter_mut().zip(row) {
                *w = (*w).max(cell.chars().count());
            }
        }
        let _ = writeln!(out, "{}", heading(technique, latency));
        let line = |cells: &[&str]| {
            let mut s = String::from(" ");
            for (i, (cell, w)) in cells.iter().zip(widths).enumerate() {
                let pad = w - cell.chars().count();
                if i == 0 {
                    let _ = write!(s, " {cell}{}", " ".repeat(pad));
                } else {
                    let _ = write!(s, "  {}{cell}", " ".repeat(pad));
                }
            }
            s
        };
        let _ = writeln!(out, "{}", line(&HEADERS));
        for row in &rows {
            let row: Vec<&str> = row.iter().map(String::as_str).collect();
            let _ = writeln!(out, "{}", line(&row));
        }
        out.push('\n');
    }
    out
}

/// The tables as Markdown, with the machine and the command that made them.
pub(crate) fn markdown(run: &Run) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "Made by `{}` on {}; CPUs {}; {} repetitions of each case. The ratio is procwire's \
         time per round trip (or per byte) over the floor's: ×1.00 is the raw primitive.\n",
        run.command,
        run.machine,
        run.pinning.describe(),
        run.reps
    );
    for (technique, latency, rows) in sections(run) {
        let _ = writeln!(out, "### {}\n", heading(technique, latency));
        let _ = writeln!(out, "| {} |", HEADERS.join(" | "));
        let _ = writeln!(out, "|{}", " --- |".repeat(HEADERS.len()));
        for o in rows {
            let _ = writeln!(out, "| {} |", cells(run, o).join(" | "));
        }
        out.push('\n');
    }
    out
}

/// One object per case.
pub(crate) fn json(run: &Run) -> Value {
    let cases: Vec<Value> = run
        .outcomes
        .iter()
        .map(|o| {
            let (lo, hi) = o.spread();
            let mut v = json!({
                "technique": o.case.technique.name(),
                "measure": o.case.measure.name(),
                "case": o.case.name,
                "raw": o.case.raw,
                "size": o.case.size,
                "placement": run.pinning.placement.to_string(),
                "placement_detail": run.pinning.describe(),
                "reps": run.reps,
                "samples": o.samples.len(),
                "median_ns": o.median(),
                "p99_ns": o.p99(),
                "spread_ns": [lo, hi],
                "ratio": run.ratio(o),
                "machine": run.machine,
            });
            if !is_latency(o) {
                v["bytes_per_iteration"] = json!(o.bytes);
                v["median_bytes_per_s"] = json!(o.rate(o.median()));
                v["p99_bytes_per_s"] = json!(o.rate(o.p99()));
            }
            v
        })
        .collect();
    Value::Array(cases)
}

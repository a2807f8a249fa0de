//! `--plot`: latency and throughput by message size, each technique beside its floor,
//! drawn with plotters as SVG or PNG. The text is drawn with a TrueType font of the
//! system (DejaVu Sans or the first `.ttf` under /usr/share/fonts).

use std::error::Error;
use std::path::{Path, PathBuf};

use anyhow::{anyhow, bail, Context};
use plotters::coord::Shift;
use plotters::prelude::*;
use procwire_bench::cases::format_size;
use procwire_bench::Technique;

use super::{is_latency, Outcome, Run};

/// The image size in pixels.
const SIZE: (u32, u32) = (1200, 1000);

/// Refuses a plot path that is neither `.svg` nor `.png` (before the run, not after).
pub(crate) fn check_path(path: &Path) -> anyhow::Result<()> {
    match extension(path).as_deref() {
        Some("svg" | "png") => Ok(()),
        _ => bail!(
            "--plot {}: the file must end in .svg or .png",
            path.display()
        ),
    }
}

fn extension(path: &Path) -> Option<String> {
    path.extension()
        .map(|e| e.to_string_lossy().to_ascii_lowercase())
}

/// Draws the run into `path`.
pub(crate) fn draw(run: &Run, path: &Path) -> anyhow::Result<()> {
    register_font()?;
    let result = if extension(path).as_deref() == Some("png") {
        draw_on(BitMapBackend::new(path, SIZE).into_drawing_area(), run)
    } else {
        draw_on(SVGBackend::new(path, SIZE).into_drawing_area(), run)
    };
    result.map_err(|e| anyhow!("draw {}: {e}", path.display()))
}

/// Registers a system TrueType font as `sans-serif` (once).
fn register_font() -> anyhow::Result<()> {
    static DONE: std::sync::OnceLock<Result<(), String>> = std::sync::OnceLock::new();
    DONE.get_or_init(|| {
        let path = find_font().ok_or(
            "the plot needs a TrueType font and found none under /usr/share/fonts \
             (install fonts-dejavu-core)",
        )?;
        let bytes = std::fs::read(&path).map_err(|e| format!("read {}: {e}", path.display()))?;
        plotters::style::register_font("sans-serif", FontStyle::Normal, Box::leak(bytes.into()))
            .map_err(|_| format!("{} is not a usable font", path.display()))
    })
    .clone()
    .map_err(anyhow::Error::msg)
    .context("--plot")
}

fn find_font() -> Option<PathBuf> {
    let preferred = Path::new("/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf");
    if preferred.exists() {
        return Some(preferred.to_owned());
    }
    let mut dirs = vec![PathBuf::from("/usr/share/fonts")];
    while let Some(dir) = dirs.pop() {
        for entry in std::fs::read_dir(&dir).ok()?.flatten() {
            let path = entry.path();
            if path.is_dir() {
                dirs.push(path);
            } else if path.extension().is_some_and(|e| e == "ttf") {
                return Some(path);
            }
        }
    }
    None
}

/// The floors grey, procwire in its technique's colour.
fn colour(o: &Outcome) -> RGBColor {
    if o.case.raw {
        RGBColor(150, 150, 150)
    } else {
        technique_colour(o.case.technique)
    }
}

fn technique_colour(t: Technique) -> RGBColor {
    let i = Technique::ALL.iter().position(|&x| x == t).unwrap_or(0);
    [
        RGBColor(31, 119, 180),
        RGBColor(255, 127, 14),
        RGBColor(44, 160, 44),
        RGBColor(214, 39, 40),
        RGBColor(148, 103, 189),
        RGBColor(140, 86, 75),
    ][i]
}

fn short_label(o: &Outcome) -> String {
    let name = o
        .case
        .name
        .trim_start_matches("procwire ")
        .trim_end_matches(" (robust)");
    if o.case.raw {
        format!("{name} (floor)")
    } else {
        name.to_owned()
    }
}

fn draw_on<DB: DrawingBackend>(
    root: DrawingArea<DB, Shift>,
    run: &Run,
) -> Result<(), Box<dyn Error>>
where
    DB::ErrorType: 'static,
{
    root.fill(&WHITE)?;
    let (top, bottom) = root.split_vertically(SIZE.1 / 2);
    let title = format!(
        "procwire bench — CPUs {} — {}",
        run.pinning.describe(),
        run.machine
    );
    let top = top.titled(&title, ("sans-serif", 14))?;
    latency(&top, run)?;
    throughput(&bottom, run)?;
    root.present()?;
    Ok(())
}

fn latency<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    run: &Run,
) -> Result<(), Box<dyn Error>>
where
    DB::ErrorType: 'static,
{
    let rows: Vec<&Outcome> = run.outcomes.iter().filter(|o| is_latency(o)).collect();
    if rows.is_empty() {
        return Ok(());
    }
    let (lo, hi) = rows.iter().fold((f64::INFINITY, 0.0f64), |(lo, hi), o| {
        (lo.min(o.median()), hi.max(o.p99()))
    });
    let n = rows.len();
    let mut chart = ChartBuilder::on(area)
        .caption(
            "Latency: median of one round trip (a lock and unlock for mutexes), 64 B; bar = median, tick = p99; lower is better",
            ("sans-serif", 16),
        )
        .margin(10)
        .x_label_area_size(40)
        .y_label_area_size(70)
        .build_cartesian_2d(
            (0..n.saturating_sub(1).max(1)).into_segmented(),
            (lo / 2.0..hi * 2.0).log_scale(),
        )?;
    let labels: Vec<String> = rows.iter().map(|o| short_label(o)).collect();
    chart
        .configure_mesh()
        .disable_x_mesh()
        .x_labels(n)
        .x_label_style(("sans-serif", 11))
        .x_label_formatter(&|v| match v {
            SegmentValue::CenterOf(i) => labels.get(*i).cloned().unwrap_or_default(),
            _ => String::new(),
        })
        .y_desc("time (log scale)")
        .y_label_formatter(&|ns| time_label(*ns))
        .draw()?;
    chart.draw_series(rows.iter().enumerate().map(|(i, o)| {
        let mut bar = Rectangle::new(
            [
                (SegmentValue::Exact(i), lo / 2.0),
                (SegmentValue::Exact(i + 1), o.median()),
            ],
            colour(o).filled(),
        );
        bar.set_margin(0, 0, 12, 12);
        bar
    }))?;
    chart.draw_series(rows.iter().enumerate().map(|(i, o)| {
        PathElement::new(
            vec![
                (SegmentValue::CenterOf(i), o.median()),
                (SegmentValue::CenterOf(i), o.p99()),
            ],
            BLACK.stroke_width(2),
        )
    }))?;
    chart.draw_series(rows.iter().enumerate().map(|(i, o)| {
        Text::new(
            time_label(o.median()),
            (SegmentValue::CenterOf(i), o.median() * 1.08),
            ("sans-serif", 11),
        )
    }))?;
    Ok(())
}

fn time_label(ns: f64) -> String {
    match ns {
        n if n >= 1e6 => format!("{:.1} ms", n / 1e6),
        n if n >= 1e3 => format!("{:.1} µs", n / 1e3),
        n => format!("{n:.0} ns"),
    }
}

/// One line of the throughput chart: technique, case, floor or not, (size, MiB/s) points.
type Series<'a> = (Technique, &'a str, bool, Vec<(f64, f64)>);

fn throughput<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    run: &Run,
) -> Result<(), Box<dyn Error>>
where
    DB::ErrorType: 'static,
{
    let rows: Vec<&Outcome> = run.outcomes.iter().filter(|o| !is_latency(o)).collect();
    if rows.is_empty() {
        return Ok(());
    }
    let mib = |o: &Outcome| o.rate(o.median()) / f64::from(1u32 << 20);
    let (lo, hi) = rows.iter().fold((f64::INFINITY, 0.0f64), |(lo, hi), o| {
        (lo.min(mib(o)), hi.max(mib(o)))
    });
    let (smin, smax) = rows.iter().fold((f64::INFINITY, 0.0f64), |(a, b), o| {
        (a.min(o.case.size as f64), b.max(o.case.size as f64))
    });
    let mut sizes: Vec<f64> = rows.iter().map(|o| o.case.size as f64).collect();
    sizes.sort_by(f64::total_cmp);
    sizes.dedup();
    let mut chart = ChartBuilder::on(area)
        .caption(
            "Throughput by message size, one way (dashed: the floor); higher is better",
            ("sans-serif", 16),
        )
        .margin(10)
        .x_label_area_size(40)
        .y_label_area_size(70)
        .build_cartesian_2d(
            (smin / 1.5..smax * 1.5).log_scale().with_key_points(sizes),
            (lo / 2.0..hi * 2.0).log_scale(),
        )?;
    chart
        .configure_mesh()
        .x_desc("message size")
        .y_desc("MiB/s (log scale)")
        .x_label_formatter(&|s| format_size(*s as usize))
        .y_label_formatter(&|v| format!("{v:.0}"))
        .label_style(("sans-serif", 11))
        .draw()?;
    // One line per technique and case.
    let mut series: Vec<Series<'_>> = Vec::new();
    for o in &rows {
        let point = (o.case.size as f64, mib(o));
        match series
            .iter_mut()
            .find(|s| s.0 == o.case.technique && s.1 == o.case.name)
        {
            Some(s) => s.3.push(point),
            None => series.push((o.case.technique, o.case.name, o.case.raw, vec![point])),
        }
    }
    for (technique, name, raw, points) in series {
        let c = technique_colour(technique);
        let label = format!("{technique}: {name}{}", if raw { " (floor)" } else { "" });
        if raw {
            chart
                .draw_series(DashedLineSeries::new(
                    points.clone(),
                    6,
                    4,
                    c.stroke_width(2),
                ))?
                .label(label)
                .legend(move |(x, y)| {
                    PathElement::new(
                        vec![(x, y), (x + 8, y), (x + 12, y), (x + 20, y)],
                        c.stroke_width(2),
                    )
                });
            chart.draw_series(points.iter().map(|&p| Circle::new(p, 3, c.stroke_width(1))))?;
        } else {
            chart
                .draw_series(LineSeries::new(points.clone(), c.stroke_width(3)))?
                .label(label)
                .legend(move |(x, y)| {
                    PathElement::new(vec![(x, y), (x + 20, y)], c.stroke_width(3))
                });
            chart.draw_series(points.iter().map(|&p| Circle::new(p, 4, c.filled())))?;
        }
    }
    chart
        .configure_series_labels()
        .label_font(("sans-serif", 11))
        .background_style(WHITE.mix(0.8))
        .border_style(BLACK)
        .position(SeriesLabelPosition::LowerRight)
        .draw()?;
    Ok(())
}

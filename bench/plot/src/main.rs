//! `plot`: draws a line chart (PNG) from a CSV file, for the figures of `BENCHMARKS.md`.
//!
//! The CSV's first column is the x axis; every other column is one series, named by its
//! header. Empty cells are gaps. `scripts/bench` writes the CSV files (throughput against batch
//! size, RSS over a sustained run) and calls this once per figure:
//!
//! ```text
//! plot --input batch.csv --output batch.png --title "…" --x-label "events per request" \
//!      --y-label "events/s" --log-x
//! ```
//!
//! `--log-y` draws the y axis logarithmic too (costs per event that span orders of magnitude).

use anyhow::{Context, bail};
use clap::Parser;
use plotters::prelude::*;
use std::path::PathBuf;

/// Draw a line chart from a CSV file.
#[derive(Parser)]
#[command(name = "plot")]
struct Args {
    /// CSV: x, then one column per series, with a header row.
    #[arg(long)]
    input: PathBuf,
    /// The PNG to write.
    #[arg(long)]
    output: PathBuf,
    /// Chart title.
    #[arg(long, default_value = "")]
    title: String,
    /// Label of the x axis.
    #[arg(long, default_value = "")]
    x_label: String,
    /// Label of the y axis.
    #[arg(long, default_value = "")]
    y_label: String,
    /// Logarithmic x axis (for batch sizes).
    #[arg(long)]
    log_x: bool,
    /// Logarithmic y axis (for costs that span orders of magnitude).
    #[arg(long)]
    log_y: bool,
    /// Base of the logarithmic x axis: where its labelled ticks fall (2: 1, 2, 4, 8, …).
    #[arg(long, default_value_t = 10.0)]
    log_x_base: f64,
    /// Where the legend goes.
    #[arg(long, value_enum, default_value_t = Legend::UpperLeft)]
    legend: Legend,
    /// A horizontal reference line `VALUE=LABEL` (repeatable), e.g. an aim.
    #[arg(long = "hline")]
    hlines: Vec<String>,
    /// A TrueType font for the text; default: the first of the usual system fonts found.
    #[arg(long)]
    font: Option<PathBuf>,
    /// Image width and height in pixels.
    #[arg(long, default_value_t = 1100)]
    width: u32,
    #[arg(long, default_value_t = 650)]
    height: u32,
}

#[derive(Clone, Copy, clap::ValueEnum)]
enum Legend {
    UpperLeft,
    UpperRight,
    LowerLeft,
    LowerRight,
}

impl Legend {
    fn position(self) -> SeriesLabelPosition {
        match self {
            Legend::UpperLeft => SeriesLabelPosition::UpperLeft,
            Legend::UpperRight => SeriesLabelPosition::UpperRight,
            Legend::LowerLeft => SeriesLabelPosition::LowerLeft,
            Legend::LowerRight => SeriesLabelPosition::LowerRight,
        }
    }
}

/// Where Debian, Fedora, Arch and macOS keep a sans-serif TTF.
const FONT_CANDIDATES: &[&str] = &[
    "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf",
    "/usr/share/fonts/dejavu/DejaVuSans.ttf",
    "/usr/share/fonts/TTF/DejaVuSans.ttf",
    "/usr/share/fonts/truetype/liberation/LiberationSans-Regular.ttf",
    "/usr/share/fonts/liberation-sans/LiberationSans-Regular.ttf",
    "/Library/Fonts/Arial.ttf",
    "/System/Library/Fonts/Supplemental/Arial.ttf",
];

struct Table {
    x_name: String,
    series: Vec<(String, Vec<(f64, f64)>)>,
}

fn read_csv(path: &PathBuf) -> anyhow::Result<Table> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    let mut lines = text.lines().filter(|l| !l.trim().is_empty());
    let header: Vec<String> = lines
        .next()
        .with_context(|| format!("{}: empty file", path.display()))?
        .split(',')
        .map(|h| h.trim().to_string())
        .collect();
    if header.len() < 2 {
        bail!(
            "{}: need an x column and at least one series column",
            path.display()
        );
    }
    let mut series: Vec<(String, Vec<(f64, f64)>)> = header[1..]
        .iter()
        .map(|h| (h.clone(), Vec::new()))
        .collect();
    for (n, line) in lines.enumerate() {
        let cells: Vec<&str> = line.split(',').map(str::trim).collect();
        let x: f64 = cells[0].parse().with_context(|| {
            format!(
                "{}: line {}: x {:?} is not a number",
                path.display(),
                n + 2,
                cells[0]
            )
        })?;
        for (i, cell) in cells.iter().enumerate().skip(1) {
            if cell.is_empty() || i > series.len() {
                continue;
            }
            let y: f64 = cell.parse().with_context(|| {
                format!(
                    "{}: line {}: {:?} is not a number",
                    path.display(),
                    n + 2,
                    cell
                )
            })?;
            series[i - 1].1.push((x, y));
        }
    }
    Ok(Table {
        x_name: header[0].clone(),
        series,
    })
}

/// `1500000` → `1.5M`, `300000` → `300k`, `12.5` → `12.5`.
fn si(v: f64) -> String {
    let (scaled, suffix) = match v.abs() {
        a if a >= 1e6 => (v / 1e6, "M"),
        a if a >= 1e3 => (v / 1e3, "k"),
        _ => (v, ""),
    };
    let text = format!("{scaled:.2}");
    let text = text.trim_end_matches('0').trim_end_matches('.');
    format!("{text}{suffix}")
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let font_path = match &args.font {
        Some(p) => p.clone(),
        None => FONT_CANDIDATES
            .iter()
            .map(PathBuf::from)
            .find(|p| p.is_file())
            .context("no TrueType font found in the usual places; pass one with --font FILE.ttf")?,
    };
    let font_bytes: &'static [u8] = Box::leak(
        std::fs::read(&font_path)
            .with_context(|| format!("reading {}", font_path.display()))?
            .into_boxed_slice(),
    );
    plotters::style::register_font("sans-serif", FontStyle::Normal, font_bytes)
        .map_err(|_| anyhow::anyhow!("{} is not a TrueType font", font_path.display()))?;

    let table = read_csv(&args.input)?;
    let points = table.series.iter().flat_map(|s| s.1.iter());
    let (mut x_min, mut x_max, mut y_max) = (f64::MAX, f64::MIN, 0f64);
    let mut y_min_positive = f64::MAX;
    for &(x, y) in points {
        x_min = x_min.min(x);
        x_max = x_max.max(x);
        y_max = y_max.max(y);
        if y > 0.0 {
            y_min_positive = y_min_positive.min(y);
        }
    }
    let mut hlines = Vec::new();
    for h in &args.hlines {
        let (value, label) = h.split_once('=').unwrap_or((h, ""));
        let value: f64 = value
            .parse()
            .with_context(|| format!("--hline {h:?}: want VALUE=LABEL"))?;
        y_max = y_max.max(value);
        if value > 0.0 {
            y_min_positive = y_min_positive.min(value);
        }
        hlines.push((value, label.to_string()));
    }
    if x_min > x_max {
        bail!("{}: no data points", args.input.display());
    }
    if x_min == x_max {
        x_max = x_min + 1.0;
    }
    let y_top = if y_max > 0.0 { y_max * 1.12 } else { 1.0 };

    let root = BitMapBackend::new(&args.output, (args.width, args.height)).into_drawing_area();
    root.fill(&WHITE)?;
    let x_label = if args.x_label.is_empty() {
        table.x_name.clone()
    } else {
        args.x_label.clone()
    };
    let colors = [
        RGBColor(31, 119, 180),
        RGBColor(214, 39, 40),
        RGBColor(44, 160, 44),
        RGBColor(255, 127, 14),
        RGBColor(148, 103, 189),
        RGBColor(140, 86, 75),
    ];

    macro_rules! draw {
        ($chart:expr) => {{
            let mut chart = $chart;
            chart
                .configure_mesh()
                .x_desc(x_label.as_str())
                .y_desc(args.y_label.as_str())
                .y_label_formatter(&|v: &f64| si(*v))
                .x_label_formatter(&|v: &f64| si(*v))
                .label_style(("sans-serif", 16))
                .axis_desc_style(("sans-serif", 18))
                .light_line_style(RGBColor(235, 235, 235))
                .draw()?;
            for (value, label) in &hlines {
                let style = ShapeStyle::from(&RGBColor(120, 120, 120)).stroke_width(1);
                chart
                    .draw_series(LineSeries::new([(x_min, *value), (x_max, *value)], style))?
                    .label(label.clone())
                    .legend(move |(x, y)| PathElement::new([(x, y), (x + 20, y)], style));
            }
            for (i, (name, pts)) in table.series.iter().enumerate() {
                let color = colors[i % colors.len()];
                let style = ShapeStyle::from(&color).stroke_width(2);
                chart
                    .draw_series(LineSeries::new(pts.iter().copied(), style))?
                    .label(name.clone())
                    .legend(move |(x, y)| PathElement::new([(x, y), (x + 20, y)], style));
                if pts.len() <= 40 {
                    chart.draw_series(pts.iter().map(|&p| Circle::new(p, 4, color.filled())))?;
                }
            }
            chart
                .configure_series_labels()
                .position(args.legend.position())
                .label_font(("sans-serif", 16))
                .background_style(WHITE.mix(0.85))
                .border_style(RGBColor(200, 200, 200))
                .draw()?;
        }};
    }

    let mut builder = ChartBuilder::on(&root);
    builder
        .caption(args.title.as_str(), ("sans-serif", 24))
        .margin(16)
        .x_label_area_size(50)
        .y_label_area_size(80);
    if args.log_x && x_min <= 0.0 {
        bail!("--log-x needs positive x values");
    }
    if args.log_y && table.series.iter().flat_map(|s| s.1.iter()).any(|&(_, y)| y <= 0.0) {
        bail!("--log-y needs positive y values");
    }
    if args.log_x_base <= 1.0 {
        bail!("--log-x-base must be greater than 1");
    }
    let x_log = (x_min * 0.8..x_max * 1.25).log_scale().base(args.log_x_base);
    let y_log = (y_min_positive / 1.5..y_max * 1.5).log_scale();
    match (args.log_x, args.log_y) {
        (true, true) => draw!(builder.build_cartesian_2d(x_log, y_log)?),
        (true, false) => draw!(builder.build_cartesian_2d(x_log, 0f64..y_top)?),
        (false, true) => draw!(builder.build_cartesian_2d(x_min..x_max, y_log)?),
        (false, false) => draw!(builder.build_cartesian_2d(x_min..x_max, 0f64..y_top)?),
    }
    root.present()
        .with_context(|| format!("writing {}", args.output.display()))?;
    eprintln!("wrote {}", args.output.display());
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::si;

    #[test]
    fn si_suffixes() {
        assert_eq!(si(1_500_000.0), "1.5M");
        assert_eq!(si(300_000.0), "300k");
        assert_eq!(si(12.5), "12.5");
        assert_eq!(si(0.0), "0");
    }
}

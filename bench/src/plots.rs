//! The report's PNG plots (plotters, bitmap backend, a TrueType font read at run time).

use crate::{num, stacks};
use anyhow::{anyhow, Context, Result};
use plotters::coord::ranged1d::SegmentValue;
use plotters::prelude::*;
use serde_json::Value;
use std::path::Path;

const SIZE: (u32, u32) = (900, 520);
const STAGES: [(&str, &str); 4] =
    [("endpoint", "trailing silence"), ("stt", "speech-to-text"), ("intent", "intents"), ("publish", "MQTT to broker")];
/// Picovoice Rhino's published barista accuracy (averaged over noise), the line to beat.
pub const RHINO_BARISTA_PCT: f64 = 97.6;

pub fn register_font() -> Result<()> {
    let path =
        std::env::var("SOTTO_BENCH_FONT").unwrap_or_else(|_| "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf".into());
    let bytes = std::fs::read(&path)
        .with_context(|| format!("reading the plot font {path} (install fonts-dejavu-core or set SOTTO_BENCH_FONT)"))?;
    // plotters keeps registered fonts for the life of the process.
    let bytes: &'static [u8] = Box::leak(bytes.into_boxed_slice());
    plotters::style::register_font("sans-serif", FontStyle::Normal, bytes)
        .map_err(|_| anyhow!("{path}: not a usable TrueType font (SOTTO_BENCH_FONT)"))
}

/// Every plot; returns the file names written (a plot without data is skipped).
pub fn all(run: &Value, dir: &Path) -> Result<Vec<String>> {
    let mut written = Vec::new();
    let mut emit = |name: &str, made: Result<bool>| -> Result<()> {
        if made.with_context(|| format!("drawing {name}"))? {
            written.push(name.to_string());
        }
        Ok(())
    };
    emit("latency_stages.png", stage_plot(run, &dir.join("latency_stages.png")))?;
    emit("latency_distribution.png", distribution_plot(run, &dir.join("latency_distribution.png")))?;
    emit("cpu.png", cpu_plot(run, &dir.join("cpu.png"), false))?;
    emit("cpu_serving.png", cpu_plot(run, &dir.join("cpu_serving.png"), true))?;
    emit("rss.png", rss_plot(run, &dir.join("rss.png")))?;
    emit("barista_snr.png", barista_plot(run, &dir.join("barista_snr.png")))?;
    Ok(written)
}

/// A bar per label, each bar stacked from named segments; one legend entry per segment name.
struct Bars {
    title: String,
    y_desc: String,
    bars: Vec<(String, Vec<(String, f64)>)>,
    /// A horizontal goal line: (value, label).
    goal: Option<(f64, String)>,
}

fn draw_bars(path: &Path, b: &Bars) -> Result<bool> {
    if b.bars.is_empty() {
        return Ok(false);
    }
    let total = |segs: &[(String, f64)]| segs.iter().map(|(_, v)| v).sum::<f64>();
    let top = b.bars.iter().map(|(_, s)| total(s)).chain(b.goal.iter().map(|g| g.0)).fold(0.0, f64::max) * 1.15 + 1e-9;
    let mut names: Vec<String> = Vec::new();
    for (_, segs) in &b.bars {
        for (n, _) in segs {
            if !names.contains(n) {
                names.push(n.clone());
            }
        }
    }
    let root = BitMapBackend::new(path, SIZE).into_drawing_area();
    root.fill(&WHITE)?;
    let n = b.bars.len();
    let mut chart = ChartBuilder::on(&root)
        .caption(&b.title, ("sans-serif", 22))
        .margin(12)
        .x_label_area_size(40)
        .y_label_area_size(70)
        .build_cartesian_2d((0..n).into_segmented(), 0f64..top)?;
    let labels: Vec<String> = b.bars.iter().map(|(l, _)| l.clone()).collect();
    chart
        .configure_mesh()
        .disable_x_mesh()
        .x_labels(n)
        .x_label_formatter(&|v| match v {
            SegmentValue::CenterOf(i) => labels.get(*i).cloned().unwrap_or_default(),
            _ => String::new(),
        })
        .y_desc(b.y_desc.as_str())
        .label_style(("sans-serif", 14))
        .draw()?;
    for (k, name) in names.iter().enumerate() {
        let color = Palette99::pick(k).mix(0.9);
        let mut rects = Vec::new();
        for (i, (_, segs)) in b.bars.iter().enumerate() {
            let below: f64 = segs.iter().take_while(|(s, _)| s != name).map(|(_, v)| v).sum();
            if let Some((_, v)) = segs.iter().find(|(s, _)| s == name) {
                let mut r = Rectangle::new(
                    [(SegmentValue::Exact(i), below), (SegmentValue::Exact(i + 1), below + v)],
                    color.filled(),
                );
                r.set_margin(0, 0, 18, 18);
                rects.push(r);
            }
        }
        chart
            .draw_series(rects)?
            .label(name.as_str())
            .legend(move |(x, y)| Rectangle::new([(x, y - 5), (x + 12, y + 5)], color.filled()));
    }
    if let Some((value, label)) = &b.goal {
        chart
            .draw_series(LineSeries::new(
                [(SegmentValue::Exact(0), *value), (SegmentValue::Exact(n), *value)],
                RED.stroke_width(2),
            ))?
            .label(label.as_str())
            .legend(|(x, y)| PathElement::new([(x, y), (x + 14, y)], RED.stroke_width(2)));
    }
    chart
        .configure_series_labels()
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK)
        .label_font(("sans-serif", 14))
        .draw()?;
    root.present()?;
    Ok(true)
}

fn stage_plot(run: &Value, path: &Path) -> Result<bool> {
    let bars = stacks(run)
        .into_iter()
        .map(|(label, s)| {
            let segs = STAGES
                .iter()
                .filter_map(|(k, name)| num(&s["stage_p50_ms"][*k]).map(|v| (name.to_string(), v.max(0.0))))
                .collect();
            (label, segs)
        })
        .collect();
    draw_bars(
        path,
        &Bars {
            title: "End of speech → action, p50 per stage".into(),
            y_desc: "milliseconds (p50 of each stage)".into(),
            bars,
            goal: None,
        },
    )
}

/// Per-utterance end of speech (endpoint decision) → action, as an empirical CDF per stack.
fn distribution_plot(run: &Value, path: &Path) -> Result<bool> {
    let mut series: Vec<(String, Vec<f64>)> = Vec::new();
    let collect = |utts: &Value, pick: &dyn Fn(&Value) -> bool| -> Vec<f64> {
        let mut v: Vec<f64> = utts
            .as_array()
            .map(|a| a.iter().filter(|u| pick(u)).filter_map(|u| num(&u["end_of_speech_to_action_ms"])).collect())
            .unwrap_or_default();
        v.sort_by(f64::total_cmp);
        v
    };
    let sotto = &run["sotto"]["utterances"];
    series.push(("Sotto (grammar)".into(), collect(sotto, &|u| u["resolver"] == "grammar")));
    series.push(("Sotto (LM fallback)".into(), collect(sotto, &|u| u["resolver"] == "lm")));
    // Peers on the files of Sotto's grammar run (their list also holds the LM set).
    let grammar_files: Vec<&Value> =
        sotto.as_array().into_iter().flatten().filter(|u| u["set"] != "lm").map(|u| &u["file"]).collect();
    for p in run["peers"].as_array().into_iter().flatten() {
        let pick = |u: &Value| u["kind"] == "command" && grammar_files.contains(&&u["file"]);
        series.push((p["peer"].as_str().unwrap_or("?").to_string(), collect(&p["utterances"], &pick)));
    }
    series.retain(|(_, v)| !v.is_empty());
    if series.is_empty() {
        return Ok(false);
    }
    let max = series.iter().flat_map(|(_, v)| v.last()).fold(0.0, |a: f64, b| a.max(*b)) * 1.05 + 1.0;
    let root = BitMapBackend::new(path, SIZE).into_drawing_area();
    root.fill(&WHITE)?;
    let mut chart = ChartBuilder::on(&root)
        .caption("End of speech → action received on the broker (per utterance)", ("sans-serif", 22))
        .margin(12)
        .x_label_area_size(45)
        .y_label_area_size(60)
        .build_cartesian_2d((1f64..max).log_scale(), 0f64..1.0)?;
    chart
        .configure_mesh()
        .x_desc("milliseconds after the endpoint decision (log scale)")
        .y_desc("fraction of utterances")
        .label_style(("sans-serif", 14))
        .draw()?;
    for (k, (name, v)) in series.iter().enumerate() {
        let color = Palette99::pick(k);
        let n = v.len() as f64;
        let pts: Vec<(f64, f64)> = v.iter().enumerate().map(|(i, x)| (x.max(1.0), (i + 1) as f64 / n)).collect();
        chart
            .draw_series(LineSeries::new(pts, color.stroke_width(2)))?
            .label(format!("{name} (n = {})", v.len()))
            .legend(move |(x, y)| PathElement::new([(x, y), (x + 14, y)], color.stroke_width(2)));
    }
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::LowerRight)
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK)
        .label_font(("sans-serif", 14))
        .draw()?;
    root.present()?;
    Ok(true)
}

/// Idle (`serving = false`) or serving: separate plots, serving is two orders of magnitude above idle.
fn cpu_plot(run: &Value, path: &Path, serving: bool) -> Result<bool> {
    let pct = |v: &Value| num(v).map(|x| x * 100.0);
    let bar = |label: &str, v: Option<f64>| v.map(|v| (label.to_string(), vec![(label.to_string(), v)]));
    let key = if serving { "serving_cpu_s_per_audio_s" } else { "idle_cpu_s_per_audio_s" };
    let mut bars = vec![bar("Sotto", pct(if serving { &run["sotto"][key] } else { &run["idle"][key] }))];
    if !serving {
        if let Some(py) = run["wake"]["throughput_python_oww"].as_array().and_then(|a| a.first()) {
            bars.push(bar("Python oWW alone", pct(&py["rtf"])));
        }
    }
    for (name, p) in run["peer_summary"].as_object().into_iter().flatten() {
        bars.push(bar(name, pct(&p[key])));
    }
    let (title, goal) = if serving {
        ("CPU while serving commands (per audio second)", None)
    } else {
        ("CPU while listening for the wake word (per audio second)", Some((5.0, "goal: 5% of a core".to_string())))
    };
    draw_bars(
        path,
        &Bars { title: title.into(), y_desc: "% of one core".into(), bars: bars.into_iter().flatten().collect(), goal },
    )
}

fn rss_plot(run: &Value, path: &Path) -> Result<bool> {
    let segments = |v: &Value| -> Vec<(String, f64)> {
        v.as_object()
            .map(|o| {
                o.iter().filter(|(k, _)| *k != "total").filter_map(|(k, v)| num(v).map(|x| (k.clone(), x))).collect()
            })
            .unwrap_or_default()
    };
    let mut bars = vec![("Sotto (default)".to_string(), segments(&run["sotto"]["peak_rss_mib"]))];
    bars.push(("Sotto (LM enabled)".to_string(), segments(&run["sotto"]["peak_rss_mib_lm_enabled"])));
    for (name, p) in run["peer_summary"].as_object().cloned().unwrap_or_default() {
        bars.push((name, segments(&p["peak_rss_mib"])));
    }
    bars.retain(|(_, s)| !s.is_empty());
    draw_bars(
        path,
        &Bars {
            title: "Peak RSS per process".into(),
            y_desc: "MiB".into(),
            bars,
            goal: Some((700.0 / 1.048_576, "goal: 700 MB (667.6 MiB) in total".into())),
        },
    )
}

fn barista_plot(run: &Value, path: &Path) -> Result<bool> {
    let Some(levels) = run["barista"]["levels"].as_object() else { return Ok(false) };
    // "clean" sits to the right of the loudest noise level.
    const CLEAN_X: f64 = 30.0;
    let mut pts: Vec<(f64, f64)> = levels
        .iter()
        .filter_map(|(k, v)| {
            let x = if k == "clean" { CLEAN_X } else { k.parse().ok()? };
            Some((x, num(&v["accept_pct"])?))
        })
        .collect();
    if pts.is_empty() {
        return Ok(false);
    }
    pts.sort_by(|a, b| a.0.total_cmp(&b.0));
    let low = pts.iter().map(|p| p.1).fold(RHINO_BARISTA_PCT, f64::min).floor() - 3.0;
    let root = BitMapBackend::new(path, SIZE).into_drawing_area();
    root.fill(&WHITE)?;
    let mut chart = ChartBuilder::on(&root)
        .caption("Barista speech-to-intent: accepted commands vs kitchen-noise SNR", ("sans-serif", 22))
        .margin(12)
        .x_label_area_size(45)
        .y_label_area_size(60)
        .build_cartesian_2d(4f64..32.0, low.max(0.0)..100.5)?;
    chart
        .configure_mesh()
        .x_desc("SNR dB (clean at the right)")
        .y_desc("accepted %")
        .x_label_formatter(&|x| if (*x - CLEAN_X).abs() < 0.5 { "clean".into() } else { format!("{x:.0}") })
        .label_style(("sans-serif", 14))
        .draw()?;
    chart
        .draw_series(LineSeries::new(pts.clone(), BLUE.stroke_width(2)))?
        .label("Sotto (Whisper base + grammar), measured")
        .legend(|(x, y)| PathElement::new([(x, y), (x + 14, y)], BLUE.stroke_width(2)));
    chart.draw_series(pts.iter().map(|p| Circle::new(*p, 4, BLUE.filled())))?;
    chart
        .draw_series(LineSeries::new([(4.0, RHINO_BARISTA_PCT), (32.0, RHINO_BARISTA_PCT)], RED.stroke_width(2)))?
        .label("Picovoice Rhino 97.6% (published, noise average)")
        .legend(|(x, y)| PathElement::new([(x, y), (x + 14, y)], RED.stroke_width(2)));
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::LowerRight)
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK)
        .label_font(("sans-serif", 14))
        .draw()?;
    root.present()?;
    Ok(true)
}

//! The drift report as one self-contained HTML page: a summary, a table of every feature's
//! test, and reference-vs-current distributions drawn as inline SVG. No script, no external
//! resource: it reads the same from a file, a mail attachment or an S3 link.

use std::fmt::Write as _;

use mlops_drift::DriftReport;
use mlops_drift::charts::Chart;
use mlops_drift::stats::Verdict;

const REFERENCE_COLOUR: &str = "#4c78a8";
const CURRENT_COLOUR: &str = "#f58518";

fn escape(text: &str) -> String {
    text.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;")
}

fn number(x: Option<f64>) -> String {
    match x {
        None => "—".into(),
        Some(v) if v.is_infinite() => "∞".into(),
        Some(v) if v != 0.0 && (v.abs() < 1e-3 || v.abs() >= 1e5) => format!("{v:.3e}"),
        Some(v) => format!("{v:.4}"),
    }
}

/// The page for `report`, with one chart per feature (in the report's order).
pub fn render(report: &DriftReport, charts: &[Chart]) -> String {
    let mut html = String::new();
    let verdict = if report.dataset_drift { "Dataset drift detected" } else { "No dataset drift" };
    let _ = write!(
        html,
        r#"<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>Drift report: {dataset}</title>
<style>
body {{ font-family: system-ui, -apple-system, Segoe UI, Roboto, sans-serif; margin: 2rem auto; max-width: 1100px; color: #222; padding: 0 1rem; }}
h1 {{ font-size: 1.6rem; margin-bottom: .2rem; }}
.verdict {{ font-size: 1.2rem; font-weight: 600; padding: .6rem 1rem; border-radius: 6px; display: inline-block; }}
.drift {{ background: #fde2e1; color: #a11; }} .nodrift {{ background: #e3f4e1; color: #185c12; }} .insufficient {{ background: #eee; color: #555; }}
table {{ border-collapse: collapse; width: 100%; margin: 1rem 0 2rem; font-size: .92rem; }}
th, td {{ border-bottom: 1px solid #ddd; padding: .4rem .5rem; text-align: left; }}
th {{ background: #f6f6f6; }} td.num {{ text-align: right; font-variant-numeric: tabular-nums; }}
.card {{ border: 1px solid #ddd; border-radius: 8px; padding: .8rem 1rem; margin: 1rem 0; }}
.card h3 {{ margin: 0 0 .4rem; font-size: 1.05rem; }}
.legend span {{ display: inline-block; width: .8rem; height: .8rem; margin: 0 .3rem 0 1rem; vertical-align: middle; }}
.muted {{ color: #666; font-size: .9rem; }}
</style></head><body>
<h1>Drift report: {dataset}</h1>
<p class="muted">Reference: {rr} rows. Current: {cr} rows. Methods and thresholds follow the defaults of Evidently's DataDriftPreset unless configured.{sketch}</p>
<p class="verdict {vclass}">{verdict}: {drifted} of {checked} features drifted (share {share:.2}, threshold {ds:.2}){insufficient}</p>
<p class="legend muted">Charts: <span style="background:{REFERENCE_COLOUR}"></span>reference <span style="background:{CURRENT_COLOUR}"></span>current (share of rows)</p>
<table><thead><tr><th>feature</th><th>type</th><th>method</th><th>statistic</th><th>p-value</th><th>threshold</th><th>verdict</th><th>n ref</th><th>n cur</th></tr></thead><tbody>
"#,
        dataset = escape(&report.dataset),
        rr = report.reference_rows,
        sketch = if report.columns.iter().any(|f| f.test.from_sketch) {
            " Statistics marked ≈ were computed from profile sketches, within their error bounds."
        } else {
            ""
        },
        cr = report.current_rows,
        vclass = if report.dataset_drift { "drift" } else { "nodrift" },
        drifted = report.drifted,
        checked = report.checked,
        share = report.share,
        ds = report.drift_share,
        insufficient = if report.insufficient > 0 {
            format!("; {} with insufficient data", report.insufficient)
        } else {
            String::new()
        },
    );
    for f in &report.columns {
        let t = &f.test;
        let (label, class) = match t.verdict {
            Verdict::Drift => ("drift", "drift"),
            Verdict::NoDrift => ("no drift", "nodrift"),
            Verdict::InsufficientData => ("insufficient data", "insufficient"),
        };
        let _ = writeln!(
            html,
            r##"<tr><td><a href="#{id}">{name}</a></td><td>{kind}</td><td>{method}</td><td class="num">{stat}</td><td class="num">{p}</td><td class="num">{thr}</td><td><span class="verdict {class}" style="font-size:.85rem;padding:.1rem .4rem">{label}</span></td><td class="num">{nr}</td><td class="num">{nc}</td></tr>"##,
            id = escape(&f.column),
            name = escape(&f.column),
            kind = f.kind,
            method = t.method.name(),
            stat = if t.from_sketch { format!("≈ {}", number(t.statistic)) } else { number(t.statistic) },
            p = number(t.adjusted_p_value.or(t.p_value)),
            thr = t.threshold,
            nr = t.n_reference,
            nc = t.n_current,
        );
    }
    html.push_str("</tbody></table>\n<h2>Distributions</h2>\n");
    for (f, chart) in report.columns.iter().zip(charts) {
        let _ = writeln!(
            html,
            r#"<div class="card" id="{id}"><h3>{name} <span class="muted">— {method}, {verdict}</span></h3>{chart}</div>"#,
            id = escape(&f.column),
            name = escape(&f.column),
            method = f.test.method.name(),
            verdict = match f.test.verdict {
                Verdict::Drift => "drift",
                Verdict::NoDrift => "no drift",
                Verdict::InsufficientData => "insufficient data",
            },
            chart = bars(&chart.labels, &chart.reference, &chart.current),
        );
    }
    html.push_str("</body></html>\n");
    html
}

/// Paired vertical bars, reference then current, one pair per bin, with the bin labels below.
fn bars(labels: &[String], reference: &[f64], current: &[f64]) -> String {
    if labels.is_empty() {
        return "<p class=\"muted\">No values to draw.</p>".into();
    }
    let (width, height, bottom, left) = (1040.0, 220.0, 70.0, 64.0);
    let top = reference.iter().chain(current).copied().fold(0.0_f64, f64::max).max(1e-9);
    let slot = (width - left) / labels.len() as f64;
    let bar = (slot * 0.4).min(28.0);
    let mut svg = format!(
        r#"<svg viewBox="0 0 {width} {total}" width="100%" role="img" aria-label="reference and current distributions">"#,
        total = height + bottom
    );
    for tick in [0.0, 0.5, 1.0] {
        let y = height - tick * (height - 10.0);
        let _ = write!(
            svg,
            r##"<line x1="{left}" x2="{width}" y1="{y:.1}" y2="{y:.1}" stroke="#e5e5e5"/><text x="{tx}" y="{ty:.1}" font-size="10" text-anchor="end" fill="#666">{v:.0}%</text>"##,
            tx = left - 4.0,
            ty = y + 3.0,
            v = tick * top * 100.0
        );
    }
    for (i, label) in labels.iter().enumerate() {
        let x = left + i as f64 * slot + slot / 2.0;
        for (share, dx, colour) in [(reference[i], -bar, REFERENCE_COLOUR), (current[i], 0.0, CURRENT_COLOUR)] {
            let h = share / top * (height - 10.0);
            let _ = write!(
                svg,
                r#"<rect x="{:.1}" y="{:.1}" width="{bar:.1}" height="{h:.1}" fill="{colour}"><title>{}: {:.2}%</title></rect>"#,
                x + dx,
                height - h,
                escape(label),
                share * 100.0
            );
        }
        let _ = write!(
            svg,
            r##"<text x="{x:.1}" y="{y:.1}" font-size="10" fill="#333" text-anchor="end" transform="rotate(-40 {x:.1} {y:.1})">{}</text>"##,
            escape(&label.chars().take(24).collect::<String>()),
            y = height + 14.0
        );
    }
    svg.push_str("</svg>");
    svg
}

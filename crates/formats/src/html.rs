//! The drift report as one self-contained HTML page: where the data came from, the dataset
//! verdict, a compact table of every feature's test (drifted features first, the most severe
//! first) and reference-vs-current distributions drawn as inline SVG, each folded in its own
//! `<details>`. No script, no external resource: it reads the same from a file, a mail
//! attachment or an S3 link.
//!
//! The layout holds reports of hundreds of features with names of hundreds of characters: the
//! table has a fixed layout, long names and bin labels are cut around an ellipsis so that
//! distinct names stay distinct on screen (the full text is in a tooltip), and the charts of a
//! long report start folded.

use std::collections::HashMap;
use std::fmt::Write as _;

use mlops_drift::charts::Chart;
use mlops_drift::stats::{ColumnTest, Verdict};
use mlops_drift::{DriftReport, FeatureDrift};

const REFERENCE_COLOUR: &str = "#4c78a8";
const CURRENT_COLOUR: &str = "#f58518";

/// Characters of a feature name shown in the table and on a chart's heading.
const NAME_CHARS: usize = 40;
/// Characters of a bin label shown under a chart: every numeric range label fits whole.
const LABEL_CHARS: usize = 22;
/// Reports of up to this many features show every chart unfolded.
const OPEN_ALL_UP_TO: usize = 12;
/// Longer reports show the charts of this many of the most severely drifted features unfolded.
const OPEN_DRIFTED: usize = 4;

/// The chart's drawing: its width, the height of the plotting area, the axis font size and a
/// generous width of one character of that font (digits and most letters are narrower).
const CHART_WIDTH: f64 = 600.0;
const PLOT_HEIGHT: f64 = 160.0;
const FONT_SIZE: f64 = 10.0;
const CHAR_WIDTH: f64 = 6.2;
/// Room left of the plot for the share ticks.
const AXIS_ROOM: f64 = 40.0;

/// Where a report's data came from, shown at the top of the page. Every field is optional:
/// a drift check on Lambda knows the model, the baseline and the window; `mlops drift`, which
/// compares local files, knows the files.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ReportMeta {
    /// When the report was generated, as it should read (RFC 3339 is fine).
    pub generated_at: Option<String>,
    /// The dataset, when it should read otherwise than the report's own name for it.
    pub dataset: Option<String>,
    /// The monitored model.
    pub model: Option<String>,
    pub model_version: Option<String>,
    /// The id of the baseline the current data were compared with.
    pub baseline_id: Option<String>,
    /// How the current window was chosen: its kind (`days` or `batches`) and size.
    pub window_kind: Option<String>,
    pub window_size: Option<u32>,
    /// The first and last day of the window.
    pub window_from: Option<String>,
    pub window_to: Option<String>,
    /// The batch profiles merged into the current data.
    pub profiles: Vec<String>,
    /// How many of those profiles were re-binned onto the baseline's edges.
    pub rebinned: usize,
    /// Where the reference came from, such as a file.
    pub reference: Option<String>,
    /// Where the current data came from, such as files.
    pub current: Vec<String>,
}

/// `text` with every character that means something in HTML (`&`, `<`, `>`, both quotes)
/// written as an entity: safe as element content and as a quoted attribute value.
fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

fn number(x: Option<f64>) -> String {
    match x {
        None => "—".into(),
        Some(v) if v.is_nan() => "NaN".into(),
        Some(v) if v.is_infinite() => if v > 0.0 { "∞" } else { "−∞" }.into(),
        Some(v) if v != 0.0 && (v.abs() < 1e-3 || v.abs() >= 1e5) => format!("{v:.3e}"),
        Some(v) => format!("{v:.4}"),
    }
}

fn verdict_label(verdict: Verdict) -> (&'static str, &'static str) {
    match verdict {
        Verdict::Drift => ("drift", "drift"),
        Verdict::NoDrift => ("no drift", "nodrift"),
        Verdict::InsufficientData => ("insufficient data", "insufficient"),
    }
}

/// How far a feature's score is past its threshold, the same way round for every method:
/// above 1 is drift, and the larger the more severe. `None` when there is no score.
fn severity(test: &ColumnTest) -> Option<f64> {
    let score = test.score().filter(|s| !s.is_nan())?;
    let threshold = test.threshold;
    Some(if test.method.is_p_value() {
        if score <= 0.0 { f64::INFINITY } else { threshold / score }
    } else if threshold > 0.0 {
        score / threshold
    } else {
        score
    })
}

/// The report's features in the order the page shows them: drifted first, then without drift,
/// then those with too little data; within each, the most severe first, then in report order.
fn display_order(columns: &[FeatureDrift]) -> Vec<usize> {
    let group = |f: &FeatureDrift| match f.test.verdict {
        Verdict::Drift => 0,
        Verdict::NoDrift => 1,
        Verdict::InsufficientData => 2,
    };
    let mut order: Vec<usize> = (0..columns.len()).collect();
    order.sort_by(|&a, &b| {
        let (fa, fb) = (&columns[a], &columns[b]);
        let (sa, sb) =
            (severity(&fa.test).unwrap_or(f64::NEG_INFINITY), severity(&fb.test).unwrap_or(f64::NEG_INFINITY));
        group(fa).cmp(&group(fb)).then(sb.total_cmp(&sa)).then(a.cmp(&b))
    });
    order
}

/// `chars` whole when at most `width` long, else its head and tail around an ellipsis (the
/// tail a little longer: suffixes such as versions and indices tell names apart).
fn head_tail(chars: &[char], width: usize) -> String {
    if chars.len() <= width {
        return chars.iter().collect();
    }
    let keep = width.saturating_sub(1).max(2);
    let head = keep * 2 / 5;
    let tail = keep - head;
    let mut out: String = chars[..head].iter().collect();
    out.push('…');
    out.extend(&chars[chars.len() - tail..]);
    out
}

/// `chars` cut to its head, an excerpt around position `at` and its tail, with ellipses
/// between them: for names alike at both ends.
fn head_excerpt_tail(chars: &[char], at: usize, width: usize) -> String {
    if chars.len() <= width {
        return chars.iter().collect();
    }
    let keep = width.saturating_sub(2).max(3);
    let (head, tail) = (keep / 4, keep / 4);
    let excerpt = keep - head - tail;
    let start = at.saturating_sub(excerpt / 2).clamp(head, chars.len() - tail - excerpt);
    let end = start + excerpt;
    let mut out: String = chars[..head].iter().collect();
    if start > head {
        out.push('…');
    }
    out.extend(&chars[start..end]);
    if end < chars.len() - tail {
        out.push('…');
    }
    out.extend(&chars[chars.len() - tail..]);
    out
}

/// Labels of about `width` characters (at least 8) for `texts`, distinct wherever the texts
/// are: each text cut to its head and tail; texts that still read alike show an excerpt around
/// where they differ instead; any that are still alike are shown whole.
pub fn distinct_labels<S: AsRef<str>>(texts: &[S], width: usize) -> Vec<String> {
    let width = width.max(8);
    let chars: Vec<Vec<char>> = texts.iter().map(|t| t.as_ref().chars().collect()).collect();
    let mut labels: Vec<String> = chars.iter().map(|c| head_tail(c, width)).collect();
    let alike = |labels: &[String]| {
        let mut groups: HashMap<&str, Vec<usize>> = HashMap::new();
        for (i, label) in labels.iter().enumerate() {
            groups.entry(label.as_str()).or_default().push(i);
        }
        let mut alike: Vec<Vec<usize>> = groups.into_values().filter(|g| g.len() > 1).collect();
        alike.sort();
        alike
    };
    for group in alike(&labels) {
        for &i in &group {
            // Where this text parts from the one it is most alike.
            let at = group
                .iter()
                .filter(|&&j| j != i && chars[j] != chars[i])
                .map(|&j| chars[i].iter().zip(&chars[j]).take_while(|(a, b)| a == b).count())
                .max()
                .unwrap_or(0);
            labels[i] = head_excerpt_tail(&chars[i], at, width);
        }
    }
    for group in alike(&labels) {
        for i in group {
            labels[i] = texts[i].as_ref().to_string();
        }
    }
    labels
}

/// The page for `report`: `meta` at the top, then the verdict, the table of features and their
/// charts (`charts[i]` is the chart of `report.columns[i]`).
pub fn render(report: &DriftReport, charts: &[Chart], meta: &ReportMeta) -> String {
    let mut html = String::new();
    let dataset = meta.dataset.as_deref().unwrap_or(&report.dataset);
    let verdict = if report.dataset_drift { "Dataset drift detected" } else { "No dataset drift" };
    let _ = write!(
        html,
        r#"<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>Drift report: {dataset}</title>
<style>
body {{ font-family: system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; margin: 1.5rem auto; max-width: 1320px; color: #222; padding: 0 1rem; }}
h1 {{ font-size: 1.5rem; margin: 0 0 .6rem; overflow-wrap: anywhere; }}
h2 {{ font-size: 1.15rem; margin: 1.6rem 0 .4rem; }}
.meta {{ display: grid; grid-template-columns: repeat(auto-fill, minmax(240px, 1fr)); gap: .5rem 1.2rem; margin: 0 0 1rem; padding: .7rem 1rem; background: #f7f7f8; border-radius: 8px; font-size: .88rem; }}
.meta div {{ min-width: 0; }}
.meta dt {{ color: #666; font-size: .75rem; text-transform: uppercase; letter-spacing: .03em; }}
.meta dd {{ margin: .1rem 0 0; overflow-wrap: anywhere; }}
.meta details {{ margin-top: .2rem; }} .meta ul {{ margin: .2rem 0 0; padding-left: 1.1rem; font-size: .8rem; }}
code {{ font-family: ui-monospace, SFMono-Regular, Menlo, Consolas, monospace; font-size: .85em; }}
.verdict {{ font-size: 1.1rem; font-weight: 600; padding: .5rem .9rem; border-radius: 6px; display: inline-block; margin: .2rem 0; }}
.drift {{ background: #fde2e1; color: #a11; }} .nodrift {{ background: #e3f4e1; color: #185c12; }} .insufficient {{ background: #ececec; color: #555; }}
.badge {{ display: inline-block; white-space: nowrap; font-size: .78rem; font-weight: 600; padding: .05rem .45rem; border-radius: 4px; }}
.muted {{ color: #666; font-size: .88rem; }}
.tablewrap {{ overflow-x: auto; }}
table.features {{ table-layout: fixed; border-collapse: collapse; width: 100%; min-width: 1100px; font-size: .84rem; margin: .4rem 0 1rem; }}
table.features th, table.features td {{ border-bottom: 1px solid #e3e3e3; padding: .22rem .45rem; text-align: left; white-space: nowrap; overflow: hidden; text-overflow: ellipsis; }}
table.features th {{ background: #f3f3f4; font-weight: 600; white-space: normal; vertical-align: bottom; }}
table.features td.num, table.features th.num {{ text-align: right; font-variant-numeric: tabular-nums; }}
table.features tr.drifted td {{ background: #fff5f4; }}
table.features a {{ color: #1a4f8a; text-decoration: none; }} table.features a:hover {{ text-decoration: underline; }}
.legend span {{ display: inline-block; width: .8rem; height: .8rem; margin: 0 .3rem 0 1rem; vertical-align: middle; }}
.charts {{ display: grid; grid-template-columns: repeat(auto-fill, minmax(540px, 1fr)); gap: .4rem .6rem; align-items: start; }}
details.card {{ border: 1px solid #ddd; border-radius: 6px; padding: .15rem .6rem; min-width: 0; }}
details.card[open] {{ padding-bottom: .6rem; }}
details.card summary {{ display: flex; gap: .45rem; align-items: baseline; cursor: pointer; list-style: none; line-height: 1.4; }}
details.card summary::-webkit-details-marker {{ display: none; }}
details.card summary::before {{ content: "▸"; color: #888; }} details.card[open] summary::before {{ content: "▾"; }}
details.card .name {{ font-weight: 600; font-size: .88rem; white-space: nowrap; overflow: hidden; text-overflow: ellipsis; min-width: 0; flex: 0 1 auto; }}
details.card .badge {{ flex: none; }}
details.card .test {{ color: #666; font-size: .78rem; white-space: nowrap; overflow: hidden; text-overflow: ellipsis; min-width: 0; flex: 0 100 auto; margin-left: auto; }}
details.card svg {{ display: block; margin-top: .4rem; }}
</style></head><body>
<h1>Drift report: {dataset}</h1>
"#,
        dataset = escape(dataset),
    );
    write_meta(&mut html, report, meta, dataset);
    let _ = write!(
        html,
        r#"<p class="verdict {vclass}">{verdict}: {drifted} of {checked} features drifted (share {share:.2}, threshold {ds:.2}){insufficient}</p>
<p class="muted">Methods and thresholds follow the defaults of Evidently's DataDriftPreset unless configured.{sketch}</p>
<h2>Features</h2>
<p class="muted">Drifted features first, the furthest past their threshold first. Hover over a name to read it in full.</p>
<div class="tablewrap"><table class="features">
<colgroup><col style="width:44px"><col><col style="width:96px"><col style="width:118px"><col style="width:100px"><col style="width:96px"><col style="width:90px"><col style="width:128px"><col style="width:118px"><col style="width:118px"></colgroup>
<thead><tr><th class="num">#</th><th>feature</th><th>type</th><th>method</th><th class="num">statistic</th><th class="num">p-value</th><th class="num">threshold</th><th>verdict</th><th class="num" title="values tested, reference / current">values ref / cur</th><th class="num" title="missing values, reference / current">missing ref / cur</th><th class="num" title="distinct values, reference / current (≈: a HyperLogLog estimate)">distinct ref / cur</th></tr></thead>
<tbody>
"#,
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
        sketch = if report.columns.iter().any(|f| f.test.from_sketch) {
            " Statistics marked ≈ were computed from profile sketches, within their error bounds."
        } else {
            ""
        },
    );
    let names: Vec<&str> = report.columns.iter().map(|f| f.column.as_str()).collect();
    let labels = distinct_labels(&names, NAME_CHARS);
    let order = display_order(&report.columns);
    for (rank, &i) in order.iter().enumerate() {
        let f = &report.columns[i];
        let t = &f.test;
        let (label, class) = verdict_label(t.verdict);
        let _ = writeln!(
            html,
            r##"<tr class="{row}"><td class="num">{rank}</td><td title="{full}"><a href="#f{i}">{name}</a></td><td>{kind}</td><td>{method}</td><td class="num">{stat}</td><td class="num">{p}</td><td class="num">{thr}</td><td><span class="badge {class}">{label}</span></td><td class="num">{nr} / {nc}</td>{missing}{distinct}</tr>"##,
            row = if t.verdict == Verdict::Drift { "drifted" } else { "" },
            rank = rank + 1,
            full = escape(&f.column),
            name = escape(&labels[i]),
            kind = escape(&f.kind),
            method = t.method.name(),
            stat = if t.from_sketch { format!("≈ {}", number(t.statistic)) } else { number(t.statistic) },
            p = number(t.adjusted_p_value.or(t.p_value)),
            thr = t.threshold,
            nr = t.n_reference,
            nc = t.n_current,
            missing = missing_cell(f),
            distinct = distinct_cell(f),
        );
    }
    let _ = write!(
        html,
        r#"</tbody></table></div>
<h2>Distributions</h2>
<p class="legend muted">Share of values per bin: <span style="background:{REFERENCE_COLOUR}"></span>reference <span style="background:{CURRENT_COLOUR}"></span>current</p>{folded}
<div class="charts">
"#,
        folded = if report.columns.len() > OPEN_ALL_UP_TO {
            format!(
                "<p class=\"muted\">The charts of the {OPEN_DRIFTED} most drifted features are open; click any other feature to open its chart.</p>\n"
            )
        } else {
            String::new()
        },
    );
    let empty = Chart::default();
    for (rank, &i) in order.iter().enumerate() {
        let f = &report.columns[i];
        let (label, class) = verdict_label(f.test.verdict);
        let open = report.columns.len() <= OPEN_ALL_UP_TO || (f.test.verdict == Verdict::Drift && rank < OPEN_DRIFTED);
        let chart = charts.get(i).unwrap_or(&empty);
        let _ = writeln!(
            html,
            r#"<details class="card" id="f{i}"{open}><summary><span class="name" title="{full}">{name}</span><span class="badge {class}">{label}</span><span class="test">{method}{score}</span></summary>{chart}</details>"#,
            open = if open { " open" } else { "" },
            full = escape(&f.column),
            name = escape(&labels[i]),
            method = f.test.method.name(),
            score = match (f.test.method.is_p_value(), f.test.score()) {
                (_, None) => String::new(),
                (true, Some(p)) => format!(", p {}", number(Some(p))),
                (false, Some(d)) => format!(", {}", number(Some(d))),
            },
            chart = bars(&chart.labels, &chart.reference, &chart.current),
        );
    }
    html.push_str("</div>\n</body></html>\n");
    html
}

/// The distinct values of a feature, reference / current; a change of more than half either
/// way is marked.
fn distinct_cell(f: &FeatureDrift) -> String {
    let shown = |d: f64| if d.fract() == 0.0 { format!("{d:.0}") } else { format!("≈{d:.0}") };
    match (f.distinct_reference, f.distinct_current) {
        (Some(r), Some(c)) => {
            let changed = r > 0.0 && (c / r > 1.5 || c / r < 0.5);
            let title =
                if changed { "the number of distinct values changed by more than half" } else { "distinct values" };
            let mark = if changed { " ⚠" } else { "" };
            format!(r#"<td class="num" title="{title}">{} / {}{mark}</td>"#, shown(r), shown(c))
        }
        _ => r#"<td class="num" title="not counted in this report">—</td>"#.to_string(),
    }
}

/// The missing values of a feature, reference / current, with their shares in a tooltip.
fn missing_cell(f: &FeatureDrift) -> String {
    let share = |missing: u64, tested: u64| {
        let all = missing + tested;
        if all == 0 { "no rows".to_string() } else { format!("{:.1}%", missing as f64 / all as f64 * 100.0) }
    };
    match (f.missing_reference, f.missing_current) {
        (Some(r), Some(c)) => format!(
            r#"<td class="num" title="reference {r} ({}), current {c} ({})">{r} / {c}</td>"#,
            share(r, f.test.n_reference),
            share(c, f.test.n_current),
        ),
        _ => r#"<td class="num" title="not counted in this report">—</td>"#.to_string(),
    }
}

/// The metadata block: every field `meta` has, and the row counts of the report.
fn write_meta(html: &mut String, report: &DriftReport, meta: &ReportMeta, dataset: &str) {
    let mut items: Vec<(&str, String)> = Vec::new();
    if let Some(at) = &meta.generated_at {
        items.push(("Generated", escape(at)));
    }
    items.push(("Dataset", escape(dataset)));
    if let Some(model) = &meta.model {
        items.push(("Model", escape(model)));
    }
    if let Some(version) = &meta.model_version {
        items.push(("Model version", escape(version)));
    }
    if let Some(id) = &meta.baseline_id {
        items.push(("Baseline", format!("<code>{}</code>", escape(id))));
    }
    let span = match (&meta.window_from, &meta.window_to) {
        (Some(from), Some(to)) if from == to => Some(escape(from)),
        (Some(from), Some(to)) => Some(format!("{} to {}", escape(from), escape(to))),
        (Some(from), None) => Some(format!("from {}", escape(from))),
        (None, Some(to)) => Some(format!("to {}", escape(to))),
        (None, None) => None,
    };
    let size = match (&meta.window_kind, meta.window_size) {
        (Some(kind), Some(n)) => {
            let kind = match (kind.as_str(), n) {
                ("days", 1) => "day",
                ("batches", 1) => "batch",
                (kind, _) => kind,
            };
            Some(format!("last {n} {}", escape(kind)))
        }
        (Some(kind), None) => Some(escape(kind)),
        (None, Some(n)) => Some(format!("last {n}")),
        (None, None) => None,
    };
    match (size, span) {
        (Some(size), Some(span)) => items.push(("Window", format!("{size}: {span}"))),
        (Some(one), None) | (None, Some(one)) => items.push(("Window", one)),
        (None, None) => {}
    }
    if !meta.profiles.is_empty() || meta.window_kind.is_some() {
        let mut text = meta.profiles.len().to_string();
        if meta.rebinned > 0 {
            let _ = write!(text, " ({} re-binned onto the baseline's edges)", meta.rebinned);
        }
        text.push_str(&listed("profiles", &meta.profiles));
        items.push(("Profiles merged", text));
    }
    let source = |rows: u64, from: &[String], what: &str| {
        let mut text = format!("{rows} rows");
        match from {
            [] => {}
            [one] => {
                let _ = write!(text, " from <code>{}</code>", escape(one));
            }
            many => {
                let _ = write!(text, " from {} {what}{}", many.len(), listed(what, many));
            }
        }
        text
    };
    items.push(("Reference", source(report.reference_rows, meta.reference.as_slice(), "files")));
    items.push(("Current", source(report.current_rows, &meta.current, "files")));
    let total = |pick: fn(&FeatureDrift) -> Option<u64>| report.columns.iter().map(pick).sum::<Option<u64>>();
    if let (Some(r), Some(c)) = (total(|f| f.missing_reference), total(|f| f.missing_current)) {
        items.push(("Missing values", format!("{r} in the reference, {c} in the current data")));
    }
    if let Some(f) = &report.freshness {
        let span = |from: &Option<String>, to: &Option<String>| match (from, to) {
            (Some(a), Some(b)) => format!("{} to {}", escape(a), escape(b)),
            _ => "no event time".to_string(),
        };
        items.push((
            "Event time",
            format!(
                "<code>{}</code>: reference {}; current {} (newest {})",
                escape(&f.column),
                span(&f.reference_earliest, &f.reference_latest),
                span(&f.current_earliest, &f.current_latest),
                f.current_latest.as_deref().map_or("unknown".to_string(), escape),
            ),
        ));
    }
    html.push_str("<dl class=\"meta\">\n");
    for (term, value) in items {
        let _ = writeln!(html, "<div><dt>{term}</dt><dd>{value}</dd></div>");
    }
    html.push_str("</dl>\n");
}

/// A folded list of `items`, or nothing when there are none.
fn listed(what: &str, items: &[String]) -> String {
    if items.is_empty() {
        return String::new();
    }
    let mut out = format!("<details><summary class=\"muted\">{what}</summary><ul>");
    for item in items {
        let _ = write!(out, "<li><code>{}</code></li>", escape(item));
    }
    out.push_str("</ul></details>");
    out
}

/// Paired vertical bars, reference then current, one pair per bin, with the bin labels below:
/// level when they fit under their bars, else at 45° with the room they need below and left
/// of the plot, so that no label is clipped.
fn bars(labels: &[String], reference: &[f64], current: &[f64]) -> String {
    if labels.is_empty() {
        return "<p class=\"muted\">No values to draw.</p>".into();
    }
    let shown = distinct_labels(labels, LABEL_CHARS);
    let bins = labels.len() as f64;
    let longest = shown.iter().map(|l| l.chars().count()).max().unwrap_or(0) as f64 * CHAR_WIDTH;
    let right = 8.0;
    let level = longest + 6.0 <= (CHART_WIDTH - AXIS_ROOM - right) / bins;
    // A rotated label reaches this far left of, and below, the end it hangs from.
    let reach = longest * std::f64::consts::FRAC_1_SQRT_2;
    let left = if level {
        AXIS_ROOM
    } else {
        // The first label hangs from the middle of the first slot, which narrows as `left` grows.
        let needed = (reach + 4.0 - (CHART_WIDTH - right) / (2.0 * bins)) / (1.0 - 1.0 / (2.0 * bins));
        AXIS_ROOM.max(needed.ceil())
    };
    let bottom = if level { 22.0 } else { (12.0 + reach + FONT_SIZE).ceil() };
    let total = PLOT_HEIGHT + bottom;
    let top = reference.iter().chain(current).copied().filter(|v| v.is_finite()).fold(0.0_f64, f64::max).max(1e-9);
    let slot = (CHART_WIDTH - left - right) / bins;
    let bar = (slot * 0.4).min(28.0);
    let mut svg = format!(
        r#"<svg viewBox="0 0 {CHART_WIDTH} {total}" width="100%" role="img" aria-label="reference and current distributions">"#
    );
    for tick in [0.0, 0.5, 1.0] {
        let y = PLOT_HEIGHT - tick * (PLOT_HEIGHT - 10.0);
        let v = tick * top * 100.0;
        let _ = write!(
            svg,
            r##"<line x1="{left}" x2="{x2}" y1="{y:.1}" y2="{y:.1}" stroke="#e5e5e5"/><text x="{tx}" y="{ty:.1}" font-size="{FONT_SIZE}" text-anchor="end" fill="#666">{v:.prec$}%</text>"##,
            x2 = CHART_WIDTH - right,
            tx = left - 4.0,
            ty = y + 3.0,
            prec = if top * 100.0 < 10.0 { 1 } else { 0 },
        );
    }
    for (i, (label, shown)) in labels.iter().zip(&shown).enumerate() {
        let x = left + i as f64 * slot + slot / 2.0;
        let pairs = [
            (reference.get(i).copied().unwrap_or(0.0), -bar, REFERENCE_COLOUR, "reference"),
            (current.get(i).copied().unwrap_or(0.0), 0.0, CURRENT_COLOUR, "current"),
        ];
        for (share, dx, colour, which) in pairs {
            let h = if share.is_finite() { share.max(0.0) / top * (PLOT_HEIGHT - 10.0) } else { 0.0 };
            let _ = write!(
                svg,
                r#"<rect x="{:.1}" y="{:.1}" width="{bar:.1}" height="{h:.1}" fill="{colour}"><title>{}, {which}: {:.2}%</title></rect>"#,
                x + dx,
                PLOT_HEIGHT - h,
                escape(label),
                share * 100.0
            );
        }
        let tooltip = if shown == label { String::new() } else { format!("<title>{}</title>", escape(label)) };
        if level {
            let _ = write!(
                svg,
                r##"<text x="{x:.1}" y="{y:.1}" font-size="{FONT_SIZE}" fill="#333" text-anchor="middle">{}{tooltip}</text>"##,
                escape(shown),
                y = PLOT_HEIGHT + 14.0,
            );
        } else {
            let (tx, ty) = (x + 3.0, PLOT_HEIGHT + 12.0);
            let _ = write!(
                svg,
                r##"<text x="{tx:.1}" y="{ty:.1}" font-size="{FONT_SIZE}" fill="#333" text-anchor="end" transform="rotate(-45 {tx:.1} {ty:.1})">{}{tooltip}</text>"##,
                escape(shown),
            );
        }
    }
    svg.push_str("</svg>");
    svg
}

/// A self-contained page of one table, for reports whose figures are a few rows (an A/B
/// test's variants): a title, the run's facts as name–value pairs, the table, and closing
/// lines (the test and the recommendation). Everything is escaped.
pub fn table_page(
    title: &str,
    facts: &[(&str, String)],
    headers: &[&str],
    rows: &[Vec<String>],
    notes: &[String],
) -> String {
    let facts: String =
        facts.iter().map(|(k, v)| format!("<div><span>{}</span>{}</div>", escape(k), escape(v))).collect();
    let head: String = headers.iter().map(|h| format!("<th>{}</th>", escape(h))).collect();
    let body: String = rows
        .iter()
        .map(|row| format!("<tr>{}</tr>", row.iter().map(|c| format!("<td>{}</td>", escape(c))).collect::<String>()))
        .collect();
    let notes: String = notes.iter().map(|n| format!("<p>{}</p>", escape(n))).collect();
    format!(
        r#"<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>{title}</title>
<style>
body {{ font-family: system-ui, sans-serif; margin: 2rem; color: #222; max-width: 1100px; }}
.facts {{ display: grid; grid-template-columns: repeat(auto-fill, minmax(200px, 1fr)); gap: .5rem 1.5rem; background: #f6f6f6; padding: 1rem; border-radius: 6px; }}
.facts span {{ display: block; font-size: .75rem; text-transform: uppercase; color: #666; }}
table {{ border-collapse: collapse; margin: 1.5rem 0; width: 100%; table-layout: fixed; }}
th, td {{ text-align: left; padding: .35rem .6rem; border-bottom: 1px solid #ddd; overflow-wrap: anywhere; }}
th {{ background: #f0f0f0; }}
</style></head><body>
<h1>{title}</h1>
<div class="facts">{facts}</div>
<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>
{notes}
</body></html>
"#,
        title = escape(title)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_table_page_escapes_and_holds_its_rows() {
        let page = table_page(
            "A/B <test>",
            &[("model", "m&m".into())],
            &["variant", "value"],
            &[vec!["champion".into(), "0.9".into()], vec!["challenger".into(), "0.95".into()]],
            &["p = 0.04 \"significant\"".into()],
        );
        assert!(
            page.contains("A/B &lt;test&gt;") && page.contains("m&amp;m") && page.contains("&quot;significant&quot;")
        );
        assert_eq!(page.matches("<tr>").count(), 3);
        assert!(!page.contains("<script") && !page.contains("http"));
    }
    use mlops_drift::stats::Method;

    fn feature(column: &str, verdict: Verdict, method: Method, score: f64) -> FeatureDrift {
        let p_value = method.is_p_value();
        FeatureDrift {
            column: column.to_string(),
            kind: "numeric".into(),
            test: ColumnTest {
                method,
                statistic: Some(if p_value { 0.3 } else { score }),
                p_value: p_value.then_some(score),
                adjusted_p_value: None,
                threshold: method.default_threshold(),
                verdict,
                drifted: verdict == Verdict::Drift,
                n_reference: 300,
                n_current: 200,
                ks_method: None,
                from_sketch: false,
            },
            missing_reference: Some(4),
            missing_current: Some(17),
            distinct_reference: Some(40.0),
            distinct_current: Some(95.3),
        }
    }

    fn report(columns: Vec<FeatureDrift>) -> DriftReport {
        let drifted = columns.iter().filter(|f| f.test.drifted).count();
        DriftReport {
            dataset: "penguins".into(),
            dataset_drift: drifted * 2 >= columns.len(),
            drift_share: 0.5,
            share: drifted as f64 / columns.len().max(1) as f64,
            drifted,
            checked: columns.len(),
            insufficient: columns.iter().filter(|f| f.test.verdict == Verdict::InsufficientData).count(),
            reference_rows: 304,
            current_rows: 217,
            columns,
            freshness: Some(mlops_drift::Freshness {
                column: "observed_at".into(),
                reference_earliest: Some("2026-01-01T00:00:00Z".into()),
                reference_latest: Some("2026-01-31T23:00:00Z".into()),
                current_earliest: Some("2026-03-01T00:00:00Z".into()),
                current_latest: Some("2026-03-07T12:00:00Z".into()),
            }),
        }
    }

    fn chart(labels: &[&str]) -> Chart {
        let n = labels.len() as f64;
        Chart {
            labels: labels.iter().map(|l| l.to_string()).collect(),
            reference: vec![1.0 / n; labels.len()],
            current: vec![1.0 / n; labels.len()],
        }
    }

    /// The text after every `open` of `html` (past the end of its opening tag) up to `close`.
    fn texts_of<'a>(html: &'a str, open: &str, close: &str) -> Vec<&'a str> {
        html.split(open)
            .skip(1)
            .filter_map(|rest| rest.split_once('>').and_then(|(_, body)| body.split_once(close)).map(|(text, _)| text))
            .collect()
    }

    /// The names shown in the table's feature cells, in table order.
    fn table_names(html: &str) -> Vec<String> {
        let body = html.split("<tbody>").nth(1).and_then(|b| b.split("</tbody>").next()).expect("a table body");
        body.split("<a href=\"#f")
            .skip(1)
            .map(|rest| rest.split_once('>').and_then(|(_, r)| r.split_once("</a>")).expect("a link").0.to_string())
            .collect()
    }

    fn unescape(text: &str) -> String {
        text.replace("&lt;", "<")
            .replace("&gt;", ">")
            .replace("&quot;", "\"")
            .replace("&#39;", "'")
            .replace("&amp;", "&")
    }

    #[test]
    fn the_metadata_appears_at_the_top() {
        let meta = ReportMeta {
            generated_at: Some("2026-03-14T06:00:00Z".into()),
            dataset: None,
            model: Some("penguin-species".into()),
            model_version: Some("7".into()),
            baseline_id: Some("e0123456789abcd".into()),
            window_kind: Some("days".into()),
            window_size: Some(7),
            window_from: Some("2026-03-08".into()),
            window_to: Some("2026-03-14".into()),
            profiles: vec![
                "profiles/penguins/dt=2026-03-08/b1.json".into(),
                "profiles/penguins/dt=2026-03-14/b2.json".into(),
            ],
            rebinned: 1,
            reference: None,
            current: Vec::new(),
        };
        let r = report(vec![feature("bill_length_mm", Verdict::Drift, Method::Ks, 1e-6)]);
        let html = render(&r, &[chart(&["a"])], &meta);
        let header = html.split("<h2>Features</h2>").next().expect("a header");
        for expected in [
            "2026-03-14T06:00:00Z",
            "penguin-species",
            "<dt>Model version</dt><dd>7</dd>",
            "e0123456789abcd",
            "last 7 days: 2026-03-08 to 2026-03-14",
            "<dt>Profiles merged</dt><dd>2 (1 re-binned",
            "profiles/penguins/dt=2026-03-14/b2.json",
            "304 rows",
            "217 rows",
            "4 in the reference, 17 in the current data",
        ] {
            assert!(header.contains(expected), "{expected:?} is not in the header:\n{header}");
        }
        let cli = ReportMeta {
            reference: Some("train.csv".into()),
            current: vec!["a.csv".into(), "b.csv".into()],
            ..ReportMeta::default()
        };
        let html = render(&r, &[chart(&["a"])], &cli);
        assert!(html.contains("304 rows from <code>train.csv</code>") && html.contains("217 rows from 2 files"));
        assert!(!html.contains("Model version") && !html.contains("Window") && !html.contains("Profiles merged"));
        assert!(html.contains(r#"title="reference 4 (1.3%), current 17 (7.8%)">4 / 17</td>"#), "missing counts");
        assert!(html.contains(">40 / ≈95 ⚠</td>"), "distinct values, a change of more than half marked");
        assert!(
            html.contains("<code>observed_at</code>: reference 2026-01-01T00:00:00Z to 2026-01-31T23:00:00Z; current"),
            "event times"
        );
    }

    #[test]
    fn drifted_features_come_first_the_most_severe_first() {
        let r = report(vec![
            feature("calm", Verdict::NoDrift, Method::Ks, 0.6),
            feature("thin", Verdict::InsufficientData, Method::Ks, f64::NAN),
            feature("mild_distance", Verdict::Drift, Method::Wasserstein, 0.12),
            feature("quiet", Verdict::NoDrift, Method::Ks, 0.09),
            feature("severe_p", Verdict::Drift, Method::Ks, 1e-9),
            feature("severe_distance", Verdict::Drift, Method::Jensenshannon, 0.9),
        ]);
        let charts: Vec<Chart> = (0..6).map(|_| chart(&["a", "b"])).collect();
        let html = render(&r, &charts, &ReportMeta::default());
        let expected = ["severe_p", "severe_distance", "mild_distance", "quiet", "calm", "thin"];
        assert_eq!(table_names(&html), expected);
        let cards: Vec<&str> = texts_of(&html, "<span class=\"name\"", "</span>");
        assert_eq!(cards, expected, "the charts follow the table's order");
        // Links still lead to the feature's chart, by its place in the report.
        assert!(
            html.contains(r##"<a href="#f4">severe_p</a>"##) && html.contains(r#"<details class="card" id="f4" open>"#)
        );
    }

    #[test]
    fn a_hundred_long_names_render_with_distinct_visible_labels() {
        let common_head = "customer_account_activity_rolling_window_aggregate_".repeat(2);
        let mut names: Vec<String> = (0..100)
            .map(|i| {
                // Names alike at both ends, told apart only in the middle, and 200 characters.
                let name = format!("{common_head}{i:03}_mean_over_the_trailing_ninety_days_since_the_last_event");
                format!("{name}{}", "_x".repeat((200 - name.len()) / 2))
            })
            .collect();
        names[7] = format!("{}_v2", "z".repeat(197));
        names[8] = format!("{}_v3", "z".repeat(197));
        assert!(names.iter().all(|n| (199..=200).contains(&n.chars().count())), "{}", names[0].len());
        let columns: Vec<FeatureDrift> = names
            .iter()
            .enumerate()
            .map(|(i, n)| {
                let verdict = if i % 3 == 0 { Verdict::Drift } else { Verdict::NoDrift };
                feature(n, verdict, Method::Wasserstein, if i % 3 == 0 { 0.2 + i as f64 / 1000.0 } else { 0.05 })
            })
            .collect();
        let charts: Vec<Chart> = (0..100).map(|_| chart(&["0.000–1.000", "1.000–2.000"])).collect();
        let html = render(&report(columns), &charts, &ReportMeta::default());
        let shown = table_names(&html);
        assert_eq!(shown.len(), 100);
        let distinct: std::collections::BTreeSet<&String> = shown.iter().collect();
        assert_eq!(distinct.len(), 100, "every visible label differs: {shown:?}");
        assert!(shown.iter().all(|s| s.chars().count() <= NAME_CHARS + 1), "{shown:?}");
        // The full name is in the cell's tooltip.
        for name in &names {
            assert!(html.contains(&format!("<td title=\"{name}\">")), "{name}");
        }
        assert!(html.contains("white-space: nowrap") && html.contains("table-layout: fixed"));
        // Long reports fold most charts.
        assert_eq!(html.matches("<details class=\"card\"").count(), 100);
        assert_eq!(html.matches(" open><summary>").count(), OPEN_DRIFTED);
    }

    #[test]
    fn names_and_labels_are_escaped() {
        let name = r#"<b>a&b "quoted" 'single'</b>"#;
        let r = report(vec![feature(name, Verdict::Drift, Method::Ks, 1e-4)]);
        let meta = ReportMeta { model: Some("<script>m</script>".into()), ..ReportMeta::default() };
        let html = render(&r, &[chart(&["<i>", "&x"])], &meta);
        assert!(!html.contains("<b>") && !html.contains("<i>") && !html.contains("<script"), "{html}");
        assert!(!html.contains("'single'") && !html.contains("\"quoted\""));
        let escaped = "&lt;b&gt;a&amp;b &quot;quoted&quot; &#39;single&#39;&lt;/b&gt;";
        assert!(html.contains(&format!("<td title=\"{escaped}\">")));
        assert_eq!(unescape(&table_names(&html)[0]), name);
        assert!(html.contains("&lt;i&gt;") && html.contains("&amp;x") && html.contains("&lt;script&gt;m"));
    }

    #[test]
    fn a_bin_label_keeps_all_its_digits_within_the_drawing() {
        let edges = [2700.0, 3031.818, 3363.636, 3695.455, 4027.273, 4359.091, 4690.909, 5022.727, 5354.545, 5686.364];
        let labels: Vec<String> = edges.windows(2).map(|w| format!("{:.3}–{:.3}", w[0], w[1])).collect();
        let refs: Vec<&str> = labels.iter().map(String::as_str).collect();
        let r = report(vec![feature("body_mass_g", Verdict::Drift, Method::Ks, 1e-4)]);
        let html = render(&r, &[chart(&refs)], &ReportMeta::default());
        let svg = html.split("<svg").nth(1).expect("a chart");
        let (width, height) = {
            let view = svg.split("viewBox=\"0 0 ").nth(1).and_then(|v| v.split('"').next()).expect("a viewBox");
            let (w, h) = view.split_once(' ').expect("two numbers");
            (w.parse::<f64>().expect("width"), h.parse::<f64>().expect("height"))
        };
        let mut drawn = 0;
        for text in svg.split("<text ").skip(1).filter(|t| t.contains("rotate(-45")) {
            let attr = |name: &str| -> f64 {
                text.split(&format!(" {name}=\""))
                    .nth(1)
                    .or_else(|| text.strip_prefix(&format!("{name}=\"")))
                    .and_then(|v| v.split('"').next())
                    .and_then(|v| v.parse().ok())
                    .unwrap_or_else(|| panic!("{name} of {text}"))
            };
            let (x, y) = (attr("x"), attr("y"));
            let content = text.split_once('>').and_then(|(_, t)| t.split('<').next()).expect("a label");
            assert_eq!(content, labels[drawn], "the label whole");
            let reach = content.chars().count() as f64 * CHAR_WIDTH * std::f64::consts::FRAC_1_SQRT_2;
            assert!(
                x - reach >= 0.0 && y + reach <= height && x <= width,
                "{content} at ({x}, {y}) leaves the drawing"
            );
            drawn += 1;
        }
        assert_eq!(drawn, labels.len());
        assert!(html.contains(">2700.000–3031.818<"));
    }

    #[test]
    fn labels_stay_distinct_when_cut() {
        let texts = [
            "same_start_and_same_end_but_A_in_the_middle_same_end",
            "same_start_and_same_end_but_B_in_the_middle_same_end",
        ];
        let labels = distinct_labels(&texts, 20);
        assert_ne!(labels[0], labels[1]);
        assert!(labels.iter().all(|l| l.chars().count() <= 20), "{labels:?}");
        assert_eq!(distinct_labels(&["short"], 20), ["short"]);
        let cut = distinct_labels(&["a".repeat(30) + "_tail7"], 20);
        assert!(cut[0].ends_with("_tail7") && cut[0].contains('…'), "{cut:?}");
    }
}

//! `mlops drift`: the drift tests on local files — a reference and one or more current
//! batches (CSV or JSON Lines, optionally gzip), read against a contract — with the report as
//! JSON and as a self-contained HTML page.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};

use anyhow::Context as _;
use mlops_core::Contract;
use mlops_core::compare::{DriftReport, Samples, compare};
use mlops_core::stats::{Correction, Method, Override, TestConfig};

/// What to compare.
#[derive(Debug, Clone)]
pub struct DriftArgs {
    pub contract: PathBuf,
    pub reference: PathBuf,
    pub current: Vec<PathBuf>,
    pub json: Option<PathBuf>,
    pub html: Option<PathBuf>,
    pub config: TestConfig,
    /// `column=method[:threshold]` overrides.
    pub overrides: BTreeMap<String, Override>,
}

/// Parses `column=method` or `column=method:threshold` (e.g. `body_mass_g=psi:0.2`).
pub fn parse_override(text: &str) -> anyhow::Result<(String, Override)> {
    let (column, rest) = text.split_once('=').with_context(|| format!("{text:?} is not column=method[:threshold]"))?;
    let (method, threshold) = match rest.split_once(':') {
        Some((m, t)) => (m, Some(t.parse::<f64>().with_context(|| format!("{t:?} is not a threshold"))?)),
        None => (rest, None),
    };
    let names: Vec<&str> = Method::ALL.iter().map(|m| m.name()).collect();
    let method = Method::from_name(method)
        .with_context(|| format!("{method:?} is not a method; use one of {}", names.join(", ")))?;
    Ok((column.to_string(), Override { method: Some(method), threshold }))
}

/// Parses `none`, `bonferroni` or `bh`.
pub fn parse_correction(text: &str) -> anyhow::Result<Correction> {
    match text {
        "none" => Ok(Correction::None),
        "bonferroni" => Ok(Correction::Bonferroni),
        "bh" | "benjamini-hochberg" => Ok(Correction::BenjaminiHochberg),
        other => anyhow::bail!("{other:?} is not a correction; use none, bonferroni or bh"),
    }
}

fn open(path: &Path) -> anyhow::Result<Box<dyn BufRead>> {
    let file = std::fs::File::open(path).with_context(|| format!("reading {}", path.display()))?;
    let name = path.display().to_string();
    Ok(if mlops_core::ingest::is_gzip(&name, None) {
        Box::new(BufReader::new(flate2::read::MultiGzDecoder::new(BufReader::new(file))))
    } else {
        Box::new(BufReader::with_capacity(256 << 10, file))
    })
}

fn read(contract: &Contract, files: &[PathBuf]) -> anyhow::Result<Samples> {
    let mut samples = Samples::new(contract);
    for file in files {
        let name = file.display().to_string();
        samples.read(contract, &name, open(file)?)?;
    }
    Ok(samples)
}

/// Runs the comparison, writes the requested outputs and a summary to `out`.
pub fn run(args: &DriftArgs, out: &mut impl Write) -> anyhow::Result<DriftReport> {
    let contract = Contract::load(&args.contract)?;
    for column in args.overrides.keys() {
        anyhow::ensure!(
            contract.column(column).is_some(),
            "--method {column}=…: the contract has no column {column:?}"
        );
    }
    let reference = read(&contract, std::slice::from_ref(&args.reference))?;
    let current = read(&contract, &args.current)?;
    let report = compare(&contract.dataset, &reference, &current, &args.config, &args.overrides)?;
    writeln!(
        out,
        "{:<24} {:<12} {:<14} {:>12} {:>12} {:>10}  verdict",
        "feature", "type", "method", "statistic", "p-value", "threshold"
    )?;
    let show = |x: Option<f64>| match x {
        None => "—".to_string(),
        Some(v) if v != 0.0 && v.abs() < 1e-4 => format!("{v:.3e}"),
        Some(v) => format!("{v:.4}"),
    };
    for f in &report.columns {
        let t = &f.test;
        writeln!(
            out,
            "{:<24} {:<12} {:<14} {:>12} {:>12} {:>10}  {}",
            f.column,
            f.kind,
            t.method.name(),
            show(t.statistic),
            show(t.adjusted_p_value.or(t.p_value)),
            t.threshold,
            serde_json::to_value(t.verdict)?.as_str().unwrap_or_default()
        )?;
    }
    writeln!(
        out,
        "dataset drift: {} ({} of {} features, share {:.2}, threshold {:.2}); reference {} rows, current {} rows{}",
        if report.dataset_drift { "YES" } else { "no" },
        report.drifted,
        report.checked,
        report.share,
        report.drift_share,
        report.reference_rows,
        report.current_rows,
        if reference.rejected + current.rejected > 0 {
            format!(" ({} rows the contract rejects left out)", reference.rejected + current.rejected)
        } else {
            String::new()
        }
    )?;
    if let Some(path) = &args.json {
        std::fs::write(path, serde_json::to_vec_pretty(&report)?)
            .with_context(|| format!("writing {}", path.display()))?;
        writeln!(out, "report: {}", path.display())?;
    }
    if let Some(path) = &args.html {
        let html = mlops_core::report_html::render(&report, &reference, &current);
        std::fs::write(path, html).with_context(|| format!("writing {}", path.display()))?;
        writeln!(out, "html: {}", path.display())?;
    }
    Ok(report)
}

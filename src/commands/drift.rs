//! `mlops drift`: the drift tests on local files — a reference and one or more current inputs,
//! each a batch of rows (CSV or JSON Lines, optionally gzip) or a profile (JSON, as ingest and
//! `mlops profile` write them), read against a contract — with the report as JSON and as a
//! self-contained HTML page.
//!
//! When every input is rows, the exact samples are compared. When any input is a profile, every
//! input is taken as a profile (rows are profiled first) and the profiles are compared.

use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::Context as _;
use clap::Args;
use mlops_contract::Contract;
use mlops_drift::stats::{Correction, Override, TestConfig};
use mlops_drift::{DriftReport, Profile, Samples};
use mlops_flows::baseline::{profile_files, read_profile};
use mlops_formats::rows::{FileKind, open_file, read_samples};

/// Test drift between reference and current data (rows or profiles).
///
/// Both are read against a contract; each feature is tested
/// with the method the field's defaults pick (Evidently's: KS or chi-square/z on a reference of
/// up to 1000 rows, normalised Wasserstein or Jensen-Shannon beyond), then the dataset verdict.
/// Exits 0 whether or not the data drifted (the report's `dataset_drift` says which), and 3
/// when nothing could be compared (no current row, or no feature with enough values).
#[derive(Debug, Clone, Args)]
pub struct DriftArgs {
    /// The data contract (YAML); its `features` are tested.
    #[arg(long)]
    pub contract: PathBuf,
    /// The reference: rows (.csv, .jsonl, .ndjson, optionally .gz) such as the training set,
    /// or a profile (.json) such as a model version's baseline.json.
    #[arg(long)]
    pub reference: PathBuf,
    /// The current data: one or more batches of rows or profiles (.json, as ingest writes them
    /// under profiles/), taken together. Profiles are merged; a profile cut on another
    /// baseline is re-binned onto the reference's edges first.
    #[arg(long, required = true, num_args = 1..)]
    pub current: Vec<PathBuf>,
    /// Write the report as JSON here.
    #[arg(long)]
    pub json: Option<PathBuf>,
    /// Write the report as a self-contained HTML page here.
    #[arg(long)]
    pub html: Option<PathBuf>,
    /// Share of drifted features at which the dataset has drifted.
    #[arg(long, default_value_t = 0.5)]
    pub drift_share: f64,
    /// Fewer non-missing values than this in either sample is "insufficient data".
    #[arg(long, default_value_t = 30)]
    pub min_rows: u64,
    /// Multiple-testing correction of the p-value tests: none, bonferroni or bh.
    #[arg(long, default_value = "none", value_parser = parse_correction)]
    pub correction: Correction,
    /// Per-column method and threshold, e.g. --method body_mass_g=psi:0.2 (repeatable).
    /// Methods: ks, chisquare, z, psi, jensenshannon, wasserstein.
    #[arg(long = "method", value_parser = parse_override)]
    pub methods: Vec<(String, Override)>,
}

impl DriftArgs {
    pub fn run(self) -> anyhow::Result<()> {
        let report = run(&self, &mut std::io::stdout())?;
        if mlops_flows::drift_check::status_of(&report) == "insufficient_data" {
            eprintln!("insufficient data: nothing could be compared with the reference");
            std::process::exit(super::invoke::INSUFFICIENT_DATA_EXIT);
        }
        Ok(())
    }

    fn tests(&self) -> TestConfig {
        TestConfig {
            drift_share: self.drift_share,
            min_rows: self.min_rows,
            correction: self.correction,
            ..Default::default()
        }
    }
}

/// Parses `column=method` or `column=method:threshold` (e.g. `body_mass_g=psi:0.2`).
pub fn parse_override(text: &str) -> Result<(String, Override), String> {
    Override::parse_for_column(text)
}

/// Parses `none`, `bonferroni` or `bh`.
pub fn parse_correction(text: &str) -> Result<Correction, String> {
    Correction::from_name(text)
}

fn is_profile(path: &Path) -> bool {
    FileKind::of(&path.to_string_lossy()) == FileKind::Profile
}

/// The reference and current inputs as profiles: profiles read as they are (the current ones
/// merged, re-binned onto the reference when cut on another baseline), row files profiled on
/// the reference's edges.
fn profiles(contract: &Contract, args: &DriftArgs) -> anyhow::Result<(Profile, Profile, u64)> {
    let (reference, mut rejected) = if is_profile(&args.reference) {
        (read_profile(&args.reference)?, 0)
    } else {
        let p = profile_files(contract, std::slice::from_ref(&args.reference), None)?;
        (p.profile, p.rejected)
    };
    anyhow::ensure!(
        reference.dataset == contract.dataset,
        "{} profiles dataset {:?}, and the contract is for {:?}",
        args.reference.display(),
        reference.dataset,
        contract.dataset
    );
    let mut current = Profile::empty_like(contract, &reference);
    for path in &args.current {
        let profile = if is_profile(path) {
            read_profile(path)?
        } else {
            let p = profile_files(contract, std::slice::from_ref(path), Some(&reference))?;
            rejected += p.rejected;
            p.profile
        };
        current.merge_onto(&profile, &reference).with_context(|| format!("merging {}", path.display()))?;
    }
    Ok((reference, current, rejected))
}

fn samples(contract: &Contract, files: &[PathBuf]) -> anyhow::Result<Samples> {
    let mut samples = Samples::new(contract);
    for file in files {
        let name = file.display().to_string();
        let input = open_file(file).with_context(|| format!("reading {name}"))?;
        read_samples(&mut samples, contract, &name, input).with_context(|| format!("reading {name}"))?;
    }
    Ok(samples)
}

/// Runs the comparison, writes the requested outputs and a summary to `out`.
pub fn run(args: &DriftArgs, out: &mut impl Write) -> anyhow::Result<DriftReport> {
    let contract = Contract::load(&args.contract)?;
    for (column, _) in &args.methods {
        anyhow::ensure!(
            contract.column(column).is_some(),
            "--method {column}=…: the contract has no column {column:?}"
        );
    }
    let overrides = args.methods.iter().cloned().collect();
    let from_profiles = is_profile(&args.reference) || args.current.iter().any(|p| is_profile(p));
    let (drift, rejected) = if from_profiles {
        let (reference, current, rejected) = profiles(&contract, args)?;
        (mlops_drift::of_profiles(&contract, &reference, &current, &args.tests(), &overrides)?, rejected)
    } else {
        let reference = samples(&contract, std::slice::from_ref(&args.reference))?;
        let current = samples(&contract, &args.current)?;
        let rejected = reference.rejected + current.rejected;
        (mlops_drift::of_samples(&contract.dataset, &reference, &current, &args.tests(), &overrides)?, rejected)
    };
    let report = drift.report;
    write_summary(&report, rejected, from_profiles, out)?;
    if let Some(path) = &args.json {
        std::fs::write(path, serde_json::to_vec_pretty(&report)?)
            .with_context(|| format!("writing {}", path.display()))?;
        writeln!(out, "report: {}", path.display())?;
    }
    if let Some(path) = &args.html {
        let meta = mlops_formats::html::ReportMeta {
            generated_at: Some(chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true)),
            reference: Some(args.reference.display().to_string()),
            current: args.current.iter().map(|p| p.display().to_string()).collect(),
            ..Default::default()
        };
        let html = mlops_formats::html::render(&report, &drift.charts, &meta);
        std::fs::write(path, html).with_context(|| format!("writing {}", path.display()))?;
        writeln!(out, "html: {}", path.display())?;
    }
    Ok(report)
}

fn write_summary(report: &DriftReport, rejected: u64, from_profiles: bool, out: &mut impl Write) -> anyhow::Result<()> {
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
        let statistic = if t.from_sketch { format!("≈{}", show(t.statistic)) } else { show(t.statistic) };
        writeln!(
            out,
            "{:<24} {:<12} {:<14} {:>12} {:>12} {:>10}  {}",
            f.column,
            f.kind,
            t.method.name(),
            statistic,
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
        if rejected > 0 { format!(" ({rejected} rows the contract rejects left out)") } else { String::new() }
    )?;
    if from_profiles && report.columns.iter().any(|f| f.test.from_sketch) {
        writeln!(out, "≈: computed from the profiles' sketches, within their error bounds")?;
    }
    Ok(())
}

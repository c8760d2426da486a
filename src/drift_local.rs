//! `mlops drift`: the drift tests on local files — a reference and one or more current inputs,
//! each a batch of rows (CSV or JSON Lines, optionally gzip) or a profile (JSON, as ingest and
//! `mlops profile` write them), read against a contract — with the report as JSON and as a
//! self-contained HTML page.
//!
//! When every input is rows, the exact samples are compared. When any input is a profile, every
//! input is taken as a profile (rows are profiled first) and the profiles are compared.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};

use anyhow::Context as _;
use mlops_core::compare::{DriftReport, Samples, compare};
use mlops_core::drift::compare_profiles;
use mlops_core::profile::Profiler;
use mlops_core::reading::{FileKind, read_batch};
use mlops_core::stats::{Correction, Override, TestConfig};
use mlops_core::{Contract, Profile};

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
    Override::parse_for_column(text).map_err(|e| anyhow::anyhow!("--method {e}"))
}

/// Parses `none`, `bonferroni` or `bh`.
pub fn parse_correction(text: &str) -> anyhow::Result<Correction> {
    Correction::from_name(text).map_err(|e| anyhow::anyhow!("--correction {e}"))
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

/// Whether a path names a profile (`.json`, not `.jsonl`) rather than rows.
pub fn is_profile(path: &Path) -> bool {
    let name = path.display().to_string();
    let name = name.strip_suffix(".gz").unwrap_or(&name);
    name.ends_with(".json")
}

fn read_profile(path: &Path) -> anyhow::Result<Profile> {
    let mut bytes = Vec::new();
    open(path)?.read_to_end(&mut bytes).with_context(|| format!("reading {}", path.display()))?;
    Ok(Profile::from_json(&bytes, &path.display().to_string())?)
}

/// Calls `on_values` with every valid row of `files`; returns the number of rows the contract
/// rejected.
fn each_row(
    contract: &Contract,
    files: &[PathBuf],
    mut on_values: impl FnMut(&[mlops_core::validate::Value]),
) -> anyhow::Result<u64> {
    let mut rejected = 0;
    for file in files {
        let name = file.display().to_string();
        read_batch(contract, FileKind::of(&name), open(file)?, |row| {
            match &row.outcome {
                Ok(values) => on_values(values),
                Err(_) => rejected += 1,
            }
            Ok(())
        })
        .map_err(|e| anyhow::anyhow!("{name}: {e}"))?;
    }
    Ok(rejected)
}

/// A profile of row files: on `baseline`'s histogram edges, or, without one, a baseline of its
/// own (deciles of each numeric column, which takes a first pass over the files). Returns the
/// profile and the number of rows the contract rejected.
pub fn profile_rows(
    contract: &Contract,
    files: &[PathBuf],
    baseline: Option<&Profile>,
) -> anyhow::Result<(Profile, u64)> {
    let empty = match baseline {
        Some(b) => Profile::empty_like(contract, b),
        None => {
            let numeric: Vec<(usize, String)> = contract
                .columns
                .iter()
                .enumerate()
                .filter(|(_, c)| c.kind.is_numeric())
                .map(|(i, c)| (i, c.name.clone()))
                .collect();
            let mut values: Vec<Vec<f64>> = vec![Vec::new(); numeric.len()];
            each_row(contract, files, |row| {
                for ((i, _), v) in numeric.iter().zip(values.iter_mut()) {
                    if let Some(x) = row.get(*i).and_then(mlops_core::validate::Value::as_f64) {
                        v.push(x);
                    }
                }
            })?;
            Profile::empty_with_deciles(contract, numeric.into_iter().map(|(_, n)| n).zip(values).collect())
        }
    };
    let mut profiler = Profiler::new(contract, empty);
    let rejected = each_row(contract, files, |row| profiler.observe(row))?;
    Ok((profiler.finish(), rejected))
}

/// The reference and current inputs as profiles: profiles read as they are (the current ones
/// merged), row files profiled on the reference's edges.
fn profiles(contract: &Contract, args: &DriftArgs) -> anyhow::Result<(Profile, Profile, u64)> {
    let (reference, mut rejected) = if is_profile(&args.reference) {
        (read_profile(&args.reference)?, 0)
    } else {
        profile_rows(contract, std::slice::from_ref(&args.reference), None)?
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
            let (p, r) = profile_rows(contract, std::slice::from_ref(path), Some(&reference))?;
            rejected += r;
            p
        };
        current.merge(&profile).with_context(|| format!("merging {}", path.display()))?;
    }
    Ok((reference, current, rejected))
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
    let from_profiles = is_profile(&args.reference) || args.current.iter().any(|p| is_profile(p));
    let (report, charts, rejected) = if from_profiles {
        let (reference, current, rejected) = profiles(&contract, args)?;
        let report = compare_profiles(&contract, &reference, &current, &args.config, &args.overrides)?;
        let names: Vec<&str> = report.columns.iter().map(|f| f.column.as_str()).collect();
        let charts = mlops_core::charts::from_profiles(names, &reference, &current);
        (report, charts, rejected)
    } else {
        let read = |files: &[PathBuf]| -> anyhow::Result<Samples> {
            let mut samples = Samples::new(&contract);
            for file in files {
                samples.read(&contract, &file.display().to_string(), open(file)?)?;
            }
            Ok(samples)
        };
        let reference = read(std::slice::from_ref(&args.reference))?;
        let current = read(&args.current)?;
        let report = compare(&contract.dataset, &reference, &current, &args.config, &args.overrides)?;
        let charts = mlops_core::charts::from_samples(&reference, &current);
        (report, charts, reference.rejected + current.rejected)
    };
    write_summary(&report, rejected, from_profiles, out)?;
    if let Some(path) = &args.json {
        std::fs::write(path, serde_json::to_vec_pretty(&report)?)
            .with_context(|| format!("writing {}", path.display()))?;
        writeln!(out, "report: {}", path.display())?;
    }
    if let Some(path) = &args.html {
        let html = mlops_core::report_html::render(&report, &charts);
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

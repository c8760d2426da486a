//! `mlops model`: the model registry — register a version with its lineage, decide on it,
//! list versions, show one.

use std::path::PathBuf;

use anyhow::Context as _;
use clap::{Args, Subcommand};
use mlops_contract::Contract;
use mlops_flows::baseline::training_baseline;
use mlops_lake::registry::{self, Approval, ApprovalStatus, Lineage, Manifest};
use mlops_lake::{Lake, ModelRef};
use mlops_pipeline::register::{NewVersion, register_model};

use super::{LakeArgs, lake_hint};

#[derive(Debug, Subcommand)]
pub enum ModelCommand {
    /// Upload a model with its contract, a baseline computed from its training data and a
    /// manifest, as the next immutable version.
    Register(RegisterCommand),
    /// List the registered versions of a model: status, metrics, digest, parent.
    List(ListArgs),
    /// Show a version's whole lineage: data, parameters, metrics, evaluation, approval.
    Show(ShowArgs),
    /// Approve a version (a decision is made once; it is kept apart from the immutable files).
    Approve(DecideArgs),
    /// Reject a version.
    Reject(DecideArgs),
}

impl ModelCommand {
    pub async fn run(self) -> anyhow::Result<()> {
        match self {
            ModelCommand::Register(RegisterCommand { args, lake }) => {
                let lake = lake.connect().await?;
                let (manifest, created) = register_once(&lake, &args).await.map_err(lake_hint)?;
                println!("{}", serde_json::to_string_pretty(&manifest)?);
                if created {
                    eprintln!(
                        "registered {} v{} in s3://{} (baseline {}), pending approval",
                        manifest.name,
                        manifest.version,
                        lake.bucket(),
                        manifest.baseline_id.as_deref().unwrap_or("-")
                    );
                } else {
                    eprintln!(
                        "{} v{} already holds this model, contract and baseline: no new version",
                        manifest.name, manifest.version
                    );
                }
                Ok(())
            }
            ModelCommand::List(args) => {
                let lake = args.lake.connect().await?;
                print!("{}", list(&lake, &args.name).await.map_err(lake_hint)?);
                Ok(())
            }
            ModelCommand::Show(args) => {
                let lake = args.lake.connect().await?;
                print!("{}", show(&lake, &args.model).await.map_err(lake_hint)?);
                Ok(())
            }
            ModelCommand::Approve(args) => args.decide(ApprovalStatus::Approved).await,
            ModelCommand::Reject(args) => args.decide(ApprovalStatus::Rejected).await,
        }
    }
}

/// What to register.
#[derive(Debug, Clone, Args)]
pub struct RegisterArgs {
    /// Model name, e.g. penguins.
    #[arg(long)]
    pub name: String,
    /// The ONNX file.
    #[arg(long)]
    pub model: PathBuf,
    /// The data contract (YAML).
    #[arg(long)]
    pub contract: PathBuf,
    /// The training data the baseline is computed from: .csv, .jsonl or .ndjson, optionally
    /// .gz (streamed, never held whole).
    #[arg(long)]
    pub train: PathBuf,
    /// Metrics to record in the manifest (a JSON file).
    #[arg(long)]
    pub metrics: Option<PathBuf>,
    /// Class names indexed by the model's integer labels, comma-separated [default: those
    /// the model records, as `mlops train` writes them].
    #[arg(long, value_delimiter = ',')]
    pub class_labels: Option<Vec<String>>,
    #[command(flatten)]
    pub lineage: LineageArgs,
}

/// Where a version comes from, recorded in its manifest.
#[derive(Debug, Clone, Default, Args)]
pub struct LineageArgs {
    /// The training record [default: the model's path with .training.json, if it exists].
    #[arg(long)]
    pub training_record: Option<PathBuf>,
    /// The evaluation record (`mlops evaluate --json`).
    #[arg(long)]
    pub evaluation: Option<PathBuf>,
    /// The parent version [default: the champion of the evaluation record].
    #[arg(long)]
    pub parent: Option<u32>,
    /// The code version [default: MLOPS_CODE_VERSION, CODEBUILD_RESOLVED_SOURCE_VERSION,
    /// GITHUB_SHA, or the git commit of the current directory].
    #[arg(long)]
    pub code_version: Option<String>,
    /// Who registers it [default: MLOPS_USER or USER].
    #[arg(long)]
    pub by: Option<String>,
}

/// `mlops model approve|reject NAME@VERSION --reason …`.
#[derive(Debug, Clone, Args)]
pub struct DecideArgs {
    /// The version, NAME@VERSION.
    pub model: ModelRef,
    /// Why: kept with the decision.
    #[arg(long)]
    pub reason: String,
    /// Who decides [default: MLOPS_USER or USER].
    #[arg(long)]
    pub by: Option<String>,
    #[command(flatten)]
    pub lake: LakeArgs,
}

impl DecideArgs {
    async fn decide(self, status: ApprovalStatus) -> anyhow::Result<()> {
        if self.reason.trim().is_empty() {
            anyhow::bail!("--reason must say why");
        }
        let lake = self.lake.connect().await?;
        let decision =
            Approval { status, reason: self.reason.clone(), by: who(self.by.as_deref()), at: chrono::Utc::now() };
        registry::decide(&lake, &self.model.name, self.model.version, &decision)
            .await
            .map_err(|e| lake_hint(e.into()))?;
        println!("{} {status} by {}: {}", self.model, decision.by, decision.reason);
        // A retraining run waiting for this decision goes on with it.
        let client = super::pipeline::sfn_client().await;
        let waiting =
            super::pipeline::notify_waiting_run(&lake, &client, &self.model.name, self.model.version, &decision);
        if let Some(run) = waiting.await? {
            println!("sent the decision to retraining run {run}");
        }
        Ok(())
    }
}

#[derive(Debug, Clone, Args)]
pub struct ShowArgs {
    /// The version, NAME@VERSION.
    pub model: ModelRef,
    #[command(flatten)]
    pub lake: LakeArgs,
}

/// Who is acting: the flag, or MLOPS_USER, or USER.
pub fn who(flag: Option<&str>) -> String {
    flag.map(str::to_string)
        .or_else(|| std::env::var("MLOPS_USER").ok())
        .or_else(|| std::env::var("USER").ok())
        .filter(|s| !s.trim().is_empty())
        .unwrap_or_else(|| "unknown".into())
}

/// The code version from the flag, the CI's environment, or git.
pub fn code_version(flag: Option<&str>) -> Option<String> {
    if let Some(v) = flag {
        return Some(v.to_string());
    }
    for name in ["MLOPS_CODE_VERSION", "CODEBUILD_RESOLVED_SOURCE_VERSION", "GITHUB_SHA"] {
        if let Ok(v) = std::env::var(name)
            && !v.trim().is_empty()
        {
            return Some(v);
        }
    }
    let out = std::process::Command::new("git").args(["rev-parse", "HEAD"]).output().ok()?;
    out.status.success().then(|| String::from_utf8_lossy(&out.stdout).trim().to_string()).filter(|s| !s.is_empty())
}

fn read_json(path: &std::path::Path) -> anyhow::Result<serde_json::Value> {
    let bytes = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
    serde_json::from_slice(&bytes).with_context(|| format!("{} is not JSON", path.display()))
}

/// The lineage of a registration, from its files and the environment.
fn lineage(args: &RegisterArgs) -> anyhow::Result<Lineage> {
    let l = &args.lineage;
    let record_path = l.training_record.clone().or_else(|| {
        let beside = super::train::record_path(&args.model);
        beside.is_file().then_some(beside)
    });
    let training = record_path.as_deref().map(read_json).transpose()?;
    let evaluation = l.evaluation.as_deref().map(read_json).transpose()?;
    let champion = evaluation
        .as_ref()
        .and_then(|e| e["champion"]["model"].as_str())
        .and_then(|m| m.parse::<ModelRef>().ok())
        .filter(|m| m.name == args.name)
        .map(|m| m.version);
    Ok(Lineage {
        training,
        evaluation,
        parent_version: l.parent.or(champion),
        code_version: code_version(l.code_version.as_deref()),
        registered_by: who(l.by.as_deref()),
    })
}

/// `mlops model register`: what to register, and where.
#[derive(Debug, Clone, Args)]
pub struct RegisterCommand {
    #[command(flatten)]
    pub args: RegisterArgs,
    #[command(flatten)]
    pub lake: LakeArgs,
}

#[derive(Debug, Clone, Args)]
pub struct ListArgs {
    /// The model's name.
    #[arg(long)]
    pub name: String,
    #[command(flatten)]
    pub lake: LakeArgs,
}

/// Reads the files, checks that the model fits the contract, computes the baseline from the
/// training data and registers the next version (or returns the version that already holds
/// these artifacts).
pub async fn register(lake: &Lake, args: &RegisterArgs) -> anyhow::Result<Manifest> {
    Ok(register_once(lake, args).await?.0)
}

/// [`register`], saying whether a new version was made.
pub async fn register_once(lake: &Lake, args: &RegisterArgs) -> anyhow::Result<(Manifest, bool)> {
    let contract = Contract::load(&args.contract)?;
    let bytes = std::fs::read(&args.model).with_context(|| format!("reading {}", args.model.display()))?;
    let baseline = training_baseline(&contract, std::slice::from_ref(&args.train))?;
    if baseline.rejected > 0 {
        eprintln!(
            "{} rows of {} break the contract and are left out of the baseline",
            baseline.rejected,
            args.train.display()
        );
    }
    let lineage = lineage(args)?;
    // The metrics: the file given, or the training record's validation (else training) metrics.
    let metrics = match &args.metrics {
        Some(path) => Some(read_json(path)?),
        None => lineage.training.as_ref().and_then(|t| {
            let m = &t["metrics"];
            m.get("validation").or_else(|| m.get("training")).cloned()
        }),
    };
    let version = NewVersion {
        name: &args.name,
        model: &bytes,
        contract: &contract,
        baseline: &baseline.profile,
        class_labels: args.class_labels.clone(),
        metrics,
        lineage: Some(lineage),
    };
    register_model(lake, version)
        .await
        .with_context(|| format!("registering {} with {}", args.model.display(), args.contract.display()))
}

/// A line per version: status, the headline metric, digest, parent.
pub async fn list(lake: &Lake, name: &str) -> anyhow::Result<String> {
    let mut out = format!(
        "{:<8} {:<22} {:<22} {:<26} {:<14} {}\n",
        "version", "created", "status", "metrics", "sha256", "parent"
    );
    let versions = registry::versions(lake, name).await?;
    if versions.is_empty() {
        anyhow::bail!("no version of {name} is registered in s3://{}", lake.bucket());
    }
    for v in versions {
        let stored = registry::load_reference(lake, name, v).await?;
        let m = &stored.manifest;
        let status =
            registry::approval(lake, name, v).await?.map_or(ApprovalStatus::PendingManualApproval, |a| a.status);
        out.push_str(&format!(
            "v{:<7} {:<20} {:<22} {:<32} {:<13} {}\n",
            v,
            m.created_at.format("%Y-%m-%d %H:%M:%S"),
            status.to_string(),
            headline(m.metrics.as_ref()),
            &m.model_sha256[..12.min(m.model_sha256.len())],
            m.lineage.as_ref().and_then(|l| l.parent_version).map_or("-".into(), |p| format!("v{p}")),
        ));
    }
    Ok(out)
}

/// The headline metrics of a manifest: accuracy and macro-F1, or RMSE and R².
fn headline(metrics: Option<&serde_json::Value>) -> String {
    let Some(m) = metrics else { return "-".into() };
    let pick = |names: &[&str]| -> Vec<String> {
        names
            .iter()
            .filter_map(|n| m.get(*n).and_then(serde_json::Value::as_f64).map(|v| format!("{n} {v:.3}")))
            .collect()
    };
    let shown = pick(&["accuracy", "macro_f1"]);
    let shown = if shown.is_empty() { pick(&["rmse", "r2"]) } else { shown };
    if shown.is_empty() { "-".into() } else { shown.join(" ") }
}

/// A version's lineage, for people.
pub async fn show(lake: &Lake, model: &ModelRef) -> anyhow::Result<String> {
    let stored = registry::load_reference(lake, &model.name, model.version).await?;
    let m = &stored.manifest;
    let approval = registry::approval(lake, &model.name, model.version).await?;
    let mut out = String::new();
    out.push_str(&format!("{model}  dataset {} (contract v{})\n", m.dataset, m.contract_version));
    out.push_str(&format!("  created     {}\n", m.created_at.to_rfc3339()));
    out.push_str(&format!("  model       sha256 {} ({} bytes)\n", m.model_sha256, m.model_bytes));
    out.push_str(&format!("  baseline    {}\n", m.baseline_id.as_deref().unwrap_or("-")));
    if let Some(labels) = &m.class_labels {
        out.push_str(&format!("  classes     {}\n", labels.join(", ")));
    }
    match &approval {
        Some(a) => {
            out.push_str(&format!("  approval    {} by {} at {}: {}\n", a.status, a.by, a.at.to_rfc3339(), a.reason))
        }
        None => out.push_str("  approval    PendingManualApproval\n"),
    }
    let Some(l) = &m.lineage else {
        out.push_str("  lineage     none recorded (registered before lineage was kept)\n");
        return Ok(out);
    };
    out.push_str(&format!("  registered  by {}\n", l.registered_by));
    out.push_str(&format!("  code        {}\n", l.code_version.as_deref().unwrap_or("unknown")));
    out.push_str(&format!("  parent      {}\n", l.parent_version.map_or("-".into(), |p| format!("{}@{p}", m.name))));
    if let Some(t) = &l.training {
        out.push_str(&format!(
            "  trained     by {} {} in {:.0} ms on {} rows (snapshot sha256 {})\n",
            t["trainer"].as_str().unwrap_or("?"),
            t["trainer_version"].as_str().unwrap_or(""),
            t["duration_ms"].as_f64().unwrap_or(0.0),
            t["data"]["rows"],
            t["data"]["sha256"].as_str().map_or("-", |s| &s[..16.min(s.len())]),
        ));
        for input in t["data"]["inputs"].as_array().into_iter().flatten() {
            out.push_str(&format!(
                "    input     {} ({} rows, sha256 {})\n",
                input["key"].as_str().unwrap_or("?"),
                input["rows"],
                input["sha256"].as_str().map_or("-", |s| &s[..16.min(s.len())])
            ));
        }
        if let Some(p) = t.get("parameters").filter(|p| !p.is_null()) {
            out.push_str(&format!("    parameters {p}\n"));
        }
        for split in ["training", "validation"] {
            if let Some(metrics) = t["metrics"].get(split) {
                out.push_str(&format!("    {split:<10} {}\n", headline(Some(metrics))));
            }
        }
    }
    if let Some(e) = &l.evaluation {
        out.push_str(&format!(
            "  evaluated   on {} holdout rows: {}\n",
            e["rows"],
            e["verdict"]["decision"].as_str().unwrap_or("?")
        ));
        out.push_str(&format!("    candidate  {}\n", headline(e["candidate"].get("metrics"))));
        if let Some(c) = e.get("champion").filter(|c| !c.is_null()) {
            out.push_str(&format!(
                "    champion   {} {}\n",
                c["model"].as_str().unwrap_or("?"),
                headline(c.get("metrics"))
            ));
        }
        for outcome in e["verdict"]["outcomes"].as_array().into_iter().flatten() {
            out.push_str(&format!(
                "    {:<10} {}: {}\n",
                outcome["result"].as_str().unwrap_or("?"),
                outcome["rule"]["metric"].as_str().unwrap_or("?"),
                outcome["reason"].as_str().unwrap_or("")
            ));
        }
    }
    Ok(out)
}

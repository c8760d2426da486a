//! `mlops evaluate`: a candidate's metrics on holdout rows, against the champion's on the same
//! rows, and the gate's decision.

use std::path::PathBuf;

use anyhow::{Context as _, bail};
use clap::Args;
use mlops_contract::Contract;
use mlops_lake::{ModelRef, registry};
use mlops_model::{Model, Scorer};
use mlops_train::evaluate::{Evaluated, EvaluationRecord, evaluate};
use mlops_train::gate::Gate;
use mlops_train::metrics::Metrics;
use sha2::{Digest, Sha256};

use super::{LakeArgs, data, lake_hint};

/// Evaluate a model on holdout rows, against the champion, and decide.
///
/// Metrics by task, computed through the scorer predict uses: accuracy, macro-F1, log loss,
/// ROC AUC (one-vs-rest macro for several classes) and per-class precision and recall;
/// RMSE, MAE and R² for a regression. With --champion, both models are scored on the same
/// rows and the gate decides PROMOTE, HOLD or REJECT from its rules (absolute floors,
/// minimum absolute or relative improvements); without --gate the candidate must be at least
/// as good as the champion on macro-F1 (or RMSE). Every rule's outcome and reason goes to
/// the --json record.
#[derive(Debug, Args)]
pub struct EvaluateArgs {
    /// The candidate: an ONNX file, or NAME@VERSION from the registry.
    #[arg(long)]
    pub model: String,
    /// The contract of the holdout rows (and of a candidate file): its target is the truth.
    #[arg(long)]
    pub contract: PathBuf,
    /// The model serving now, NAME@VERSION from the registry.
    #[arg(long)]
    pub champion: Option<String>,
    /// The gate's rules (YAML): `rules: [{metric, threshold, min_absolute_change,
    /// min_relative_change, greater_is_better}]`.
    #[arg(long)]
    pub gate: Option<PathBuf>,
    /// Where to write the evaluation record (JSON).
    #[arg(long)]
    pub json: Option<PathBuf>,
    /// Holdout rows: .csv, .jsonl, .ndjson (optionally .gz) or curated .parquet files, or
    /// s3:// objects and prefixes.
    #[arg(required = true, num_args = 1..)]
    pub holdout: Vec<String>,
    #[command(flatten)]
    pub lake: LakeArgs,
}

/// A model and what evaluating it needs.
struct Loaded {
    name: String,
    sha256: String,
    scorer: Scorer,
    contract: Contract,
    class_labels: Option<Vec<String>>,
}

impl Loaded {
    fn evaluated(&self) -> Evaluated<'_> {
        Evaluated {
            model: self.name.clone(),
            sha256: self.sha256.clone(),
            scorer: &self.scorer,
            contract: &self.contract,
            class_labels: self.class_labels.clone(),
        }
    }
}

impl EvaluateArgs {
    pub async fn run(self) -> anyhow::Result<()> {
        let contract = Contract::load(&self.contract)?;
        let gate = match &self.gate {
            Some(path) => {
                let text = std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
                Some(Gate::from_yaml(&text, &path.display().to_string())?)
            }
            None => None,
        };
        let candidate = self.load(&self.model, &contract).await?;
        let champion = match &self.champion {
            Some(spec) => Some(self.load(spec, &contract).await?),
            None => None,
        };
        let holdout = data::read(&contract, &self.holdout).await?;
        if holdout.rows.is_empty() {
            bail!("the holdout holds no row that satisfies the contract of {}", contract.dataset);
        }
        let record = tokio::task::block_in_place(|| {
            evaluate(
                &contract,
                &holdout.rows,
                &candidate.evaluated(),
                champion.as_ref().map(Loaded::evaluated).as_ref(),
                gate,
            )
        })?;
        print!("{}", report(&record));
        if let Some(path) = &self.json {
            std::fs::write(path, serde_json::to_vec_pretty(&record)?)
                .with_context(|| format!("writing {}", path.display()))?;
            println!("record {}", path.display());
        }
        Ok(())
    }

    async fn load(&self, spec: &str, contract: &Contract) -> anyhow::Result<Loaded> {
        if std::path::Path::new(spec).is_file() {
            let bytes = std::fs::read(spec).with_context(|| format!("reading {spec}"))?;
            let model = Model::load(&bytes).with_context(|| format!("loading {spec}"))?;
            let class_labels = mlops_train::onnx::class_labels(&bytes).or_else(|| {
                let target = contract.target.as_ref().and_then(|t| contract.column(t))?;
                target.allowed.clone()
            });
            let scorer = Scorer::new(model, contract, class_labels.clone())
                .with_context(|| format!("{spec} does not fit {}", self.contract.display()))?;
            let sha256 = hex::encode(Sha256::digest(&bytes));
            return Ok(Loaded { name: spec.to_string(), sha256, scorer, contract: contract.clone(), class_labels });
        }
        let model_ref: ModelRef =
            spec.parse().with_context(|| format!("{spec:?} is neither an existing file nor NAME@VERSION"))?;
        let lake = self.lake.connect().await?;
        let (stored, bytes) =
            registry::load(&lake, &model_ref.name, model_ref.version).await.map_err(|e| lake_hint(e.into()))?;
        let model = Model::load(&bytes)?;
        let class_labels = stored.manifest.class_labels.clone();
        let scorer = Scorer::new(model, &stored.contract, class_labels.clone())?;
        Ok(Loaded {
            name: model_ref.to_string(),
            sha256: stored.manifest.model_sha256,
            scorer,
            contract: stored.contract,
            class_labels,
        })
    }
}

/// The metrics side by side, the decision and each rule's reason.
pub fn report(record: &EvaluationRecord) -> String {
    let mut out = String::new();
    let champion = record.champion.as_ref();
    out.push_str(&format!("holdout: {} rows with a target ({} without)\n", record.rows, record.without_target));
    out.push_str(&format!(
        "{:<12} {:>14}{}\n",
        "metric",
        "candidate",
        champion.map_or(String::new(), |c| format!(" {:>14}", format!("champion {}", c.model)))
    ));
    let names: &[&str] = match &record.candidate.metrics {
        Metrics::Classification(_) => &["accuracy", "macro_f1", "log_loss", "roc_auc"],
        Metrics::Regression(_) => &["rmse", "mae", "r2"],
    };
    let show = |v: Option<f64>| v.map_or("n/a".to_string(), |v| format!("{v:.4}"));
    for name in names {
        out.push_str(&format!(
            "{name:<12} {:>14}{}\n",
            show(record.candidate.metrics.get(name)),
            champion.map_or(String::new(), |c| format!(" {:>14}", show(c.metrics.get(name))))
        ));
    }
    if let Metrics::Classification(c) = &record.candidate.metrics {
        for class in &c.per_class {
            out.push_str(&format!(
                "  {:<18} precision {:.4}  recall {:.4}  (support {})\n",
                class.class, class.precision, class.recall, class.support
            ));
        }
    }
    out.push_str(&format!("decision: {}\n", record.verdict.decision));
    for outcome in &record.verdict.outcomes {
        out.push_str(&format!("  {:<6} {}: {}\n", outcome.result, outcome.rule.metric, outcome.reason));
    }
    out
}

//! `mlops quality`: the model-quality check of drift-check, on its own: captured predictions
//! joined with ground truth, per model version and per day.

use std::path::PathBuf;

use anyhow::Context as _;
use clap::Args;
use mlops_flows::quality::{QualityConfig, QualityGroup, QualityReport, emf_lines, run_quality_check};
use mlops_metrics::Metrics;

use super::{LakeArgs, lake_hint};

/// Join a model's captured predictions with ground truth and measure it, per version and day.
///
/// Reads `capture/<model>/dt=…/` (what predict captured) for the last --days days and the
/// labels curated under `curated/<labels>/` since then; the labels' contract
/// (`datasets/<labels>/contract.yaml`) names the id column that equals a capture's inference
/// id and the label (its target). Prints accuracy, macro-F1, log loss and ROC AUC (or RMSE, MAE
/// and R²) computed as `mlops evaluate` computes them, the prediction and label distributions
/// against the version's reference, and the floors of `pipelines/<model>/gate.yaml`; writes
/// the report under `reports/quality/<model>/`. Exits 3 when no version has --min-rows joined
/// rows (insufficient data).
#[derive(Debug, Args)]
pub struct QualityArgs {
    /// The model whose captures are measured.
    #[arg(long)]
    pub model: String,
    /// The dataset holding the ground truth.
    #[arg(long)]
    pub labels: String,
    /// Days of captures, ending today.
    #[arg(long, default_value_t = 7)]
    pub days: u32,
    /// Fewer joined rows than this in a group is insufficient data.
    #[arg(long, default_value_t = 30)]
    pub min_rows: u64,
    /// Also write the report here (JSON).
    #[arg(long)]
    pub json: Option<PathBuf>,
    /// Print the EMF lines CloudWatch would receive.
    #[arg(long)]
    pub emf: bool,
    #[command(flatten)]
    pub lake: LakeArgs,
}

impl QualityArgs {
    pub async fn run(self) -> anyhow::Result<()> {
        let lake = self.lake.connect().await?;
        let config = QualityConfig {
            model_name: self.model.clone(),
            labels_dataset: self.labels.clone(),
            window_days: self.days.max(1),
            min_rows: self.min_rows.max(1),
        };
        let (report, key) =
            run_quality_check(&lake, &config, chrono::Utc::now()).await.map_err(|e| lake_hint(e.into()))?;
        print!("{}", text(&report));
        println!("report s3://{}/{key}", lake.bucket());
        if self.emf {
            for line in emf_lines(&report) {
                println!("{line}");
            }
        }
        if let Some(path) = &self.json {
            std::fs::write(path, serde_json::to_vec_pretty(&report)?)
                .with_context(|| format!("writing {}", path.display()))?;
        }
        if report.status == "insufficient_data" {
            eprintln!("insufficient data: no version has {} captured rows with a label", self.min_rows);
            std::process::exit(super::invoke::INSUFFICIENT_DATA_EXIT);
        }
        Ok(())
    }
}

fn row(group: &QualityGroup) -> String {
    let when = group.day.map_or_else(|| "all days".to_string(), |d| d.to_string());
    let figures = match &group.metrics {
        Some(Metrics::Classification(c)) => format!(
            "accuracy {:.4}  macro_f1 {:.4}  log_loss {:.4}  roc_auc {}",
            c.accuracy,
            c.macro_f1,
            c.log_loss,
            c.roc_auc.map_or("n/a".into(), |v| format!("{v:.4}"))
        ),
        Some(Metrics::Regression(r)) => format!("rmse {:.4}  mae {:.4}  r2 {:.4}", r.rmse, r.mae, r.r2),
        None => "insufficient data".into(),
    };
    let drift = |t: &Option<mlops_flows::quality::DistributionTest>, name: &str| {
        t.as_ref().map_or(String::new(), |t| {
            format!("  {name} p={:.4}{}", t.p_value, if t.drifted { " CHANGED" } else { "" })
        })
    };
    format!(
        "  v{:<3} {:<10} {:>6} rows  {figures}{}{}\n",
        group.model_version,
        when,
        group.rows,
        drift(&group.prediction_drift, "predictions"),
        drift(&group.label_drift, "labels")
    )
}

/// The report as text: per version, then per day, then the floors.
pub fn text(report: &QualityReport) -> String {
    let mut out = format!(
        "model quality of {} from {} to {}: {} captured, {} labels, {} joined ({})\n",
        report.model,
        report.window.from,
        report.window.to,
        report.captured,
        report.labelled,
        report.joined,
        report.status
    );
    for group in report.versions.iter().chain(&report.days) {
        out.push_str(&row(group));
    }
    for floor in &report.floors {
        out.push_str(&format!(
            "  floor v{} {} {:.4} {} {}: {}\n",
            floor.model_version,
            floor.metric,
            floor.value,
            if floor.greater_is_better { ">=" } else { "<=" },
            floor.floor,
            if floor.below { "BELOW" } else { "met" }
        ));
    }
    if report.degraded {
        out.push_str("quality degraded: drift-check sends ModelQualityDegraded\n");
    }
    out
}

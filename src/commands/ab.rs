//! `mlops ab`: the A/B test between the champion and the challenger predict serves
//! (`AB_MODEL_VERSION`, `AB_WEIGHT`), compared on outcomes.

use anyhow::Context as _;
use chrono::NaiveDate;
use clap::{Args, Subcommand};
use mlops_flows::quality::{AbConfig, AbReport, run_ab_report};

use super::{LakeArgs, lake_hint};

#[derive(Debug, Subcommand)]
pub enum AbCommand {
    Report(ReportArgs),
}

impl AbCommand {
    pub async fn run(self) -> anyhow::Result<()> {
        match self {
            AbCommand::Report(args) => args.run().await,
        }
    }
}

/// Compare the A/B test's variants on their captured predictions joined with ground truth.
///
/// For each variant: the requests it answered, its outcomes (captured rows with a label), its
/// accuracy with Wilson's 95% interval (a classifier) or its mean absolute error with a
/// Student-t interval (a regressor), and every evaluation metric; then the two-proportion
/// z-test (or Welch's t-test) of the difference, and a recommendation: promote the challenger,
/// keep the champion, or not enough data yet, with the outcomes per variant that the observed
/// difference needs. Writes the report under reports/ab/<model>/.
#[derive(Debug, Args)]
pub struct ReportArgs {
    /// The model under test.
    #[arg(long)]
    pub model: String,
    /// The dataset holding the ground truth.
    #[arg(long)]
    pub labels: String,
    /// Captures from this day on (YYYY-MM-DD); the last 14 days by default.
    #[arg(long)]
    pub since: Option<NaiveDate>,
    /// Outcomes per variant below which no decision is made.
    #[arg(long, default_value_t = 30)]
    pub min_rows: u64,
    /// The significance level.
    #[arg(long, default_value_t = 0.05)]
    pub alpha: f64,
    /// The power the needed sample size is computed for.
    #[arg(long, default_value_t = 0.8)]
    pub power: f64,
    #[command(flatten)]
    pub lake: LakeArgs,
}

impl ReportArgs {
    pub async fn run(self) -> anyhow::Result<()> {
        if !(0.0 < self.alpha && self.alpha < 1.0 && 0.0 < self.power && self.power < 1.0) {
            anyhow::bail!("--alpha and --power must be between 0 and 1");
        }
        let lake = self.lake.connect().await?;
        let now = chrono::Utc::now();
        let config = AbConfig {
            model_name: self.model.clone(),
            labels_dataset: self.labels.clone(),
            since: self.since.unwrap_or_else(|| (now - chrono::Duration::days(13)).date_naive()),
            min_rows: self.min_rows.max(1),
            alpha: self.alpha,
            power: self.power,
        };
        let (report, key) =
            run_ab_report(&lake, &config, now).await.map_err(|e| lake_hint(e.into())).context("the A/B report")?;
        print!("{}", text(&report));
        println!("report s3://{}/{key}", lake.bucket());
        Ok(())
    }
}

/// The report as text.
pub fn text(report: &AbReport) -> String {
    let mut out = format!("A/B test of {} since {}\n", report.model, report.since);
    out.push_str(&format!(
        "  {:<11} {:>8} {:>9} {:>9}  {:<8} {:>8}  95% interval\n",
        "variant", "versions", "requests", "outcomes", "metric", "value"
    ));
    for v in &report.variants {
        let versions: Vec<String> = v.versions.iter().map(|n| format!("v{n}")).collect();
        out.push_str(&format!(
            "  {:<11} {:>8} {:>9} {:>9}  {:<8} {:>8}  {}\n",
            v.variant,
            versions.join(","),
            v.requests,
            v.outcomes,
            v.metric,
            v.value.map_or("n/a".into(), |x| format!("{x:.4}")),
            v.interval.map_or("n/a".into(), |i| format!("[{:.4}, {:.4}]", i.low, i.high)),
        ));
    }
    if let (Some(test), Some(d)) = (&report.test, report.difference) {
        out.push_str(&format!(
            "  {test}: challenger − champion = {d:+.4}, statistic {}, p = {}\n",
            report.statistic.map_or("n/a".into(), |s| format!("{s:.4}")),
            report.p_value.map_or("n/a".into(), |p| format!("{p:.4}")),
        ));
    }
    out.push_str(&format!("  recommendation: {} — {}\n", report.recommendation.replace('_', " "), report.reason));
    out
}

//! `mlops pipeline`: the retraining state machine — run its definition locally, start a run
//! of the deployed one, read the runs' records.

use std::sync::Arc;

use anyhow::{Context as _, bail};
use clap::{Args, Subcommand, ValueEnum};
use mlops_lake::Lake;
use mlops_lake::registry::{self, ApprovalStatus};
use mlops_pipeline::asl::{Execution, RunOptions, Status, TaskTokens};
use mlops_pipeline::local::{Deployer, LocalServices};
use mlops_pipeline::record::{self, PipelineRecord};
use mlops_pipeline::state::{ApprovalMode, PromoteAs, Settings, State, Trainer};
use mlops_pipeline::{PipelineConfig, steps};
use serde_json::{Value, json};

use mlops_devkit::step_functions::{ApiError, Backend, LocalStepFunctions};

use super::{LakeArgs, lake_hint};

#[derive(Debug, Subcommand)]
pub enum PipelineCommand {
    Run(RunArgs),
    Start(StartArgs),
    /// List a model's retraining runs: trigger, outcome, decision, version, duration.
    List(ListArgs),
    /// Show one run's record: its trigger and every step's timing, inputs and outputs.
    Show(ShowArgs),
}

impl PipelineCommand {
    pub async fn run(self) -> anyhow::Result<()> {
        match self {
            PipelineCommand::Run(args) => args.run().await,
            PipelineCommand::Start(args) => args.run().await,
            PipelineCommand::List(args) => {
                let lake = args.lake.connect().await?;
                let records = record::list(&lake, &args.model).await.map_err(|e| lake_hint(e.into()))?;
                if records.is_empty() {
                    bail!("{} has no retraining run in s3://{}", args.model, lake.bucket());
                }
                print!("{}", list(&records));
                Ok(())
            }
            PipelineCommand::Show(args) => {
                let lake = args.lake.connect().await?;
                let key = mlops_lake::keys::pipeline_record(&args.model, &args.run_id);
                let record = record::read(&lake, &key).await.map_err(|e| lake_hint(e.into()))?;
                print!("{}", show(&record));
                Ok(())
            }
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum PipelineName {
    /// statemachines/retrain.asl.json: snapshot → train → evaluate → gate → register →
    /// approval → promote.
    Retrain,
}

/// Run the retraining state machine locally against the lake.
///
/// Executes statemachines/retrain.asl.json itself (its states, Choice rules, Retry and Catch)
/// over the same step handlers the retrain Lambda runs, against the lake AWS_ENDPOINT_URL_S3
/// points to (`mlops serve` or `mlops lake serve`). Every step writes the run's record to
/// pipelines/<model>/<run-id>.json. With --approval required the run waits for `mlops model
/// approve|reject`, which sends its decision to this command's Step Functions endpoint
/// (export AWS_ENDPOINT_URL_SFN as printed). Promotion here records the decision and names
/// the version to serve; `mlops serve` runs the same pipeline and swaps its predict over.
#[derive(Debug, Clone, Args)]
pub struct RunArgs {
    #[arg(value_enum)]
    pub pipeline: PipelineName,
    /// The model to retrain.
    #[arg(long, default_value = "penguins")]
    pub model: String,
    /// The version serving now, which the challenger must beat [default: the newest approved
    /// version, else the newest registered].
    #[arg(long)]
    pub champion: Option<u32>,
    /// Whether a person approves a promoted version before it is deployed.
    #[arg(long, value_enum, default_value_t = ApprovalArg::None)]
    pub approval: ApprovalArg,
    /// Deploy the promoted version as the served model or as the shadow beside it.
    #[arg(long, value_enum, default_value_t = PromoteArg::Live)]
    pub promote_as: PromoteArg,
    /// Days of curated partitions the snapshot takes, ending today.
    #[arg(long, default_value_t = 30)]
    pub window_days: u32,
    /// Port of the local Step Functions endpoint that receives approvals (0 picks one).
    #[arg(long, default_value_t = 9002)]
    pub sfn_port: u16,
    /// Who starts the run [default: MLOPS_USER or USER].
    #[arg(long)]
    pub by: Option<String>,
    /// Take Retry intervals at once instead of waiting them out.
    #[arg(long)]
    pub no_delays: bool,
    #[command(flatten)]
    pub lake: LakeArgs,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ApprovalArg {
    None,
    Required,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum PromoteArg {
    Live,
    Shadow,
}

/// The settings of a local run (whose trainer is the built-in one).
pub fn local_settings(approval: ApprovalArg, promote_as: PromoteArg) -> Settings {
    Settings {
        trainer: Trainer::Builtin,
        approval: match approval {
            ApprovalArg::None => ApprovalMode::None,
            ApprovalArg::Required => ApprovalMode::Required,
        },
        promote_as: match promote_as {
            PromoteArg::Live => PromoteAs::Live,
            PromoteArg::Shadow => PromoteAs::Shadow,
        },
    }
}

impl RunArgs {
    pub fn settings(&self) -> Settings {
        local_settings(self.approval, self.promote_as)
    }

    async fn run(self) -> anyhow::Result<()> {
        let lake = self.lake.connect().await?;
        let champion = match self.champion {
            Some(v) => Some(v),
            None => serving_version(&lake, &self.model).await.map_err(lake_hint)?,
        };
        let config = local_config(&lake, &self.model, champion, self.window_days);
        let tokens = TaskTokens::default();
        let endpoint =
            LocalStepFunctions::start(self.sfn_port, Arc::new(TokenBackend { tokens: tokens.clone(), starts: None }))
                .await?;
        let by = super::model::who(self.by.as_deref());
        let trigger = json!({"model": self.model, "by": by});
        let options = RunOptions { delay_scale: if self.no_delays { 0.0 } else { 1.0 }, ..RunOptions::default() };
        let run_id = mlops_pipeline::local::run_id();
        println!(
            "run {run_id}: retraining {} (champion {})",
            self.model,
            champion.map_or("none".into(), |v| format!("v{v}"))
        );
        // Say which version to decide on once the run waits for it.
        let next =
            registry::versions(&lake, &self.model).await.map_err(|e| lake_hint(e.into()))?.last().map_or(1, |v| v + 1);
        let waiting = (self.approval == ApprovalArg::Required).then(|| {
            let (lake, model, endpoint) = (lake.clone(), self.model.clone(), endpoint.endpoint());
            tokio::spawn(async move {
                loop {
                    if let Ok(Some(request)) = steps::approval_request(&lake, &model, next).await {
                        let version = request.version;
                        println!(
                            "waiting for a decision on {model}@{version}: mlops model approve|reject {model}@{version} \
                             --reason … (with AWS_ENDPOINT_URL_SFN={endpoint})"
                        );
                        return;
                    }
                    tokio::time::sleep(std::time::Duration::from_millis(250)).await;
                }
            })
        });
        let execution =
            run_retrain(&lake, &config, &NoStack, &tokens, self.settings(), &run_id, trigger, options).await?;
        if let Some(w) = waiting {
            w.abort();
        }
        print!("{}", summary(&lake, &config.model, &execution).await?);
        if execution.status != Status::Succeeded {
            bail!("the run failed: {}", execution.failure.map(|f| f.to_string()).unwrap_or_default());
        }
        Ok(())
    }
}

/// The step configuration of a local run.
pub fn local_config(lake: &Lake, model: &str, champion: Option<u32>, window_days: u32) -> PipelineConfig {
    PipelineConfig {
        bucket: lake.bucket().to_string(),
        model: model.to_string(),
        champion,
        window_days,
        guard_ttl: chrono::Duration::hours(i64::from(mlops_pipeline::guard::DEFAULT_TTL_HOURS)),
        code_version: super::model::code_version(None),
    }
}

/// The version serving when none is named: the newest approved one, else the newest.
pub async fn serving_version(lake: &Lake, model: &str) -> anyhow::Result<Option<u32>> {
    let versions = registry::versions(lake, model).await?;
    for v in versions.iter().rev() {
        if registry::approval(lake, model, *v).await?.is_some_and(|a| a.status == ApprovalStatus::Approved) {
            return Ok(Some(*v));
        }
    }
    Ok(versions.last().copied())
}

/// Runs the retraining definition locally with `deployer` standing in for the deploy project.
#[allow(clippy::too_many_arguments)]
pub async fn run_retrain(
    lake: &Lake,
    config: &PipelineConfig,
    deployer: &dyn Deployer,
    tokens: &TaskTokens,
    settings: Settings,
    run_id: &str,
    trigger: Value,
    options: RunOptions,
) -> anyhow::Result<Execution> {
    let services = LocalServices { lake, config, deployer };
    Ok(mlops_pipeline::local::run_retrain(&services, tokens, settings, run_id, trigger, options).await?)
}

/// The deployer of a run with no local stack: it says what serving the version takes.
struct NoStack;

#[async_trait::async_trait]
impl Deployer for NoStack {
    async fn deploy(&self, model: &str, parameter: &str, version: u32) -> Result<String, String> {
        Ok(format!(
            "no local stack runs here: {parameter}={version} is recorded; `mlops serve --model {model}@{version}` serves it"
        ))
    }
}

/// A Step Functions endpoint over local task tokens, and optionally local runs.
#[derive(Debug)]
pub struct TokenBackend {
    pub tokens: TaskTokens,
    /// Where a `StartExecution` goes: (execution name, input).
    pub starts: Option<tokio::sync::mpsc::UnboundedSender<(String, Value)>>,
}

impl Backend for TokenBackend {
    fn start_execution(&self, _state_machine: &str, name: Option<&str>, input: Value) -> Result<String, ApiError> {
        let Some(starts) = &self.starts else {
            return Err(ApiError {
                kind: "StateMachineDoesNotExist".into(),
                message: "this endpoint only takes task results; runs start on `mlops serve`".into(),
            });
        };
        let name = name.map_or_else(mlops_pipeline::local::run_id, str::to_string);
        if !mlops_lake::keys::is_run_id(&name) {
            return Err(ApiError {
                kind: "InvalidName".into(),
                message: format!("{name:?} is not a valid execution name"),
            });
        }
        starts
            .send((name.clone(), input))
            .map_err(|_| ApiError { kind: "ServiceUnavailable".into(), message: "the local runner stopped".into() })?;
        Ok(format!("{}:{name}", LOCAL_STATE_MACHINE.replace(":stateMachine:", ":execution:")))
    }

    fn send_task_success(&self, token: &str, output: Value) -> Result<(), ApiError> {
        self.tokens.succeed(token, output).map_err(|f| ApiError { kind: f.error, message: f.cause })
    }

    fn send_task_failure(&self, token: &str, error: &str, cause: &str) -> Result<(), ApiError> {
        self.tokens.fail(token, error, cause).map_err(|f| ApiError { kind: f.error, message: f.cause })
    }
}

/// The state machine ARN `mlops serve` answers to.
pub const LOCAL_STATE_MACHINE: &str = "arn:aws:states:us-east-1:000000000000:stateMachine:mlops-retrain";

/// Start a run of the deployed retraining state machine (StartExecution).
///
/// On AWS, the state machine the stack deployed (its RetrainStateMachineArn output); locally,
/// the one `mlops serve` runs (export the AWS_ENDPOINT_URL_SFN and RETRAIN_STATE_MACHINE_ARN it
/// prints). The run is recorded as a manual trigger, by you.
#[derive(Debug, Clone, Args)]
pub struct StartArgs {
    /// The state machine's ARN.
    #[arg(long, env = "RETRAIN_STATE_MACHINE_ARN")]
    pub state_machine: String,
    /// The model to retrain (the state machine refuses another than its own).
    #[arg(long, default_value = "penguins")]
    pub model: String,
    /// The execution's name (its run id) [default: one Step Functions picks].
    #[arg(long)]
    pub name: Option<String>,
    /// Who starts it [default: MLOPS_USER or USER].
    #[arg(long)]
    pub by: Option<String>,
}

impl StartArgs {
    async fn run(self) -> anyhow::Result<()> {
        let client = sfn_client().await;
        let input = json!({"model": self.model, "by": super::model::who(self.by.as_deref())});
        let out = client
            .start_execution()
            .state_machine_arn(&self.state_machine)
            .set_name(self.name.clone())
            .input(input.to_string())
            .send()
            .await
            .map_err(|e| {
                anyhow::anyhow!(
                    "StartExecution on {}: {}",
                    self.state_machine,
                    aws_sdk_sfn::error::DisplayErrorContext(&e)
                )
            })?;
        println!("started {}", out.execution_arn());
        Ok(())
    }
}

/// A Step Functions client from the environment (`AWS_ENDPOINT_URL_SFN` for a local endpoint).
pub async fn sfn_client() -> aws_sdk_sfn::Client {
    aws_sdk_sfn::Client::new(&aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await)
}

#[derive(Debug, Clone, Args)]
pub struct ListArgs {
    #[arg(long, default_value = "penguins")]
    pub model: String,
    #[command(flatten)]
    pub lake: LakeArgs,
}

#[derive(Debug, Clone, Args)]
pub struct ShowArgs {
    /// The run id (the execution's name).
    pub run_id: String,
    #[arg(long, default_value = "penguins")]
    pub model: String,
    #[command(flatten)]
    pub lake: LakeArgs,
}

fn seconds(ms: Option<f64>) -> String {
    ms.map_or("-".into(), |ms| format!("{:.2} s", ms / 1e3))
}

pub fn text(value: &impl serde::Serialize) -> String {
    match serde_json::to_value(value) {
        Ok(Value::String(s)) => s,
        Ok(Value::Null) | Err(_) => "-".into(),
        Ok(v) => v.to_string(),
    }
}

/// A line per run.
pub fn list(records: &[PipelineRecord]) -> String {
    let mut out = format!(
        "{:<28} {:<20} {:<9} {:<10} {:<19} {:<8} {:<8} {}\n",
        "run", "started", "trigger", "status", "outcome", "decision", "version", "duration"
    );
    for r in records {
        out.push_str(&format!(
            "{:<28} {:<20} {:<9} {:<10} {:<19} {:<8} {:<8} {}\n",
            r.run_id,
            r.started_at.format("%Y-%m-%d %H:%M:%S"),
            text(&r.trigger.kind),
            text(&r.status),
            text(&r.outcome),
            text(&r.decision),
            r.version.map_or("-".into(), |v| format!("v{v}")),
            seconds(r.duration_ms),
        ));
    }
    out
}

/// A run's record, for people.
pub fn show(r: &PipelineRecord) -> String {
    let mut out = format!(
        "run {} of {}: {} ({}), trigger {}{}\n",
        r.run_id,
        r.model,
        text(&r.status),
        text(&r.outcome),
        text(&r.trigger.kind),
        r.trigger.by.as_ref().map_or(String::new(), |b| format!(" by {b}"))
    );
    if let Some(report) = &r.trigger.report_key {
        out.push_str(&format!(
            "  drift report {report} (share {:.2}: {})\n",
            r.trigger.drift_share.unwrap_or_default(),
            r.trigger.drifted.join(", ")
        ));
    }
    out.push_str(&format!(
        "  champion {}  decision {}  version {}  total {}\n",
        r.champion.map_or("-".into(), |v| format!("v{v}")),
        text(&r.decision),
        r.version.map_or("-".into(), |v| format!("v{v}")),
        seconds(r.duration_ms)
    ));
    for s in &r.steps {
        out.push_str(&format!(
            "  {:<15} {:>9}  {}\n",
            s.name,
            seconds(Some(s.duration_ms)),
            s.started_at.format("%H:%M:%S%.3f")
        ));
        for i in &s.inputs {
            out.push_str(&format!("      in   {i}\n"));
        }
        for o in &s.outputs {
            out.push_str(&format!("      out  {o}\n"));
        }
        if !s.detail.is_null() {
            out.push_str(&format!("      {}\n", s.detail));
        }
    }
    if let Some(e) = &r.error {
        out.push_str(&format!("  error {}: {}\n", e.error, e.cause));
    }
    out
}

/// What a finished local run did: its path through the states, the champion's and the
/// challenger's metrics, the decision and the record's step timings.
pub async fn summary(lake: &Lake, model: &str, execution: &Execution) -> anyhow::Result<String> {
    let mut out = String::new();
    let path: Vec<String> = execution
        .history
        .iter()
        .map(|t| if t.attempts > 1 { format!("{}×{}", t.state, t.attempts) } else { t.state.clone() })
        .collect();
    out.push_str(&format!("  states     {}\n", path.join(" → ")));
    let state: Option<State> = execution.output.clone().and_then(|o| serde_json::from_value(o).ok());
    let key = mlops_lake::keys::pipeline_record(model, &execution.name);
    let record = record::read(lake, &key).await.context("reading the run's record")?;
    for s in &record.steps {
        out.push_str(&format!("  {:<10} {:>8}\n", s.name, seconds(Some(s.duration_ms))));
    }
    if let Some(e) = state.as_ref().and_then(|s| s.evaluation.as_ref()) {
        let champion = e.champion.as_ref();
        out.push_str(&format!(
            "  holdout    {} rows (every fifth row of the snapshot)\n  {:<10} {:>12} {:>12}\n",
            e.holdout_rows,
            "metric",
            champion.map_or("champion".into(), |c| format!("champion v{}", c.version)),
            "challenger"
        ));
        for (name, value) in &e.challenger {
            let theirs = champion.and_then(|c| c.metrics.get(name)).map_or("-".into(), |v| format!("{v:.4}"));
            out.push_str(&format!("  {name:<10} {theirs:>12} {value:>12.4}\n"));
        }
        out.push_str(&format!("  decision   {}\n", e.decision));
        for reason in &e.reasons {
            out.push_str(&format!("    {reason}\n"));
        }
    }
    if let Some(r) = state.as_ref().and_then(|s| s.registered.as_ref()) {
        out.push_str(&format!(
            "  registered {model} v{}{}\n",
            r.version,
            if r.created { "" } else { " (already registered)" }
        ));
    }
    if let Some(d) = state.as_ref().and_then(|s| s.deployment.as_ref()) {
        out.push_str(&format!("  deployed   {}\n", d["status"].as_str().unwrap_or("?")));
    }
    out.push_str(&format!(
        "  outcome    {} {} in {}  (record s3://{}/{key})\n",
        text(&record.status),
        text(&record.outcome),
        seconds(record.duration_ms),
        lake.bucket()
    ));
    if let Some(f) = &execution.failure {
        out.push_str(&format!("  failure    {f}\n"));
    }
    if let Some(e) = &record.error {
        out.push_str(&format!("  error      {}: {}\n", e.error, e.cause));
    }
    Ok(out)
}

/// Sends a decision to the run waiting for it, if one waits: `SendTaskSuccess` with the
/// decision as the task's output. Returns the run's id.
pub async fn notify_waiting_run(
    lake: &Lake,
    client: &aws_sdk_sfn::Client,
    model: &str,
    version: u32,
    decision: &mlops_lake::registry::Approval,
) -> anyhow::Result<Option<String>> {
    let Some(request) = steps::approval_request(lake, model, version).await? else {
        return Ok(None);
    };
    let output = mlops_pipeline::state::ApprovalResult {
        status: decision.status,
        by: decision.by.clone(),
        reason: decision.reason.clone(),
    };
    client
        .send_task_success()
        .task_token(&request.task_token)
        .output(serde_json::to_string(&output)?)
        .send()
        .await
        .map_err(|e| {
            anyhow::anyhow!(
                "the decision is recorded, but run {} waiting for it could not be told ({}); is AWS_ENDPOINT_URL_SFN the \
                 endpoint `mlops pipeline run` or `mlops serve` printed, or are AWS credentials set?",
                request.run_id,
                aws_sdk_sfn::error::DisplayErrorContext(&e)
            )
        })?;
    Ok(Some(request.run_id))
}

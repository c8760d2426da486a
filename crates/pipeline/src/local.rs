//! The pipeline's definition run locally: the services its Tasks name, stood in for over the
//! embedded lake. Lambda Tasks call [`steps::handle`] in-process; the deploy project
//! (`codebuild:startBuild.sync` on `PromoteProjectName`) is a [`Deployer`] that points the local
//! predict at the promoted version; CodeBuild and SageMaker training have no local stand-in
//! (a run with those trainers fails at the Train state and says so).

use std::collections::BTreeMap;

use chrono::Utc;
use mlops_lake::Lake;
use serde_json::{Value, json};

use crate::asl::{Execution, Failure, RunOptions, Services, StateMachine, TaskContext, TaskTokens};
use crate::state::{ApprovalMode, PromoteAs, Settings, Trainer};
use crate::steps::{self, PipelineConfig};

/// The step function's ARN in a local run.
pub const STEP_FUNCTION: &str = "arn:aws:lambda:us-east-1:000000000000:function:mlops-retrain-step";
/// The deploy project's name in a local run.
pub const PROMOTE_PROJECT: &str = "mlops-local-promote";

/// What a promotion does locally: serve `version` as `parameter` (`ModelVersion` or
/// `ShadowModelVersion`) of `model`. Returns a sentence saying what was done.
#[async_trait::async_trait]
pub trait Deployer: Send + Sync {
    async fn deploy(&self, model: &str, parameter: &str, version: u32) -> Result<String, String>;
}

/// The definition's substitutions in a local run.
pub fn substitutions(settings: Settings) -> BTreeMap<String, String> {
    BTreeMap::from([
        ("RetrainStepFunctionArn".to_string(), STEP_FUNCTION.to_string()),
        ("PromoteProjectName".to_string(), PROMOTE_PROJECT.to_string()),
        ("TrainProjectName".to_string(), "mlops-local-train".to_string()),
        ("TrainingImage".to_string(), "local".to_string()),
        ("TrainingInstanceType".to_string(), "ml.m5.large".to_string()),
        ("SageMakerRoleArn".to_string(), "arn:aws:iam::000000000000:role/local".to_string()),
        ("Trainer".to_string(), text(&settings.trainer)),
        ("Approval".to_string(), text(&settings.approval)),
        ("PromoteAs".to_string(), text(&settings.promote_as)),
    ])
}

/// A setting as its substitution text (its JSON string).
fn text(value: &impl serde::Serialize) -> String {
    serde_json::to_value(value).ok().and_then(|v| v.as_str().map(str::to_string)).unwrap_or_default()
}

/// The local stand-ins of the services the definition calls.
pub struct LocalServices<'a> {
    pub lake: &'a Lake,
    pub config: &'a PipelineConfig,
    pub deployer: &'a dyn Deployer,
}

impl std::fmt::Debug for LocalServices<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LocalServices").field("bucket", &self.lake.bucket()).field("config", &self.config).finish()
    }
}

impl LocalServices<'_> {
    async fn step(&self, payload: Value) -> Result<Value, Failure> {
        steps::handle(self.lake, self.config, payload).await.map_err(|e| Failure::new(e.name(), e.to_string()))
    }

    async fn build(&self, parameters: &Value) -> Result<Value, Failure> {
        let project = parameters["ProjectName"].as_str().unwrap_or_default();
        if project != PROMOTE_PROJECT {
            return Err(Failure::new(
                "States.TaskFailed",
                format!("there is no local CodeBuild project {project:?}: a local run trains with Trainer=builtin"),
            ));
        }
        let variable = |name: &str| {
            parameters["EnvironmentVariablesOverride"]
                .as_array()
                .into_iter()
                .flatten()
                .find(|v| v["Name"] == name)
                .and_then(|v| v["Value"].as_str())
                .map(str::to_string)
        };
        let (Some(parameter), Some(value), Some(model)) =
            (variable("STACK_PARAMETER"), variable("STACK_PARAMETER_VALUE"), variable("MODEL_NAME"))
        else {
            return Err(Failure::new(
                "States.TaskFailed",
                "the deploy build needs STACK_PARAMETER, STACK_PARAMETER_VALUE and MODEL_NAME",
            ));
        };
        let version: u32 = value.parse().map_err(|_| {
            Failure::new("States.TaskFailed", format!("STACK_PARAMETER_VALUE {value:?} is not a version"))
        })?;
        let started = Utc::now();
        let said = self
            .deployer
            .deploy(&model, &parameter, version)
            .await
            .map_err(|cause| Failure::new("States.TaskFailed", cause))?;
        Ok(json!({"Build": {
            "Id": format!("{PROMOTE_PROJECT}:{}", started.timestamp_micros()),
            "BuildStatus": "SUCCEEDED",
            "StartTime": started.to_rfc3339(),
            "EndTime": Utc::now().to_rfc3339(),
            "Logs": said,
        }}))
    }
}

#[async_trait::async_trait]
impl Services for LocalServices<'_> {
    async fn call(&self, resource: &str, parameters: Value, _context: &TaskContext) -> Result<Value, Failure> {
        match resource {
            STEP_FUNCTION => self.step(parameters).await,
            "arn:aws:states:::lambda:invoke" => {
                if parameters["FunctionName"] != STEP_FUNCTION {
                    return Err(Failure::new("Lambda.ResourceNotFoundException", "no such local function"));
                }
                let payload = self.step(parameters["Payload"].clone()).await?;
                Ok(json!({"Payload": payload, "StatusCode": 200}))
            }
            "arn:aws:states:::codebuild:startBuild" => self.build(&parameters).await,
            "arn:aws:states:::sagemaker:createTrainingJob" => Err(Failure::new(
                "States.TaskFailed",
                "there is no local SageMaker: a local run trains with Trainer=builtin",
            )),
            other => Err(Failure::new("States.Runtime", format!("the local runner does not call {other}"))),
        }
    }
}

/// A run id for a local run: the time and a few digits of the clock's nanoseconds.
pub fn run_id() -> String {
    let now = Utc::now();
    format!("local-{}-{:04}", now.format("%Y%m%dT%H%M%S"), now.timestamp_subsec_nanos() % 10_000)
}

/// Loads the retraining definition with the local substitutions for `settings`.
pub fn retrain_machine(settings: Settings) -> Result<StateMachine, crate::asl::DefinitionError> {
    StateMachine::load(crate::RETRAIN_ASL, &substitutions(settings))
}

/// Runs the retraining definition once, locally, on `trigger` (an EventBridge event or a
/// manual input).
pub async fn run_retrain(
    services: &LocalServices<'_>,
    tokens: &TaskTokens,
    settings: Settings,
    run_id: &str,
    trigger: Value,
    options: RunOptions,
) -> Result<Execution, crate::asl::DefinitionError> {
    let machine = retrain_machine(settings)?;
    Ok(machine.run(services, tokens, run_id, trigger, options).await)
}

/// The settings' defaults, spelled out (the template's parameter defaults).
pub fn default_settings() -> Settings {
    Settings { trainer: Trainer::Builtin, approval: ApprovalMode::None, promote_as: PromoteAs::Live }
}

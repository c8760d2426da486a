//! `deploy-hooks`: predict's CodeDeploy lifecycle hooks, so that no traffic moves to a version
//! that answers differently from what was registered.
//!
//! - **PreTraffic** (`HOOK=pre-traffic`): before any traffic shifts, invokes the new predict
//!   version (`TARGET_FUNCTION`, the version's ARN) with the registered model version's sample
//!   request (`models/<name>/v<N>/samples.json`, written at registration by the scorer) as
//!   API Gateway sends it, and requires status 200, the expected model version, and the
//!   registered predictions, value for value.
//! - **PostTraffic** (`HOOK=post-traffic`): after the shift, invokes the alias
//!   (`TARGET_FUNCTION`, the alias's ARN) with `GET /model` and requires the expected model
//!   version.
//!
//! Either way the outcome is reported with `PutLifecycleEventHookExecutionStatus`: `Failed`
//! stops the deployment and rolls it back. A check that cannot run (a missing samples file,
//! an invocation error) is a failure too, never a pass.

use std::time::Duration;

use aws_sdk_lambda::primitives::Blob;
use mlops_lake::{Lake, keys};
use mlops_lambda::{ConfigError, Env};
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// The largest difference between a registered and an answered number that still matches:
/// predict answers in float32, and JSON carries each number as the shortest text that reads
/// back to it.
pub const TOLERANCE: f64 = 1e-6;

/// Which hook this function is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Hook {
    PreTraffic,
    PostTraffic,
}

/// `HOOK`, `TARGET_FUNCTION`, `LAKE_BUCKET`, `MODEL_NAME`, `MODEL_VERSION`.
#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    pub hook: Hook,
    pub target: String,
    pub bucket: String,
    pub model: String,
    pub version: u32,
}

impl Config {
    pub fn from_env<F: Fn(&str) -> Option<String>>(env: &Env<F>) -> Result<Config, ConfigError> {
        let hook = match env.required("HOOK")?.as_str() {
            "pre-traffic" => Hook::PreTraffic,
            "post-traffic" => Hook::PostTraffic,
            other => {
                return Err(ConfigError::new("HOOK", format!("={other:?} is neither pre-traffic nor post-traffic")));
            }
        };
        Ok(Config {
            hook,
            target: env.required("TARGET_FUNCTION")?,
            bucket: env.required("LAKE_BUCKET")?,
            model: env.required("MODEL_NAME")?,
            version: env.version("MODEL_VERSION")?,
        })
    }
}

/// The event CodeDeploy sends a lifecycle hook.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct HookEvent {
    #[serde(rename = "DeploymentId")]
    pub deployment_id: String,
    #[serde(rename = "LifecycleEventHookExecutionId")]
    pub execution_id: String,
}

/// What a hook found and reported.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Outcome {
    pub hook: Hook,
    pub target: String,
    /// `Succeeded` or `Failed`, as reported to CodeDeploy.
    pub status: String,
    pub reason: String,
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("the event is not a CodeDeploy lifecycle hook event: {0}")]
    Event(String),
    #[error("reporting {status} to CodeDeploy: {message}")]
    Report { status: String, message: String },
}

impl From<Error> for lambda_runtime::Diagnostic {
    fn from(e: Error) -> Self {
        let error_type = match e {
            Error::Event(_) => "InvalidEvent",
            Error::Report { .. } => "ReportFailed",
        };
        lambda_runtime::Diagnostic { error_type: error_type.into(), error_message: e.to_string() }
    }
}

/// An API Gateway (HTTP API, payload 2.0) event for predict, in the shape of
/// `events/api-predict.json`.
pub fn api_event(method: &str, path: &str, body: Option<&str>) -> Value {
    let mut event: Value = serde_json::from_str(include_str!("../../../events/api-predict.json")).unwrap_or_default();
    event["rawPath"] = path.into();
    event["routeKey"] = format!("{method} {path}").into();
    event["requestContext"]["http"]["method"] = method.into();
    event["requestContext"]["http"]["path"] = path.into();
    event["requestContext"]["routeKey"] = format!("{method} {path}").into();
    event["body"] = body.map_or(Value::Null, Value::from);
    event["isBase64Encoded"] = false.into();
    event
}

/// Whether two JSON values are equal, numbers within [`TOLERANCE`].
pub fn matches(expected: &Value, actual: &Value) -> bool {
    match (expected, actual) {
        (Value::Number(a), Value::Number(b)) => match (a.as_f64(), b.as_f64()) {
            (Some(a), Some(b)) => (a - b).abs() <= TOLERANCE * a.abs().max(1.0),
            _ => a == b,
        },
        (Value::Array(a), Value::Array(b)) => a.len() == b.len() && a.iter().zip(b).all(|(x, y)| matches(x, y)),
        (Value::Object(a), Value::Object(b)) => {
            a.len() == b.len() && a.iter().all(|(k, v)| b.get(k).is_some_and(|w| matches(v, w)))
        }
        (a, b) => a == b,
    }
}

/// Invokes `target` with `event` and returns the API Gateway response it answers.
async fn invoke(lambda: &aws_sdk_lambda::Client, target: &str, event: &Value) -> Result<Value, String> {
    let out = lambda
        .invoke()
        .function_name(target)
        .payload(Blob::new(event.to_string()))
        .send()
        .await
        .map_err(|e| format!("invoking {target}: {}", aws_sdk_lambda::error::DisplayErrorContext(e)))?;
    if let Some(error) = out.function_error() {
        let payload = out.payload().map(|p| String::from_utf8_lossy(p.as_ref()).into_owned()).unwrap_or_default();
        return Err(format!("{target} failed ({error}): {}", payload.chars().take(500).collect::<String>()));
    }
    let payload = out.payload().ok_or_else(|| format!("{target} answered nothing"))?;
    serde_json::from_slice(payload.as_ref()).map_err(|e| format!("{target} answered no JSON: {e}"))
}

/// The response's status and JSON body.
fn response_of(response: &Value) -> (u64, Value) {
    let status = response["statusCode"].as_u64().unwrap_or_default();
    let body = response["body"].as_str().and_then(|b| serde_json::from_str(b).ok()).unwrap_or(Value::Null);
    (status, body)
}

/// The pre-traffic check: the new version answers the registered samples as registered.
pub async fn pre_traffic(lake: &Lake, lambda: &aws_sdk_lambda::Client, config: &Config) -> Result<String, String> {
    let key = keys::model_file(&config.model, config.version, "samples.json");
    let samples = lake.get(&key).await.map_err(|e| format!("reading {key}: {e}"))?;
    let samples: Value = serde_json::from_slice(&samples.bytes).map_err(|e| format!("{key} is not JSON: {e}"))?;
    let request = samples["request"].to_string();
    let (status, body) =
        response_of(&invoke(lambda, &config.target, &api_event("POST", "/predict", Some(&request))).await?);
    if status != 200 {
        return Err(format!("{} answered the samples with {status}: {body}", config.target));
    }
    let version = body["model"]["version"].as_u64();
    if version != Some(u64::from(config.version)) {
        return Err(format!("{} serves version {version:?}, not {} v{}", config.target, config.model, config.version));
    }
    let (expected, answered) = (&samples["predictions"], &body["predictions"]);
    let rows = expected.as_array().map_or(0, Vec::len);
    if rows == 0 || !matches(expected, answered) {
        let first = expected
            .as_array()
            .into_iter()
            .flatten()
            .zip(answered.as_array().into_iter().flatten())
            .position(|(e, a)| !matches(e, a));
        return Err(format!(
            "{} answers the registered samples differently (first at row {}): expected {}, answered {}",
            config.target,
            first.map_or_else(|| "count".to_string(), |i| i.to_string()),
            expected.to_string().chars().take(300).collect::<String>(),
            answered.to_string().chars().take(300).collect::<String>()
        ));
    }
    Ok(format!(
        "{} answers the {rows} registered samples of {} v{} as registered",
        config.target, config.model, config.version
    ))
}

/// The post-traffic check: the alias serves the expected model version.
pub async fn post_traffic(lambda: &aws_sdk_lambda::Client, config: &Config) -> Result<String, String> {
    let (status, body) = response_of(&invoke(lambda, &config.target, &api_event("GET", "/model", None)).await?);
    let version = body["version"].as_u64();
    if status != 200 || version != Some(u64::from(config.version)) {
        return Err(format!(
            "{} serves {:?} (status {status}), not {} v{}",
            config.target, version, config.model, config.version
        ));
    }
    Ok(format!("{} serves {} v{}", config.target, config.model, config.version))
}

/// Runs the hook and reports its outcome to CodeDeploy.
pub async fn handle(
    lake: &Lake,
    lambda: &aws_sdk_lambda::Client,
    codedeploy: &aws_sdk_codedeploy::Client,
    config: &Config,
    event: Value,
) -> Result<Outcome, Error> {
    let event: HookEvent = serde_json::from_value(event).map_err(|e| Error::Event(e.to_string()))?;
    let checked = tokio::time::timeout(Duration::from_secs(240), async {
        match config.hook {
            Hook::PreTraffic => pre_traffic(lake, lambda, config).await,
            Hook::PostTraffic => post_traffic(lambda, config).await,
        }
    })
    .await
    .unwrap_or_else(|_| Err("the check did not finish within 240 s".into()));
    let (status, reason) = match checked {
        Ok(reason) => (aws_sdk_codedeploy::types::LifecycleEventStatus::Succeeded, reason),
        Err(reason) => (aws_sdk_codedeploy::types::LifecycleEventStatus::Failed, reason),
    };
    tracing::info!(hook = ?config.hook, status = status.as_str(), %reason, deployment = %event.deployment_id, "lifecycle hook");
    codedeploy
        .put_lifecycle_event_hook_execution_status()
        .deployment_id(&event.deployment_id)
        .lifecycle_event_hook_execution_id(&event.execution_id)
        .status(status.clone())
        .send()
        .await
        .map_err(|e| Error::Report {
            status: status.as_str().to_string(),
            message: aws_sdk_codedeploy::error::DisplayErrorContext(e).to_string(),
        })?;
    Ok(Outcome { hook: config.hook, target: config.target.clone(), status: status.as_str().to_string(), reason })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn numbers_match_within_the_tolerance_and_nothing_else_is_loose() {
        assert!(matches(&json!([{"p": [0.1, 0.9], "class": "a"}]), &json!([{"p": [0.1000000001, 0.9], "class": "a"}])));
        assert!(!matches(&json!([{"p": [0.1, 0.9]}]), &json!([{"p": [0.2, 0.8]}])));
        assert!(!matches(&json!([{"class": "a"}]), &json!([{"class": "b"}])));
        assert!(!matches(&json!([1, 2]), &json!([1])));
        assert!(!matches(&json!({"a": 1}), &json!({"a": 1, "b": 2})));
    }

    #[test]
    fn events_have_the_api_gateway_shape() {
        let event = api_event("GET", "/model", None);
        assert_eq!(event["requestContext"]["http"]["method"], "GET");
        assert_eq!(event["rawPath"], "/model");
        assert!(event["body"].is_null());
    }
}

//! A local runner of Amazon States Language definitions: the states and fields
//! `statemachines/*.asl.json` use, with the semantics Step Functions gives them.
//!
//! States: `Task`, `Choice`, `Pass`, `Wait`, `Succeed`, `Fail`. Fields: `Next`, `End`,
//! `InputPath`, `Parameters` (with `.$` paths into the input and the context object `$$`),
//! `ResultSelector`, `ResultPath`, `OutputPath`, `Retry` (`ErrorEquals`, `IntervalSeconds`,
//! `MaxAttempts`, `BackoffRate`, `MaxDelaySeconds`), `Catch` (`ErrorEquals`, `Next`,
//! `ResultPath`), `TimeoutSeconds`, and the `.waitForTaskToken` pattern, whose result
//! [`TaskTokens`] delivers. A Task's resource is called through [`Services`], so that the same
//! definition runs against local stand-ins of the services it names. Anything else in a
//! definition is refused when it is loaded, not met halfway through a run. The
//! definition's top-level `TimeoutSeconds` is not enforced: a local run ends with its process.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::{Map, Value, json};

/// The error a Task (or the runner) ends with, as Step Functions names it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Failure {
    pub error: String,
    pub cause: String,
}

impl Failure {
    pub fn new(error: impl Into<String>, cause: impl Into<String>) -> Failure {
        Failure { error: error.into(), cause: cause.into() }
    }

    fn runtime(cause: impl Into<String>) -> Failure {
        Failure::new("States.Runtime", cause)
    }
}

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.error, self.cause)
    }
}

/// A definition that cannot be run.
#[derive(Debug, thiserror::Error)]
#[error("state machine definition: {0}")]
pub struct DefinitionError(pub String);

/// What a Task is given beside its parameters.
#[derive(Debug, Clone)]
pub struct TaskContext {
    pub execution: String,
    pub state: String,
    /// The token of a `.waitForTaskToken` task.
    pub task_token: Option<String>,
}

/// The services a definition's Tasks call: `resource` is the Task's `Resource` without a
/// `.sync` or `.waitForTaskToken` suffix, `parameters` its effective input.
#[async_trait::async_trait]
pub trait Services: Send + Sync {
    async fn call(&self, resource: &str, parameters: Value, context: &TaskContext) -> Result<Value, Failure>;
}

type Waiting = tokio::sync::oneshot::Sender<Result<Value, Failure>>;

/// The tasks waiting for a token, and the way their results arrive (`SendTaskSuccess`,
/// `SendTaskFailure`).
#[derive(Debug, Clone, Default)]
pub struct TaskTokens {
    waiting: Arc<Mutex<HashMap<String, Waiting>>>,
    issued: Arc<std::sync::atomic::AtomicU64>,
}

impl TaskTokens {
    fn issue(&self, execution: &str) -> (String, tokio::sync::oneshot::Receiver<Result<Value, Failure>>) {
        let n = self.issued.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let token = format!("local-{execution}-{n}-{}", Utc::now().timestamp_micros());
        let (tx, rx) = tokio::sync::oneshot::channel();
        if let Ok(mut w) = self.waiting.lock() {
            w.insert(token.clone(), tx);
        }
        (token, rx)
    }

    fn take(&self, token: &str) -> Result<Waiting, Failure> {
        self.waiting
            .lock()
            .ok()
            .and_then(|mut w| w.remove(token))
            .ok_or_else(|| Failure::new("TaskDoesNotExist", "no task is waiting for this token"))
    }

    /// Completes the task waiting for `token` with `output`.
    pub fn succeed(&self, token: &str, output: Value) -> Result<(), Failure> {
        self.take(token)?.send(Ok(output)).map_err(|_| Failure::new("TaskTimedOut", "the task stopped waiting"))
    }

    /// Fails the task waiting for `token`.
    pub fn fail(&self, token: &str, error: &str, cause: &str) -> Result<(), Failure> {
        self.take(token)?
            .send(Err(Failure::new(error, cause)))
            .map_err(|_| Failure::new("TaskTimedOut", "the task stopped waiting"))
    }

    /// How many tasks wait.
    pub fn waiting(&self) -> usize {
        self.waiting.lock().map(|w| w.len()).unwrap_or_default()
    }
}

/// How a run treats time.
#[derive(Debug, Clone, Copy)]
pub struct RunOptions {
    /// Retry intervals and Wait states are multiplied by this (0 runs them at once).
    /// `TimeoutSeconds` are limits, not delays, and stay as written.
    pub delay_scale: f64,
    /// A run that makes more transitions than this fails (a loop in the definition).
    pub max_transitions: usize,
}

impl Default for RunOptions {
    fn default() -> RunOptions {
        RunOptions { delay_scale: 1.0, max_transitions: 1000 }
    }
}

/// A parsed definition.
#[derive(Debug, Clone)]
pub struct StateMachine {
    start_at: String,
    states: Map<String, Value>,
}

/// The states and fields the runner knows.
const STATE_FIELDS: &[(&str, &[&str])] = &[
    (
        "Task",
        &[
            "Resource",
            "Parameters",
            "ResultSelector",
            "ResultPath",
            "InputPath",
            "OutputPath",
            "Retry",
            "Catch",
            "TimeoutSeconds",
            "HeartbeatSeconds",
        ],
    ),
    ("Choice", &["Choices", "Default", "InputPath", "OutputPath"]),
    ("Pass", &["Result", "Parameters", "ResultPath", "InputPath", "OutputPath"]),
    ("Wait", &["Seconds", "InputPath", "OutputPath"]),
    ("Succeed", &["InputPath", "OutputPath"]),
    ("Fail", &["Error", "Cause"]),
];

impl StateMachine {
    /// Parses a definition after replacing each `${Name}` with its substitution, as
    /// `DefinitionSubstitutions` does; a `${…}` left without one is refused.
    pub fn load(text: &str, substitutions: &BTreeMap<String, String>) -> Result<StateMachine, DefinitionError> {
        let mut resolved = String::with_capacity(text.len());
        let mut rest = text;
        while let Some(start) = rest.find("${") {
            resolved.push_str(&rest[..start]);
            let end = rest[start..].find('}').ok_or_else(|| DefinitionError("an unclosed ${".into()))? + start;
            let name = &rest[start + 2..end];
            let value =
                substitutions.get(name).ok_or_else(|| DefinitionError(format!("no substitution for ${{{name}}}")))?;
            // The value lands inside a JSON string.
            let quoted = serde_json::to_string(value).map_err(|e| DefinitionError(e.to_string()))?;
            resolved.push_str(&quoted[1..quoted.len() - 1]);
            rest = &rest[end + 1..];
        }
        resolved.push_str(rest);
        let definition: Value =
            serde_json::from_str(&resolved).map_err(|e| DefinitionError(format!("not JSON: {e}")))?;
        let start_at =
            definition["StartAt"].as_str().ok_or_else(|| DefinitionError("StartAt is missing".into()))?.to_string();
        let states =
            definition["States"].as_object().cloned().ok_or_else(|| DefinitionError("States is missing".into()))?;
        let machine = StateMachine { start_at, states };
        machine.check()?;
        Ok(machine)
    }

    /// Every state is of a known type with known fields, and every transition lands on a state.
    fn check(&self) -> Result<(), DefinitionError> {
        let exists = |name: &str, from: &str| {
            if self.states.contains_key(name) {
                Ok(())
            } else {
                Err(DefinitionError(format!("{from} goes to {name:?}, which is not a state")))
            }
        };
        exists(&self.start_at, "StartAt")?;
        for (name, state) in &self.states {
            let kind = state["Type"].as_str().unwrap_or_default();
            let Some((_, fields)) = STATE_FIELDS.iter().find(|(k, _)| *k == kind) else {
                return Err(DefinitionError(format!("state {name:?}: the local runner does not run {kind:?} states")));
            };
            for field in state.as_object().into_iter().flat_map(|o| o.keys()) {
                if !["Type", "Next", "End", "Comment"].contains(&field.as_str()) && !fields.contains(&field.as_str()) {
                    return Err(DefinitionError(format!("state {name:?}: the local runner does not know {field:?}")));
                }
            }
            if let Some(next) = state["Next"].as_str() {
                exists(next, name)?;
            } else if !matches!(kind, "Choice" | "Succeed" | "Fail") && state["End"] != json!(true) {
                return Err(DefinitionError(format!("state {name:?} has neither Next nor End")));
            }
            for choice in state["Choices"].as_array().into_iter().flatten() {
                exists(choice["Next"].as_str().unwrap_or_default(), name)?;
            }
            if let Some(default) = state["Default"].as_str() {
                exists(default, name)?;
            }
            for catcher in state["Catch"].as_array().into_iter().flatten() {
                exists(catcher["Next"].as_str().unwrap_or_default(), name)?;
            }
        }
        Ok(())
    }

    /// The names of the states, in definition order.
    pub fn state_names(&self) -> Vec<String> {
        self.states.keys().cloned().collect()
    }

    /// Runs the machine on `input` to its end.
    pub async fn run(
        &self,
        services: &dyn Services,
        tokens: &TaskTokens,
        execution: &str,
        input: Value,
        options: RunOptions,
    ) -> Execution {
        let mut run = Execution {
            name: execution.to_string(),
            started_at: Utc::now(),
            status: Status::Running,
            output: None,
            failure: None,
            history: Vec::new(),
        };
        let start_time = run.started_at.to_rfc3339();
        let context = |state: &str, retry: u32| {
            json!({
                "Execution": {"Id": format!("local:{execution}"), "Name": execution, "StartTime": start_time, "Input": input},
                "State": {"Name": state, "RetryCount": retry},
                "StateMachine": {"Id": "local"},
            })
        };
        let mut current = self.start_at.clone();
        let mut value = input.clone();
        loop {
            if run.history.len() >= options.max_transitions {
                run.fail(Failure::runtime(format!("more than {} transitions", options.max_transitions)));
                return run;
            }
            let Some(state) = self.states.get(&current) else {
                run.fail(Failure::runtime(format!("no state {current:?}")));
                return run;
            };
            let entered = Utc::now();
            let step = self.step(&current, state, value, services, tokens, &context, options).await;
            let outcome = match &step {
                Step::Next { .. } => "next".to_string(),
                Step::Succeed(_) => "succeeded".to_string(),
                Step::Fail(f) => format!("failed: {}", f.error),
                Step::Caught { failure, .. } => format!("caught {}", failure.error),
            };
            run.history.push(Transition {
                state: current.clone(),
                kind: state["Type"].as_str().unwrap_or_default().to_string(),
                entered,
                exited: Utc::now(),
                attempts: match &step {
                    Step::Next { attempts, .. } | Step::Caught { attempts, .. } => *attempts,
                    _ => 1,
                },
                outcome,
            });
            match step {
                Step::Next { next, output, .. } | Step::Caught { next, output, .. } => {
                    current = next;
                    value = output;
                }
                Step::Succeed(output) => {
                    run.status = Status::Succeeded;
                    run.output = Some(output);
                    return run;
                }
                Step::Fail(failure) => {
                    run.fail(failure);
                    return run;
                }
            }
        }
    }

    #[allow(clippy::too_many_arguments)]
    async fn step(
        &self,
        name: &str,
        state: &Value,
        input: Value,
        services: &dyn Services,
        tokens: &TaskTokens,
        context: &(dyn Fn(&str, u32) -> Value + Sync),
        options: RunOptions,
    ) -> Step {
        let kind = state["Type"].as_str().unwrap_or_default();
        let next = |output: Value, attempts: u32| match state["Next"].as_str() {
            Some(n) => Step::Next { next: n.to_string(), output, attempts },
            None => Step::Succeed(output),
        };
        let effective = match select_path(&input, state.get("InputPath")) {
            Ok(v) => v,
            Err(f) => return Step::Fail(f),
        };
        let finish = |raw_input: &Value, result: Value| -> Result<Value, Failure> {
            let placed = place(raw_input.clone(), state.get("ResultPath"), result)?;
            select_path(&placed, state.get("OutputPath"))
        };
        match kind {
            "Succeed" => match select_path(&effective, state.get("OutputPath")) {
                Ok(out) => Step::Succeed(out),
                Err(f) => Step::Fail(f),
            },
            "Fail" => Step::Fail(Failure::new(
                state["Error"].as_str().unwrap_or("States.Fail"),
                state["Cause"].as_str().unwrap_or_default(),
            )),
            "Pass" => {
                let result = match (state.get("Result"), state.get("Parameters")) {
                    (Some(r), _) => Ok(r.clone()),
                    (None, Some(p)) => resolve(p, &effective, &context(name, 0)),
                    (None, None) => Ok(effective.clone()),
                };
                match result.and_then(|r| finish(&input, r)) {
                    Ok(out) => next(out, 1),
                    Err(f) => Step::Fail(f),
                }
            }
            "Wait" => {
                let seconds = state["Seconds"].as_f64().unwrap_or(0.0);
                sleep(seconds, options).await;
                match select_path(&effective, state.get("OutputPath")) {
                    Ok(out) => next(out, 1),
                    Err(f) => Step::Fail(f),
                }
            }
            "Choice" => {
                for choice in state["Choices"].as_array().into_iter().flatten() {
                    match matches(choice, &effective) {
                        Ok(true) => {
                            let output = match select_path(&effective, state.get("OutputPath")) {
                                Ok(v) => v,
                                Err(f) => return Step::Fail(f),
                            };
                            return Step::Next {
                                next: choice["Next"].as_str().unwrap_or_default().to_string(),
                                output,
                                attempts: 1,
                            };
                        }
                        Ok(false) => {}
                        Err(f) => return Step::Fail(f),
                    }
                }
                match state["Default"].as_str() {
                    Some(d) => Step::Next { next: d.to_string(), output: effective, attempts: 1 },
                    None => Step::Fail(Failure::new("States.NoChoiceMatched", format!("no choice of {name} matched"))),
                }
            }
            "Task" => {
                let mut attempts = 0u32;
                let mut retried: HashMap<usize, u32> = HashMap::new();
                loop {
                    attempts += 1;
                    let result = self.task(name, state, &effective, services, tokens, context, attempts - 1).await;
                    let failure = match result.and_then(|r| finish(&input, r)) {
                        Ok(out) => return next(out, attempts),
                        Err(f) => f,
                    };
                    // The first retrier whose errors match decides; its attempts are its own.
                    let retrier = state["Retry"]
                        .as_array()
                        .into_iter()
                        .flatten()
                        .enumerate()
                        .find(|(_, r)| error_matches(&r["ErrorEquals"], &failure.error));
                    if let Some((i, r)) = retrier {
                        let done = retried.entry(i).or_insert(0);
                        let max = r["MaxAttempts"].as_u64().unwrap_or(3) as u32;
                        if *done < max {
                            let interval = r["IntervalSeconds"].as_f64().unwrap_or(1.0);
                            let backoff = r["BackoffRate"].as_f64().unwrap_or(2.0);
                            let mut delay = interval * backoff.powi(*done as i32);
                            if let Some(cap) = r["MaxDelaySeconds"].as_f64() {
                                delay = delay.min(cap);
                            }
                            *done += 1;
                            tracing::info!(state = name, error = %failure.error, delay, "retrying");
                            sleep(delay, options).await;
                            continue;
                        }
                    }
                    let catcher = state["Catch"]
                        .as_array()
                        .into_iter()
                        .flatten()
                        .find(|c| error_matches(&c["ErrorEquals"], &failure.error));
                    return match catcher {
                        Some(c) => {
                            let error = json!({"Error": failure.error, "Cause": failure.cause});
                            match place(input.clone(), c.get("ResultPath"), error) {
                                Ok(output) => Step::Caught {
                                    next: c["Next"].as_str().unwrap_or_default().to_string(),
                                    output,
                                    failure,
                                    attempts,
                                },
                                Err(f) => Step::Fail(f),
                            }
                        }
                        None => Step::Fail(failure),
                    };
                }
            }
            other => Step::Fail(Failure::runtime(format!("state type {other:?}"))),
        }
    }

    #[allow(clippy::too_many_arguments)]
    async fn task(
        &self,
        name: &str,
        state: &Value,
        effective: &Value,
        services: &dyn Services,
        tokens: &TaskTokens,
        context: &(dyn Fn(&str, u32) -> Value + Sync),
        retry: u32,
    ) -> Result<Value, Failure> {
        let resource = state["Resource"].as_str().unwrap_or_default();
        let (base, wait_for_token) = match resource.strip_suffix(".waitForTaskToken") {
            Some(base) => (base, true),
            None => (resource.strip_suffix(".sync").unwrap_or(resource), false),
        };
        let mut ctx = context(name, retry);
        let execution = ctx["Execution"]["Name"].as_str().unwrap_or_default().to_string();
        let waiting = if wait_for_token {
            let (token, rx) = tokens.issue(&execution);
            ctx["Task"] = json!({"Token": token});
            Some((token, rx))
        } else {
            None
        };
        let parameters = match state.get("Parameters") {
            Some(p) => resolve(p, effective, &ctx)?,
            None => effective.clone(),
        };
        let task_context =
            TaskContext { execution, state: name.to_string(), task_token: waiting.as_ref().map(|(t, _)| t.clone()) };
        let timeout = state["TimeoutSeconds"].as_f64();
        let call = services.call(base, parameters, &task_context);
        let result = match (timeout, waiting.is_some()) {
            // A waiting task's timeout runs from its start to the token's result.
            (Some(t), false) => match tokio::time::timeout(Duration::from_secs_f64(t.max(0.0)), call).await {
                Ok(r) => r,
                Err(_) => Err(Failure::new("States.Timeout", format!("{name} ran longer than {t} s"))),
            },
            _ => call.await,
        };
        let result = match waiting {
            None => result?,
            Some((token, rx)) => {
                if let Err(f) = result {
                    let _ = tokens.take(&token);
                    return Err(f);
                }
                let outcome = match timeout {
                    Some(t) => match tokio::time::timeout(Duration::from_secs_f64(t.max(0.0)), rx).await {
                        Ok(r) => r,
                        Err(_) => {
                            let _ = tokens.take(&token);
                            return Err(Failure::new("States.Timeout", format!("no task result within {t} s")));
                        }
                    },
                    None => rx.await,
                };
                outcome.map_err(|_| Failure::runtime("the task token was dropped"))??
            }
        };
        match state.get("ResultSelector") {
            Some(selector) => resolve(selector, &result, &ctx),
            None => Ok(result),
        }
    }
}

fn scaled(seconds: f64, options: RunOptions) -> Duration {
    Duration::from_secs_f64((seconds * options.delay_scale).max(0.0))
}

async fn sleep(seconds: f64, options: RunOptions) {
    let d = scaled(seconds, options);
    if !d.is_zero() {
        tokio::time::sleep(d).await;
    }
}

enum Step {
    Next { next: String, output: Value, attempts: u32 },
    Caught { next: String, output: Value, failure: Failure, attempts: u32 },
    Succeed(Value),
    Fail(Failure),
}

/// How a run ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum Status {
    Running,
    Succeeded,
    Failed,
}

/// One state entered and left.
#[derive(Debug, Clone, Serialize)]
pub struct Transition {
    pub state: String,
    pub kind: String,
    pub entered: DateTime<Utc>,
    pub exited: DateTime<Utc>,
    /// Attempts of a Task (1 without retries).
    pub attempts: u32,
    pub outcome: String,
}

/// A run of a state machine.
#[derive(Debug, Clone, Serialize)]
pub struct Execution {
    pub name: String,
    pub started_at: DateTime<Utc>,
    pub status: Status,
    pub output: Option<Value>,
    pub failure: Option<Failure>,
    pub history: Vec<Transition>,
}

impl Execution {
    fn fail(&mut self, failure: Failure) {
        self.status = Status::Failed;
        self.failure = Some(failure);
    }

    /// The states passed through, in order.
    pub fn path(&self) -> Vec<&str> {
        self.history.iter().map(|t| t.state.as_str()).collect()
    }
}

/// Whether a retrier's or catcher's `ErrorEquals` names `error`.
fn error_matches(names: &Value, error: &str) -> bool {
    names
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .any(|n| n == error || n == "States.ALL" || (n == "States.TaskFailed" && error != "States.Timeout"))
}

/// The value a path selects: `$`, `$.a.b`, `$.a[0]`. A missing `InputPath`/`OutputPath` is
/// `$`; `null` selects `{}`.
fn select_path(value: &Value, path: Option<&Value>) -> Result<Value, Failure> {
    match path {
        None => Ok(value.clone()),
        Some(Value::Null) => Ok(json!({})),
        Some(Value::String(p)) => select(value, p).cloned().ok_or_else(|| missing(p)),
        Some(other) => Err(Failure::runtime(format!("a path must be a string, not {other}"))),
    }
}

fn missing(path: &str) -> Failure {
    Failure::runtime(format!("the path {path:?} selects nothing from the input"))
}

/// The segments of a reference path.
fn segments(path: &str) -> Result<Vec<Segment<'_>>, Failure> {
    let rest = path.strip_prefix('$').ok_or_else(|| Failure::runtime(format!("{path:?} is not a path")))?;
    let mut out = Vec::new();
    let mut rest = rest;
    while !rest.is_empty() {
        if let Some(r) = rest.strip_prefix('.') {
            let end = r.find(['.', '[']).unwrap_or(r.len());
            if end == 0 {
                return Err(Failure::runtime(format!("{path:?}: an empty field name")));
            }
            out.push(Segment::Field(&r[..end]));
            rest = &r[end..];
        } else if let Some(r) = rest.strip_prefix('[') {
            let end = r.find(']').ok_or_else(|| Failure::runtime(format!("{path:?}: an unclosed [")))?;
            let index = r[..end].parse().map_err(|_| Failure::runtime(format!("{path:?}: not an index")))?;
            out.push(Segment::Index(index));
            rest = &r[end + 1..];
        } else {
            return Err(Failure::runtime(format!("{path:?} is not a path the local runner reads")));
        }
    }
    Ok(out)
}

enum Segment<'a> {
    Field(&'a str),
    Index(usize),
}

fn select<'v>(value: &'v Value, path: &str) -> Option<&'v Value> {
    let mut v = value;
    for segment in segments(path).ok()? {
        v = match segment {
            Segment::Field(f) => v.get(f)?,
            Segment::Index(i) => v.get(i)?,
        };
    }
    Some(v)
}

/// `ResultPath`: `$` (the default) replaces the input, `null` keeps it, `$.a.b` sets a field.
fn place(mut input: Value, path: Option<&Value>, result: Value) -> Result<Value, Failure> {
    let path = match path {
        None => return Ok(result),
        Some(Value::Null) => return Ok(input),
        Some(Value::String(p)) => p,
        Some(other) => return Err(Failure::runtime(format!("ResultPath must be a string, not {other}"))),
    };
    let segments = segments(path)?;
    if segments.is_empty() {
        return Ok(result);
    }
    let mut target = &mut input;
    for (i, segment) in segments.iter().enumerate() {
        let Segment::Field(field) = segment else {
            return Err(Failure::runtime(format!("ResultPath {path:?}: only fields can be set")));
        };
        if !target.is_object() {
            return Err(Failure::runtime(format!("ResultPath {path:?}: the input is not an object there")));
        }
        let object = target.as_object_mut().ok_or_else(|| Failure::runtime("not an object"))?;
        if i + 1 == segments.len() {
            object.insert((*field).to_string(), result);
            return Ok(input);
        }
        target = object.entry((*field).to_string()).or_insert_with(|| json!({}));
    }
    Ok(input)
}

/// A payload template: fields named `x.$` take the value their path selects (from the input,
/// or with `$$` from the context object).
fn resolve(template: &Value, input: &Value, context: &Value) -> Result<Value, Failure> {
    match template {
        Value::Object(fields) => {
            let mut out = Map::new();
            for (key, value) in fields {
                match key.strip_suffix(".$") {
                    Some(name) => {
                        let path = value.as_str().ok_or_else(|| Failure::runtime(format!("{key} needs a path")))?;
                        let selected = if let Some(p) = path.strip_prefix('$').filter(|p| p.starts_with('$')) {
                            select(context, p).cloned().ok_or_else(|| missing(path))?
                        } else if path.starts_with('$') {
                            select(input, path).cloned().ok_or_else(|| missing(path))?
                        } else {
                            return Err(Failure::runtime(format!(
                                "{key}: {path:?} (intrinsic functions are not run locally)"
                            )));
                        };
                        out.insert(name.to_string(), selected);
                    }
                    None => {
                        out.insert(key.clone(), resolve(value, input, context)?);
                    }
                }
            }
            Ok(Value::Object(out))
        }
        Value::Array(items) => {
            Ok(Value::Array(items.iter().map(|i| resolve(i, input, context)).collect::<Result<_, _>>()?))
        }
        other => Ok(other.clone()),
    }
}

/// Whether a Choice rule holds for `input`.
fn matches(rule: &Value, input: &Value) -> Result<bool, Failure> {
    if let Some(all) = rule["And"].as_array() {
        for r in all {
            if !matches(r, input)? {
                return Ok(false);
            }
        }
        return Ok(true);
    }
    if let Some(any) = rule["Or"].as_array() {
        for r in any {
            if matches(r, input)? {
                return Ok(true);
            }
        }
        return Ok(false);
    }
    if rule.get("Not").is_some() {
        return Ok(!matches(&rule["Not"], input)?);
    }
    let path = rule["Variable"].as_str().ok_or_else(|| Failure::runtime("a choice rule without Variable"))?;
    let value = select(input, path);
    let operators = [
        "StringEquals",
        "BooleanEquals",
        "NumericEquals",
        "NumericGreaterThan",
        "NumericGreaterThanEquals",
        "NumericLessThan",
        "NumericLessThanEquals",
        "IsPresent",
        "IsNull",
    ];
    let Some((op, operand)) = operators.iter().find_map(|op| rule.get(*op).map(|v| (*op, v))) else {
        return Err(Failure::runtime(format!("a choice rule on {path} with an operator the local runner lacks")));
    };
    if op == "IsPresent" {
        return Ok(value.is_some() == operand.as_bool().unwrap_or(true));
    }
    // A comparison with a missing variable is a runtime error in Step Functions.
    let value = value.ok_or_else(|| missing(path))?;
    let number = |v: &Value| v.as_f64();
    Ok(match op {
        "StringEquals" => value.as_str().is_some() && value.as_str() == operand.as_str(),
        "BooleanEquals" => value.as_bool().is_some() && value.as_bool() == operand.as_bool(),
        "IsNull" => value.is_null() == operand.as_bool().unwrap_or(true),
        _ => match (number(value), number(operand)) {
            (Some(a), Some(b)) => match op {
                "NumericEquals" => a == b,
                "NumericGreaterThan" => a > b,
                "NumericGreaterThanEquals" => a >= b,
                "NumericLessThan" => a < b,
                _ => a <= b,
            },
            _ => false,
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_select_and_place() {
        let v = json!({"a": {"b": [1, {"c": "x"}]}});
        assert_eq!(select(&v, "$.a.b[1].c"), Some(&json!("x")));
        assert_eq!(select(&v, "$.a.z"), None);
        let placed = place(v.clone(), Some(&json!("$.a.d.e")), json!(3)).expect("placed");
        assert_eq!(placed["a"]["d"]["e"], 3);
        assert_eq!(place(v.clone(), Some(&Value::Null), json!(3)).expect("kept"), v);
        assert_eq!(place(v, None, json!(3)).expect("replaced"), json!(3));
    }

    #[test]
    fn templates_resolve_input_and_context_paths() {
        let out = resolve(
            &json!({"step": "x", "state.$": "$", "token.$": "$$.Task.Token", "list": [{"v.$": "$.n"}]}),
            &json!({"n": 2}),
            &json!({"Task": {"Token": "t"}}),
        )
        .expect("resolved");
        assert_eq!(out, json!({"step": "x", "state": {"n": 2}, "token": "t", "list": [{"v": 2}]}));
        assert!(resolve(&json!({"a.$": "States.Format('{}', $.n)"}), &json!({}), &json!({})).is_err());
    }

    #[test]
    fn choice_rules() {
        let input = json!({"d": "HOLD", "n": 3, "b": true});
        assert!(matches(&json!({"Variable": "$.d", "StringEquals": "HOLD"}), &input).expect("rule"));
        assert!(!matches(&json!({"Variable": "$.b", "BooleanEquals": false}), &input).expect("rule"));
        assert!(matches(&json!({"Variable": "$.z", "IsPresent": false}), &input).expect("rule"));
        assert!(
            matches(
                &json!({"And": [{"Variable": "$.n", "NumericGreaterThan": 2}, {"Not": {"Variable": "$.d", "StringEquals": "X"}}]}),
                &input
            )
            .expect("rule")
        );
        assert!(matches(&json!({"Variable": "$.z", "StringEquals": "x"}), &input).is_err());
    }

    #[test]
    fn errors_match_like_step_functions() {
        assert!(error_matches(&json!(["States.ALL"]), "Anything"));
        assert!(error_matches(&json!(["States.TaskFailed"]), "TrainFailed"));
        assert!(!error_matches(&json!(["States.TaskFailed"]), "States.Timeout"));
        assert!(!error_matches(&json!(["PipelineBusy"]), "TrainFailed"));
    }

    #[test]
    fn definitions_are_checked_when_loaded() {
        let subs = BTreeMap::from([("Fn".to_string(), "arn:fn".to_string())]);
        let ok = r#"{"StartAt": "A", "States": {"A": {"Type": "Task", "Resource": "${Fn}", "End": true}}}"#;
        assert!(StateMachine::load(ok, &subs).is_ok());
        let missing = r#"{"StartAt": "A", "States": {"A": {"Type": "Task", "Resource": "${Other}", "End": true}}}"#;
        assert!(StateMachine::load(missing, &subs).expect_err("refused").0.contains("${Other}"));
        let map = r#"{"StartAt": "A", "States": {"A": {"Type": "Map", "End": true}}}"#;
        assert!(StateMachine::load(map, &subs).expect_err("refused").0.contains("Map"));
        let dangling = r#"{"StartAt": "A", "States": {"A": {"Type": "Pass", "Next": "B"}}}"#;
        assert!(StateMachine::load(dangling, &subs).expect_err("refused").0.contains("\"B\""));
    }
}

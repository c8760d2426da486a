//! The steps of the retraining pipeline, one function each, over the lake: what the Lambda
//! step function and the local runner both call with the state the definition passes.
//!
//! Every step is idempotent for its input: it returns what an earlier attempt of the same run
//! wrote (snapshot, model, evaluation) instead of doing the work again, registration finds an
//! identical version, and a decision is written once.

use std::collections::BTreeMap;

use chrono::{DateTime, Duration, NaiveDate, Utc};
use mlops_contract::Contract;
use mlops_contract::validate::Value as Cell;
use mlops_lake::registry::{self, Approval, ApprovalStatus, Lineage, Manifest};
use mlops_lake::{Lake, keys};
use mlops_model::{Model, Scorer};
use mlops_train::evaluate::{Evaluated, EvaluationRecord};
use mlops_train::gate::{Decision, Gate};
use mlops_train::metrics::Metrics;
use mlops_train::{TrainConfig, TrainingRecord};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use crate::data::{Rows, readable, split_holdout};
use crate::error::{Error, Result};
use crate::guard;
use crate::record::{self, PipelineRecord, RunStatus, StepRecord};
use crate::register::{NewVersion, register_model};
use crate::state::*;

/// The step function's configuration (its environment on Lambda).
#[derive(Debug, Clone, PartialEq)]
pub struct PipelineConfig {
    pub bucket: String,
    /// The model this pipeline retrains.
    pub model: String,
    /// The version serving now: the champion a challenger is gated against.
    pub champion: Option<u32>,
    /// Days of curated partitions a snapshot takes (ending on the run's day).
    pub window_days: u32,
    /// How long a run may hold the model's guard before another may take it over.
    pub guard_ttl: Duration,
    /// The code version recorded in the lineage of what the pipeline registers.
    pub code_version: Option<String>,
}

/// A step and its input, as the definition's `Parameters` pass them.
#[derive(Debug, Clone, Deserialize)]
#[serde(tag = "step", rename_all = "snake_case")]
pub enum StepInput {
    Begin {
        execution: String,
        trigger: Value,
        #[serde(default)]
        settings: Settings,
    },
    Snapshot {
        state: State,
    },
    Train {
        state: State,
    },
    Collect {
        state: State,
    },
    Evaluate {
        state: State,
    },
    Register {
        state: State,
    },
    AwaitApproval {
        token: String,
        state: State,
    },
    Promote {
        state: State,
    },
    Finish {
        state: State,
    },
    Fail {
        state: State,
    },
}

/// Runs one step: `input` is the Lambda's payload.
pub async fn handle(lake: &Lake, config: &PipelineConfig, input: Value) -> Result<Value> {
    let input: StepInput = serde_json::from_value(input)
        .map_err(|e| Error::Input(format!("the step's input: {}", bounded(&e.to_string()))))?;
    match input {
        StepInput::Begin { execution, trigger, settings } => begin(lake, config, &execution, &trigger, settings).await,
        StepInput::Snapshot { state } => Ok(to_json(&snapshot(lake, config, &state).await?)),
        StepInput::Train { state } => Ok(to_json(&train(lake, &state).await?)),
        StepInput::Collect { state } => Ok(to_json(&collect(lake, &state).await?)),
        StepInput::Evaluate { state } => Ok(to_json(&evaluate(lake, &state).await?)),
        StepInput::Register { state } => Ok(to_json(&register(lake, config, &state).await?)),
        StepInput::AwaitApproval { token, state } => await_approval(lake, &token, &state).await,
        StepInput::Promote { state } => Ok(to_json(&promote(lake, &state).await?)),
        StepInput::Finish { state } => finish(lake, &state).await,
        StepInput::Fail { state } => fail(lake, &state).await,
    }
}

fn to_json(value: &impl Serialize) -> Value {
    serde_json::to_value(value).unwrap_or(Value::Null)
}

/// Text cut to 1,000 characters (errors and causes that go into records).
fn bounded(text: &str) -> String {
    const MAX: usize = 1000;
    if text.len() <= MAX {
        return text.to_string();
    }
    let cut = (0..=MAX).rev().find(|&i| text.is_char_boundary(i)).unwrap_or(0);
    format!("{}…", &text[..cut])
}

fn need<'a, T>(value: &'a Option<T>, what: &str) -> Result<&'a T> {
    value.as_ref().ok_or_else(|| Error::Input(format!("the state has no {what}: the step runs after it")))
}

fn uri(lake: &Lake, key: &str) -> String {
    lake.uri(key)
}

fn elapsed_ms(from: DateTime<Utc>, to: DateTime<Utc>) -> f64 {
    (to - from).num_microseconds().unwrap_or_default() as f64 / 1e3
}

/// Adds a step to the run's record.
async fn record_step(
    lake: &Lake,
    run: &Run,
    name: &str,
    started_at: DateTime<Utc>,
    inputs: Vec<String>,
    outputs: Vec<String>,
    detail: Value,
) -> Result<()> {
    let ended_at = Utc::now();
    tracing::info!(run = %run.run_id, model = %run.model, step = name, ms = elapsed_ms(started_at, ended_at), "step done");
    record::update(lake, &run.record_key, |r| {
        r.push(StepRecord {
            name: name.to_string(),
            started_at,
            ended_at,
            duration_ms: elapsed_ms(started_at, ended_at),
            inputs,
            outputs,
            detail,
        })
    })
    .await?;
    Ok(())
}

async fn get_json<T: serde::de::DeserializeOwned>(lake: &Lake, key: &str) -> Result<Option<T>> {
    match lake.get(key).await {
        Ok(o) => Ok(Some(serde_json::from_slice(&o.bytes).map_err(|e| Error::json(key, e))?)),
        Err(mlops_lake::Error::NotFound { .. }) => Ok(None),
        Err(e) => Err(e.into()),
    }
}

async fn put_json(lake: &Lake, key: &str, value: &impl Serialize) -> Result<()> {
    let json = serde_json::to_vec_pretty(value).map_err(|e| Error::json(key, e))?;
    lake.put(key, json, "application/json").await?;
    Ok(())
}

/// A model's pipeline setting file (`train.yaml`, `gate.yaml`), if the lake holds one.
async fn setting(lake: &Lake, model: &str, file: &str) -> Result<Option<(String, String)>> {
    let key = keys::pipeline_settings(model, file);
    match lake.get(&key).await {
        Ok(o) => Ok(Some((String::from_utf8_lossy(&o.bytes).into_owned(), key))),
        Err(mlops_lake::Error::NotFound { .. }) => Ok(None),
        Err(e) => Err(e.into()),
    }
}

async fn load_contract(lake: &Lake, key: &str) -> Result<Contract> {
    let object = lake.get(key).await?;
    Ok(Contract::from_yaml(&String::from_utf8_lossy(&object.bytes), &uri(lake, key))?)
}

/// The snapshot's rows, in snapshot order.
async fn read_rows(lake: &Lake, contract: &Contract, objects: &[SnapshotObject]) -> Result<Rows> {
    let mut rows = Rows::default();
    for object in objects {
        let bytes = lake.get(&object.key).await?.bytes;
        rows.add_bytes(contract, &uri(lake, &object.key), bytes)?;
    }
    Ok(rows.finish())
}

/// Class names by label: those the model records, else the target's allowed values.
fn class_labels(model: &[u8], contract: &Contract) -> Option<Vec<String>> {
    mlops_train::onnx::class_labels(model).or_else(|| {
        let target = contract.target.as_ref().and_then(|t| contract.column(t))?;
        target.allowed.clone()
    })
}

/// What started the run, from the execution's input: an EventBridge event (`DriftDetected`,
/// `ModelQualityDegraded`, a schedule) or a manual input (`{"by": …}`).
pub fn trigger_of(input: &Value) -> Trigger {
    let text = |v: &Value| v.as_str().map(|s| bounded(s).chars().take(256).collect::<String>());
    let event_id = input.get("id").and_then(text);
    match input.get("detail-type").and_then(Value::as_str) {
        Some("DriftDetected") => {
            let detail = &input["detail"];
            Trigger {
                kind: TriggerKind::Drift,
                event_id,
                report_key: detail.get("report_key").and_then(text),
                drift_share: detail["drift_share"].as_f64(),
                drifted: detail["drifted"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter_map(Value::as_str)
                    .take(100)
                    .map(|s| s.chars().take(64).collect())
                    .collect(),
                by: None,
            }
        }
        Some("ModelQualityDegraded") => Trigger {
            kind: TriggerKind::Quality,
            event_id,
            report_key: input["detail"].get("report_key").and_then(text),
            drift_share: None,
            drifted: Vec::new(),
            by: None,
        },
        Some("Scheduled Event") => Trigger {
            kind: TriggerKind::Schedule,
            event_id,
            report_key: None,
            drift_share: None,
            drifted: Vec::new(),
            by: None,
        },
        _ => Trigger {
            kind: TriggerKind::Manual,
            event_id: None,
            report_key: None,
            drift_share: None,
            drifted: Vec::new(),
            by: input.get("by").and_then(text),
        },
    }
}

/// Begin: checks the trigger, claims the model's guard and opens the record. Its output
/// replaces the state (`ResultPath: "$"`): `{"run": …}`.
pub async fn begin(
    lake: &Lake,
    config: &PipelineConfig,
    execution: &str,
    input: &Value,
    settings: Settings,
) -> Result<Value> {
    let started = Utc::now();
    if !keys::is_run_id(execution) {
        return Err(Error::Input(format!(
            "the execution name {:?} is not a run id (1 to 80 letters, digits, '-' and '_')",
            bounded(execution)
        )));
    }
    let named = input.pointer("/detail/model").or_else(|| input.get("model")).and_then(Value::as_str);
    if let Some(other) = named.filter(|m| *m != config.model) {
        return Err(Error::Input(format!(
            "the trigger is for model {:?}; this pipeline retrains {}",
            bounded(other),
            config.model
        )));
    }
    let dataset = match config.champion {
        Some(v) => registry::load_reference(lake, &config.model, v).await?.manifest.dataset,
        None => input
            .pointer("/detail/dataset")
            .or_else(|| input.get("dataset"))
            .and_then(Value::as_str)
            .filter(|d| mlops_contract::is_path_segment(d))
            .map(str::to_string)
            .ok_or_else(|| {
                Error::Input(format!("{} has no champion to retrain and the trigger names no dataset", config.model))
            })?,
    };
    let run = Run {
        run_id: execution.to_string(),
        model: config.model.clone(),
        dataset,
        champion: config.champion,
        trigger: trigger_of(input),
        trainer: settings.trainer,
        approval: settings.approval,
        promote_as: settings.promote_as,
        window_days: config.window_days,
        started_at: started,
        record_key: keys::pipeline_record(&config.model, execution),
    };
    let mut record = PipelineRecord {
        run_id: run.run_id.clone(),
        model: run.model.clone(),
        trigger: run.trigger.clone(),
        settings,
        status: RunStatus::Running,
        outcome: None,
        champion: run.champion,
        decision: None,
        version: None,
        started_at: started,
        finished_at: None,
        duration_ms: None,
        steps: Vec::new(),
        error: None,
    };
    if let Err(e) = guard::claim(lake, &run.model, &run.run_id, config.guard_ttl, started).await {
        if let Error::Busy { .. } = &e {
            tracing::warn!(run = %run.run_id, model = %run.model, reason = %e, "skipped: the model's guard is held");
            record.error = Some(CaughtError { error: e.name().into(), cause: e.to_string() });
            record.close(RunStatus::Skipped, Utc::now());
            record::write(lake, &run.record_key, &record).await?;
        }
        return Err(e);
    }
    if !lake.exists(&run.record_key).await? {
        record.push(StepRecord {
            name: "begin".into(),
            started_at: started,
            ended_at: Utc::now(),
            duration_ms: elapsed_ms(started, Utc::now()),
            inputs: Vec::new(),
            outputs: vec![uri(lake, &keys::pipeline_guard(&run.model))],
            detail: json!({"trigger": run.trigger.kind, "champion": run.champion, "dataset": run.dataset}),
        });
        record::write(lake, &run.record_key, &record).await?;
    }
    Ok(json!({ "run": run }))
}

/// The day of a curated key (`curated/<dataset>/dt=YYYY-MM-DD/…`).
fn curated_day(key: &str) -> Option<NaiveDate> {
    let segment = key.split('/').find_map(|s| s.strip_prefix("dt="))?;
    NaiveDate::parse_from_str(segment, "%Y-%m-%d").ok()
}

/// The lake keys of a version's training data, from its lineage.
fn training_keys(manifest: &Manifest, bucket: &str) -> Vec<String> {
    let prefix = format!("s3://{bucket}/");
    let Some(training) = manifest.lineage.as_ref().and_then(|l| l.training.as_ref()) else { return Vec::new() };
    training["data"]["inputs"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|i| i["key"].as_str()?.strip_prefix(&prefix).map(str::to_string))
        .filter(|k| keys::is_contained(k))
        .collect()
}

fn snapshot_digest(objects: &[SnapshotObject]) -> String {
    let mut digest = Sha256::new();
    for o in objects {
        digest.update(format!("{}\t{}\t{}\n", o.key, o.etag.as_deref().unwrap_or(""), o.size).as_bytes());
    }
    hex::encode(digest.finalize())
}

/// Snapshot: the curated partitions of the window (the run's day and the `window_days - 1`
/// before it) plus the champion's training set where the lake holds it, as a key list with a
/// digest, kept in `pipelines/<name>/<run>/snapshot.json`. For a trainer of the user's it also
/// writes the training rows as one CSV file.
pub async fn snapshot(lake: &Lake, config: &PipelineConfig, state: &State) -> Result<Snapshot> {
    let run = need(&state.run, "run")?;
    let started = Utc::now();
    let key = keys::pipeline_file(&run.model, &run.run_id, "snapshot.json");
    if let Some(done) = get_json::<Snapshot>(lake, &key).await? {
        return Ok(light(done));
    }
    let contract_key = match run.champion {
        Some(v) => keys::model_file(&run.model, v, "contract.yaml"),
        None => keys::dataset_contract(&run.dataset),
    };
    let to = run.started_at.date_naive();
    let from = to - chrono::Days::new(u64::from(run.window_days.max(1) - 1));
    let mut objects: Vec<SnapshotObject> = lake
        .list_objects(&format!("curated/{}/", run.dataset))
        .await?
        .into_iter()
        .filter(|o| readable(&o.key) && curated_day(&o.key).is_some_and(|d| d >= from && d <= to))
        .map(|o| SnapshotObject { key: o.key, etag: o.etag, size: u64::try_from(o.size).unwrap_or_default() })
        .collect();
    if let Some(v) = run.champion {
        let stored = registry::load_reference(lake, &run.model, v).await?;
        for k in training_keys(&stored.manifest, &config.bucket) {
            if objects.iter().any(|o| o.key == k) {
                continue;
            }
            if let Some(o) = lake.list_objects(&k).await?.into_iter().find(|o| o.key == k) {
                objects.push(SnapshotObject {
                    key: o.key,
                    etag: o.etag,
                    size: u64::try_from(o.size).unwrap_or_default(),
                });
            }
        }
    }
    if objects.is_empty() {
        return Err(Error::NoData(format!(
            "no curated rows of {} from {from} to {to}, and no training set of the champion in the lake",
            run.dataset
        )));
    }
    objects.sort_by(|a, b| a.key.cmp(&b.key));
    let mut snap = Snapshot {
        key: key.clone(),
        contract_key: contract_key.clone(),
        from,
        to,
        digest: snapshot_digest(&objects),
        object_count: objects.len(),
        objects,
        trainer_env: Vec::new(),
        data_prefix_uri: None,
        output_uri: None,
    };
    let mut outputs = vec![uri(lake, &key)];
    if run.trainer != Trainer::Builtin {
        let contract = load_contract(lake, &contract_key).await?;
        let rows = read_rows(lake, &contract, &objects_of(lake, &snap).await?).await?;
        let (train_rows, _) = split_holdout(rows.rows);
        let mut w = csv::Writer::from_writer(Vec::new());
        let csv_error = |e: csv::Error| Error::Input(format!("writing the training rows: {e}"));
        w.write_record(contract.columns.iter().map(|c| c.name.as_str())).map_err(csv_error)?;
        for row in &train_rows {
            w.write_record(row.iter().map(Cell::to_text)).map_err(csv_error)?;
        }
        let csv = w.into_inner().map_err(|e| Error::Input(format!("writing the training rows: {e}")))?;
        let data_key = keys::pipeline_file(&run.model, &run.run_id, "data/train.csv");
        lake.put(&data_key, csv, "text/csv").await?;
        outputs.push(uri(lake, &data_key));
        let file = |name: &str| uri(lake, &keys::pipeline_file(&run.model, &run.run_id, name));
        snap.trainer_env = vec![
            EnvVar::plain("MLOPS_TRAIN_DATA", uri(lake, &data_key)),
            EnvVar::plain("MLOPS_CONTRACT", uri(lake, &contract_key)),
            EnvVar::plain("MLOPS_TRAIN_MODEL", file("model.onnx")),
            EnvVar::plain("MLOPS_TRAIN_METRICS", file("metrics.json")),
        ];
        snap.data_prefix_uri = Some(file("data/"));
        snap.output_uri = Some(file("sagemaker/"));
    }
    put_json(lake, &key, &snap).await?;
    let inputs = snap.objects.iter().map(|o| uri(lake, &o.key)).collect();
    let detail = json!({"objects": snap.objects.len(), "from": from, "to": to, "digest": snap.digest});
    record_step(lake, run, "snapshot", started, inputs, outputs, detail).await?;
    Ok(light(snap))
}

/// The snapshot as the state carries it: without its object list.
fn light(mut snap: Snapshot) -> Snapshot {
    snap.objects = Vec::new();
    snap
}

/// The snapshot's objects, from the kept snapshot.
async fn objects_of(lake: &Lake, snap: &Snapshot) -> Result<Vec<SnapshotObject>> {
    if !snap.objects.is_empty() {
        return Ok(snap.objects.clone());
    }
    let kept = get_json::<Snapshot>(lake, &snap.key)
        .await?
        .ok_or_else(|| Error::Input(format!("the snapshot {} is not in the lake", snap.key)))?;
    if kept.digest != snap.digest {
        return Err(Error::Input(format!("the snapshot {} changed since the run took it", snap.key)));
    }
    Ok(kept.objects)
}

fn blocking_failed(e: tokio::task::JoinError) -> Error {
    Error::Train(mlops_train::Error::Invalid(format!("the work stopped: {e}")))
}

/// Train (built-in): fits the trainer on the snapshot's training rows (all but the holdout),
/// checks the ONNX export against the native model, and writes `model.onnx` and
/// `training.json` under the run.
pub async fn train(lake: &Lake, state: &State) -> Result<Trained> {
    let (run, snap) = (need(&state.run, "run")?, need(&state.snapshot, "snapshot")?);
    let started = Utc::now();
    let model_key = keys::pipeline_file(&run.model, &run.run_id, "model.onnx");
    let record_key = keys::pipeline_file(&run.model, &run.run_id, "training.json");
    if let Some(done) = get_json::<TrainingRecord>(lake, &record_key).await?
        && lake.exists(&model_key).await?
    {
        return Ok(trained_of(&done, model_key, record_key));
    }
    let contract = load_contract(lake, &snap.contract_key).await?;
    let mut inputs = vec![uri(lake, &snap.key), uri(lake, &snap.contract_key)];
    let config = match setting(lake, &run.model, "train.yaml").await? {
        Some((text, key)) => {
            inputs.push(uri(lake, &key));
            TrainConfig::from_yaml(&text, &uri(lake, &key))?
        }
        None => TrainConfig::default(),
    };
    let rows = read_rows(lake, &contract, &objects_of(lake, snap).await?).await?;
    let data = rows.snapshot;
    let (train_rows, _) = split_holdout(rows.rows);
    if train_rows.is_empty() {
        return Err(Error::NoData(format!("the snapshot {} holds no valid row to train on", snap.key)));
    }
    let (onnx, training) = tokio::task::spawn_blocking(move || -> Result<(Vec<u8>, TrainingRecord)> {
        let mut trained = mlops_train::train(&contract, &train_rows, &config, data)?;
        trained.record.export_check = Some(mlops_train::evaluate::check_export(&contract, &trained, &train_rows)?);
        Ok((trained.onnx, trained.record))
    })
    .await
    .map_err(blocking_failed)??;
    lake.put(&model_key, onnx, "application/octet-stream").await?;
    put_json(lake, &record_key, &training).await?;
    let detail = json!({
        "rows": training.rows,
        "duration_ms": training.duration_ms,
        "validation": training.metrics.as_ref().and_then(|m| m.validation.as_ref()).map(headline),
    });
    let outputs = vec![uri(lake, &model_key), uri(lake, &record_key)];
    record_step(lake, run, "train", started, inputs, outputs, detail).await?;
    Ok(trained_of(&training, model_key, record_key))
}

fn trained_of(record: &TrainingRecord, model_key: String, record_key: String) -> Trained {
    Trained {
        model_key,
        record_key,
        model_sha256: record.model_sha256.clone(),
        trainer: record.trainer.clone(),
        training_rows: record.rows.training,
        duration_ms: record.duration_ms,
    }
}

/// The headline metrics of a result, by name.
fn headline(metrics: &Metrics) -> BTreeMap<String, f64> {
    let names: &[&str] = match metrics {
        Metrics::Classification(_) => &["accuracy", "macro_f1", "log_loss", "roc_auc"],
        Metrics::Regression(_) => &["rmse", "mae", "r2"],
    };
    names.iter().filter_map(|n| metrics.get(n).map(|v| ((*n).to_string(), v))).collect()
}

/// The ONNX file inside a SageMaker model artifact (`model.tar.gz`), read up to 1 GiB.
fn onnx_in_archive(archive: &[u8]) -> Result<Vec<u8>> {
    use std::io::Read as _;
    const MAX: u64 = 1 << 30;
    let mut tar = tar::Archive::new(flate2::read::GzDecoder::new(archive));
    let entries = tar.entries().map_err(|e| Error::Model(format!("the model artifact is not a .tar.gz: {e}")))?;
    for entry in entries {
        let entry = entry.map_err(|e| Error::Model(format!("reading the model artifact: {e}")))?;
        let is_model = entry.path().ok().and_then(|p| p.file_name().map(|f| f == "model.onnx")).unwrap_or(false);
        if is_model {
            let mut bytes = Vec::new();
            entry
                .take(MAX)
                .read_to_end(&mut bytes)
                .map_err(|e| Error::Model(format!("reading model.onnx from the artifact: {e}")))?;
            return Ok(bytes);
        }
    }
    Err(Error::Model("the model artifact holds no model.onnx".into()))
}

/// Collect: after a trainer of the user's, takes its model (the SageMaker artifact's
/// `model.onnx`, or what the CodeBuild project wrote to `MLOPS_TRAIN_MODEL`), checks that it
/// loads and fits the contract, and writes its training record.
pub async fn collect(lake: &Lake, state: &State) -> Result<Trained> {
    let (run, snap, external) =
        (need(&state.run, "run")?, need(&state.snapshot, "snapshot")?, need(&state.external, "external trainer")?);
    let started = Utc::now();
    let model_key = keys::pipeline_file(&run.model, &run.run_id, "model.onnx");
    let record_key = keys::pipeline_file(&run.model, &run.run_id, "training.json");
    let mut inputs = Vec::new();
    let bytes = match &external.artifact {
        Some(artifact) => {
            let key = artifact
                .strip_prefix(&format!("s3://{}/", lake.bucket()))
                .filter(|k| keys::is_contained(k))
                .ok_or_else(|| Error::Input(format!("the artifact {} is not in the lake", bounded(artifact))))?;
            inputs.push(artifact.clone());
            let onnx = onnx_in_archive(&lake.get(key).await?.bytes)?;
            lake.put(&model_key, onnx.clone(), "application/octet-stream").await?;
            onnx
        }
        None => match lake.get(&model_key).await {
            Ok(o) => {
                inputs.push(uri(lake, &model_key));
                o.bytes
            }
            Err(mlops_lake::Error::NotFound { .. }) => {
                return Err(Error::Model(format!(
                    "the {} trainer wrote no model to {}",
                    external.trainer,
                    uri(lake, &model_key)
                )));
            }
            Err(e) => return Err(e.into()),
        },
    };
    let contract = load_contract(lake, &snap.contract_key).await?;
    let model = Model::load(&bytes).map_err(|e| Error::Model(format!("the trainer's model does not load: {e}")))?;
    Scorer::new(model, &contract, class_labels(&bytes, &contract))
        .map_err(|e| Error::Model(format!("the trainer's model does not fit the contract: {e}")))?;
    let rows = read_rows(lake, &contract, &objects_of(lake, snap).await?).await?;
    let training_rows = rows.rows.len() as u64 - rows.rows.len() as u64 / 5;
    let reported_metrics =
        get_json::<Value>(lake, &keys::pipeline_file(&run.model, &run.run_id, "metrics.json")).await.ok().flatten();
    let trained_since = record::read(lake, &run.record_key)
        .await?
        .steps
        .iter()
        .find(|s| s.name == "snapshot")
        .map_or(started, |s| s.ended_at);
    let record = TrainingRecord {
        trainer: external.trainer.clone(),
        trainer_version: external.build_id.clone().or_else(|| external.job.clone()).unwrap_or_default(),
        task: None,
        target: None,
        features: Vec::new(),
        parameters: None,
        command: None,
        rows: mlops_train::RowCounts { training: training_rows, validation: 0, without_target: 0 },
        data: rows.snapshot,
        metrics: None,
        reported_metrics,
        duration_ms: elapsed_ms(trained_since, Utc::now()),
        model_sha256: hex::encode(Sha256::digest(&bytes)),
        export_check: None,
    };
    put_json(lake, &record_key, &record).await?;
    let detail = json!({"trainer": external.trainer, "build": external.build_id, "job": external.job});
    let outputs = vec![uri(lake, &model_key), uri(lake, &record_key)];
    record_step(lake, run, "train", trained_since, inputs, outputs, detail).await?;
    Ok(trained_of(&record, model_key, record_key))
}

/// Evaluate: the challenger and the champion scored on the same holdout (every fifth row of
/// the snapshot, never trained on), and the gate's decision (`pipelines/<name>/gate.yaml`, or
/// at least as good as the champion on macro-F1 or RMSE).
pub async fn evaluate(lake: &Lake, state: &State) -> Result<Evaluation> {
    let (run, snap, trained) =
        (need(&state.run, "run")?, need(&state.snapshot, "snapshot")?, need(&state.train, "trained model")?);
    let started = Utc::now();
    let key = keys::pipeline_file(&run.model, &run.run_id, "evaluation.json");
    if let Some(done) = get_json::<EvaluationRecord>(lake, &key).await? {
        return Ok(evaluation_of(&done, key, run.champion));
    }
    let contract = load_contract(lake, &snap.contract_key).await?;
    let mut inputs = vec![uri(lake, &snap.key), uri(lake, &trained.model_key)];
    let rows = read_rows(lake, &contract, &objects_of(lake, snap).await?).await?;
    let (_, holdout) = split_holdout(rows.rows);
    if holdout.is_empty() {
        return Err(Error::NoData(format!("the snapshot {} leaves no holdout row", snap.key)));
    }
    let bytes = lake.get(&trained.model_key).await?.bytes;
    let labels = class_labels(&bytes, &contract);
    let model = Model::load(&bytes).map_err(|e| Error::Model(format!("the challenger does not load: {e}")))?;
    let scorer = Scorer::new(model, &contract, labels.clone())
        .map_err(|e| Error::Model(format!("the challenger does not fit the contract: {e}")))?;
    let challenger_name = uri(lake, &trained.model_key);
    let challenger_sha = hex::encode(Sha256::digest(&bytes));
    let champion = match run.champion {
        Some(v) => {
            let (stored, champion_bytes) = registry::load(lake, &run.model, v).await?;
            inputs.push(uri(lake, &keys::model_file(&run.model, v, "model.onnx")));
            let model = Model::load(&champion_bytes).map_err(|e| Error::Model(format!("the champion: {e}")))?;
            let labels = stored.manifest.class_labels.clone();
            let scorer = Scorer::new(model, &stored.contract, labels.clone())
                .map_err(|e| Error::Model(format!("the champion: {e}")))?;
            Some((format!("{}@{v}", run.model), stored.manifest.model_sha256, scorer, stored.contract, labels))
        }
        None => None,
    };
    let gate = match setting(lake, &run.model, "gate.yaml").await? {
        Some((text, gate_key)) => {
            inputs.push(uri(lake, &gate_key));
            Some(Gate::from_yaml(&text, &uri(lake, &gate_key)).map_err(mlops_train::Error::from)?)
        }
        None => None,
    };
    let evaluated = tokio::task::spawn_blocking(move || -> Result<EvaluationRecord> {
        let candidate = Evaluated {
            model: challenger_name,
            sha256: challenger_sha,
            scorer: &scorer,
            contract: &contract,
            class_labels: labels,
        };
        let champion = champion.as_ref().map(|(name, sha, scorer, contract, labels)| Evaluated {
            model: name.clone(),
            sha256: sha.clone(),
            scorer,
            contract,
            class_labels: labels.clone(),
        });
        Ok(mlops_train::evaluate::evaluate(&contract, &holdout, &candidate, champion.as_ref(), gate)?)
    })
    .await
    .map_err(blocking_failed)??;
    put_json(lake, &key, &evaluated).await?;
    let summary = evaluation_of(&evaluated, key.clone(), run.champion);
    let detail = json!({
        "decision": summary.decision,
        "holdout_rows": summary.holdout_rows,
        "challenger": summary.challenger,
        "champion": summary.champion,
    });
    record_step(lake, run, "evaluate", started, inputs, vec![uri(lake, &key)], detail).await?;
    Ok(summary)
}

fn evaluation_of(record: &EvaluationRecord, key: String, champion: Option<u32>) -> Evaluation {
    Evaluation {
        key,
        decision: record.verdict.decision,
        holdout_rows: record.rows,
        challenger: headline(&record.candidate.metrics),
        champion: record
            .champion
            .as_ref()
            .zip(champion)
            .map(|(c, version)| ChampionResult { version, metrics: headline(&c.metrics) }),
        reasons: record
            .verdict
            .outcomes
            .iter()
            .map(|o| format!("{} {}: {}", o.result, o.rule.metric, o.reason))
            .collect(),
    }
}

/// Register: the challenger as the model's next version, with its lineage (the training and
/// evaluation records, the champion as parent, the code version, the run), a baseline of its
/// training rows, and its holdout metrics. A rejected challenger is never registered.
pub async fn register(lake: &Lake, config: &PipelineConfig, state: &State) -> Result<Registered> {
    let run = need(&state.run, "run")?;
    let (snap, trained, evaluation) = (
        need(&state.snapshot, "snapshot")?,
        need(&state.train, "trained model")?,
        need(&state.evaluation, "evaluation")?,
    );
    if evaluation.decision == Decision::Reject {
        return Err(Error::Refused("the gate rejected the challenger; it is not registered".into()));
    }
    let started = Utc::now();
    let bytes = lake.get(&trained.model_key).await?.bytes;
    let contract = load_contract(lake, &snap.contract_key).await?;
    let rows = read_rows(lake, &contract, &objects_of(lake, snap).await?).await?;
    let (train_rows, _) = split_holdout(rows.rows);
    let baseline = mlops_flows::baseline::rows_baseline(&contract, &train_rows)?;
    let training = get_json::<Value>(lake, &trained.record_key).await?;
    let evaluation_record = get_json::<Value>(lake, &evaluation.key).await?;
    let metrics = evaluation_record.as_ref().map(|e| e["candidate"]["metrics"].clone());
    let lineage = Lineage {
        training,
        evaluation: evaluation_record,
        parent_version: run.champion,
        code_version: config.code_version.clone(),
        registered_by: format!("pipeline run {}", run.run_id),
    };
    let (manifest, created) = register_model(
        lake,
        NewVersion {
            name: &run.model,
            model: &bytes,
            contract: &contract,
            baseline: &baseline.profile,
            class_labels: class_labels(&bytes, &contract),
            metrics,
            lineage: Some(lineage),
        },
    )
    .await?;
    let inputs = vec![uri(lake, &trained.model_key), uri(lake, &trained.record_key), uri(lake, &evaluation.key)];
    let outputs = vec![uri(lake, &keys::model_file(&run.model, manifest.version, "manifest.json"))];
    let detail = json!({"version": manifest.version, "created": created, "decision": evaluation.decision});
    record_step(lake, run, "register", started, inputs, outputs, detail).await?;
    Ok(Registered { version: manifest.version, created, model_sha256: manifest.model_sha256 })
}

/// A run waiting for a version's approval: what `mlops model approve|reject` reads to send
/// the task result.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApprovalRequest {
    pub run_id: String,
    pub model: String,
    pub version: u32,
    pub task_token: String,
    pub requested_at: DateTime<Utc>,
}

/// The request of a run waiting for `model` v`version`'s approval, if one waits.
pub async fn approval_request(lake: &Lake, model: &str, version: u32) -> Result<Option<ApprovalRequest>> {
    get_json(lake, &keys::pipeline_approval_request(model, version)).await
}

/// AwaitApproval (`.waitForTaskToken`): keeps the task token where `mlops model
/// approve|reject` finds it; the run goes on when the decision is sent.
pub async fn await_approval(lake: &Lake, token: &str, state: &State) -> Result<Value> {
    let (run, registered) = (need(&state.run, "run")?, need(&state.registered, "registered version")?);
    let started = Utc::now();
    if token.is_empty() || token.len() > 4096 {
        return Err(Error::Input("the task token is empty or longer than 4,096 characters".into()));
    }
    let key = keys::pipeline_approval_request(&run.model, registered.version);
    let request = ApprovalRequest {
        run_id: run.run_id.clone(),
        model: run.model.clone(),
        version: registered.version,
        task_token: token.to_string(),
        requested_at: started,
    };
    put_json(lake, &key, &request).await?;
    let detail = json!({"version": registered.version, "approve": format!("mlops model approve {}@{} --reason …", run.model, registered.version)});
    record_step(lake, run, "await_approval", started, Vec::new(), vec![uri(lake, &key)], detail).await?;
    Ok(json!({ "requested": key }))
}

/// Promote: refuses a version the gate did not promote or an approver rejected; records the
/// approval when none was required; says which stack parameter the deployment sets.
pub async fn promote(lake: &Lake, state: &State) -> Result<Promotion> {
    let run = need(&state.run, "run")?;
    let (registered, evaluation) =
        (need(&state.registered, "registered version")?, need(&state.evaluation, "evaluation")?);
    let started = Utc::now();
    let version = registered.version;
    if evaluation.decision != Decision::Promote {
        return Err(Error::Refused(format!("the gate decided {}; only PROMOTE is deployed", evaluation.decision)));
    }
    let approval_key = keys::model_file(&run.model, version, "approval.json");
    let approval = match registry::approval(lake, &run.model, version).await? {
        Some(a) => a,
        None if run.approval == ApprovalMode::Required => {
            return Err(Error::Refused(format!("{} v{version} is not approved", run.model)));
        }
        None => {
            let decision = Approval {
                status: ApprovalStatus::Approved,
                reason: format!(
                    "the gate decided PROMOTE on {} holdout rows{}; no approval was required",
                    evaluation.holdout_rows,
                    run.champion.map_or(String::new(), |c| format!(" against v{c}"))
                ),
                by: format!("pipeline run {}", run.run_id),
                at: Utc::now(),
            };
            match registry::decide(lake, &run.model, version, &decision).await {
                Ok(()) => decision,
                // Decided meanwhile (a retried step, or a person): the first decision stands.
                Err(_) => registry::approval(lake, &run.model, version)
                    .await?
                    .ok_or_else(|| Error::Refused(format!("{} v{version} has no decision", run.model)))?,
            }
        }
    };
    if approval.status != ApprovalStatus::Approved {
        return Err(Error::Refused(format!(
            "{} v{version} was {} by {}: {}",
            run.model, approval.status, approval.by, approval.reason
        )));
    }
    let parameter = run.promote_as.parameter();
    let promotion = Promotion {
        parameter: parameter.to_string(),
        version,
        environment: vec![
            EnvVar::plain("STACK_PARAMETER", parameter),
            EnvVar::plain("STACK_PARAMETER_VALUE", version.to_string()),
            EnvVar::plain("MODEL_NAME", run.model.clone()),
        ],
    };
    let detail = json!({"parameter": parameter, "version": version, "approved_by": approval.by});
    record_step(lake, run, "promote", started, vec![uri(lake, &approval_key)], Vec::new(), detail).await?;
    Ok(promotion)
}

async fn close(lake: &Lake, state: &State, status: RunStatus) -> Result<PipelineRecord> {
    let run = need(&state.run, "run")?;
    if let Some(r) = &state.registered {
        lake.delete(&keys::pipeline_approval_request(&run.model, r.version)).await?;
    }
    let now = Utc::now();
    let record = record::update(lake, &run.record_key, |r| {
        r.outcome = state.outcome;
        r.decision = state.evaluation.as_ref().map(|e| e.decision);
        r.version = state.registered.as_ref().map(|v| v.version);
        r.error = state.error.as_ref().map(|e| CaughtError { error: bounded(&e.error), cause: bounded(&e.cause) });
        r.close(status, now);
    })
    .await?;
    guard::release(lake, &run.model, &run.run_id).await?;
    Ok(record)
}

/// Finish: records how the run ended (the deployment's build, when there was one), closes
/// the record and releases the guard.
pub async fn finish(lake: &Lake, state: &State) -> Result<Value> {
    let run = need(&state.run, "run")?;
    let outcome = need(&state.outcome, "outcome")?;
    if let (Some(deployment), Some(promotion)) = (&state.deployment, &state.promotion) {
        let record = record::read(lake, &run.record_key).await?;
        let since = record.steps.iter().find(|s| s.name == "promote").map_or_else(Utc::now, |s| s.ended_at);
        let output = format!("{}={}", promotion.parameter, promotion.version);
        record_step(lake, run, "deploy", since, Vec::new(), vec![output], deployment.clone()).await?;
    }
    let record = close(lake, state, RunStatus::Succeeded).await?;
    Ok(
        json!({"status": record.status, "outcome": outcome, "record": run.record_key, "duration_ms": record.duration_ms}),
    )
}

/// Fail: records the error a `Catch` caught, closes the record and releases the guard.
pub async fn fail(lake: &Lake, state: &State) -> Result<Value> {
    let run = need(&state.run, "run")?;
    let record = close(lake, state, RunStatus::Failed).await?;
    tracing::error!(run = %run.run_id, model = %run.model, error = ?state.error, "run failed");
    Ok(json!({"status": record.status, "record": run.record_key, "error": state.error}))
}

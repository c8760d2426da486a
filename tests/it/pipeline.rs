//! The retraining state machine, `statemachines/retrain.asl.json`, run by the local runner over
//! the step handlers against the embedded lake: every path of the DAG (promote, hold, reject,
//! a training failure retried then caught, approval granted and refused, a trigger that meets
//! the guard), what each leaves in the lake, and the steps' idempotence.

use std::sync::Arc;

use chrono::{Duration, Utc};
use mlops::commands::pipeline::{TokenBackend, local_config, notify_waiting_run, run_retrain};
use mlops_devkit::step_functions::LocalStepFunctions;
use mlops_lake::registry::{self, Approval, ApprovalStatus};
use mlops_lake::{Lake, keys};
use mlops_pipeline::asl::{Execution, RunOptions, Status, TaskTokens};
use mlops_pipeline::guard;
use mlops_pipeline::local::Deployer;
use mlops_pipeline::record::{self, PipelineRecord, RunStatus};
use mlops_pipeline::state::{ApprovalMode, Outcome, PromoteAs, Settings, Trainer};
use mlops_train::gate::Decision;
use serde_json::{Value, json};
use tokio::sync::Mutex;

use crate::common::TestLake;

/// Records what it was asked to deploy.
#[derive(Default)]
struct Recorder {
    deployed: Mutex<Vec<(String, String, u32)>>,
}

#[async_trait::async_trait]
impl Deployer for Recorder {
    async fn deploy(&self, model: &str, parameter: &str, version: u32) -> Result<String, String> {
        self.deployed.lock().await.push((model.to_string(), parameter.to_string(), version));
        Ok(format!("{parameter}={version}"))
    }
}

/// penguins v1 registered, two ordinary batches yesterday and the shifted one today.
async fn lake_with_batches() -> TestLake {
    let t = TestLake::with_penguins().await;
    let now = Utc::now();
    for (file, at) in [
        ("batch-01.csv", now - Duration::days(1)),
        ("batch-02.csv", now - Duration::days(1)),
        ("batch-03-shifted.csv", now),
    ] {
        t.ingest_batch(file, at).await;
    }
    t
}

/// A `DriftDetected` event as EventBridge delivers it to the state machine.
fn drift_event() -> Value {
    let detail = json!({"dataset": "penguins", "model": "penguins", "model_version": 1, "report_key": "reports/drift/penguins/x.json", "drift_share": 0.5, "drifted": ["bill_length_mm", "flipper_length_mm", "body_mass_g"]});
    mlops_devkit::event_bus::delivered(&json!({
        "Source": "lambda-mlops", "DetailType": "DriftDetected", "Detail": detail.to_string(), "EventId": "local-00000001",
    }))
}

fn settings(approval: ApprovalMode) -> Settings {
    Settings { trainer: Trainer::Builtin, approval, promote_as: PromoteAs::Live }
}

async fn run(
    lake: &Lake,
    deployer: &Recorder,
    tokens: &TaskTokens,
    settings: Settings,
    run_id: &str,
    trigger: Value,
) -> Execution {
    let config = local_config(lake, "penguins", Some(1), 30);
    let options = RunOptions { delay_scale: 0.0, ..RunOptions::default() };
    run_retrain(lake, &config, deployer, tokens, settings, run_id, trigger, options)
        .await
        .expect("the definition loads")
}

async fn record_of(lake: &Lake, run_id: &str) -> PipelineRecord {
    record::read(lake, &keys::pipeline_record("penguins", run_id)).await.expect("the run has a record")
}

fn step_names(record: &PipelineRecord) -> Vec<&str> {
    record.steps.iter().map(|s| s.name.as_str()).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn drift_retrains_registers_and_promotes() {
    let t = lake_with_batches().await;
    let deployer = Recorder::default();
    let execution =
        run(&t.lake, &deployer, &TaskTokens::default(), settings(ApprovalMode::None), "run-promote", drift_event())
            .await;
    assert_eq!(execution.status, Status::Succeeded, "{execution:#?}");
    assert_eq!(
        execution.path(),
        [
            "Begin",
            "Snapshot",
            "ChooseTrainer",
            "Train",
            "Evaluate",
            "Decide",
            "Register",
            "AfterRegister",
            "Promote",
            "Deploy",
            "Promoted",
            "Finish",
            "Done"
        ]
    );
    assert_eq!(*deployer.deployed.lock().await, [("penguins".to_string(), "ModelVersion".to_string(), 2)]);

    let record = record_of(&t.lake, "run-promote").await;
    assert_eq!(
        (record.status, record.outcome, record.decision, record.version),
        (RunStatus::Succeeded, Some(Outcome::Promoted), Some(Decision::Promote), Some(2))
    );
    assert_eq!(step_names(&record), ["begin", "snapshot", "train", "evaluate", "register", "promote", "deploy"]);
    assert_eq!(record.trigger.drifted.len(), 3);
    for step in &record.steps {
        assert!(step.started_at <= step.ended_at, "{step:?}");
    }
    let snapshot = &record.steps[1];
    assert_eq!(snapshot.inputs.len(), 3, "the three curated batches: {snapshot:?}");
    assert!(record.steps[2].outputs.iter().any(|o| o.ends_with("/model.onnx")));

    let stored = registry::load_reference(&t.lake, "penguins", 2).await.expect("v2 is registered");
    let lineage = stored.manifest.lineage.expect("v2 has a lineage");
    assert_eq!(lineage.parent_version, Some(1));
    assert_eq!(lineage.registered_by, "pipeline run run-promote");
    assert_eq!(lineage.training.expect("training record")["data"]["inputs"].as_array().map(Vec::len), Some(3));
    let approval = registry::approval(&t.lake, "penguins", 2).await.expect("read").expect("decided");
    assert_eq!(approval.status, ApprovalStatus::Approved);
    assert!(guard::holder(&t.lake, "penguins").await.expect("read").is_none(), "the guard is released");

    // Every step is idempotent for its input: run again on the final state, each returns what
    // the run made.
    let state = execution.output.expect("output");
    // The state carries the snapshot's count and digest; its object list stays in the lake, so
    // a window of thousands of batches stays within Step Functions' 256 KiB.
    assert_eq!((state["snapshot"]["object_count"].as_u64(), state["snapshot"].get("objects")), (Some(3), None));
    let config = local_config(&t.lake, "penguins", Some(1), 30);
    for (step, field) in
        [("snapshot", "snapshot"), ("train", "train"), ("evaluate", "evaluation"), ("register", "registered")]
    {
        let again = mlops_pipeline::handle(&t.lake, &config, json!({"step": step, "state": state}))
            .await
            .unwrap_or_else(|e| panic!("{step} again: {e}"));
        let mut expected = state[field].clone();
        if step == "register" {
            expected["created"] = json!(false);
        }
        assert_eq!(again, expected, "{step}");
    }
    assert_eq!(registry::versions(&t.lake, "penguins").await.expect("versions"), [1, 2]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_gate_holds_and_rejects() {
    let t = lake_with_batches().await;
    let deployer = Recorder::default();
    let gate_key = keys::pipeline_settings("penguins", "gate.yaml");
    // No challenger beats the champion's macro-F1 by half a point.
    t.lake
        .put(&gate_key, b"rules:\n  - metric: macro_f1\n    min_absolute_change: 0.5\n".to_vec(), "text/yaml")
        .await
        .expect("gate");
    let held = run(
        &t.lake,
        &deployer,
        &TaskTokens::default(),
        settings(ApprovalMode::None),
        "run-hold",
        json!({"by": "test"}),
    )
    .await;
    assert_eq!(held.status, Status::Succeeded, "{held:#?}");
    assert!(held.path().contains(&"Held") && !held.path().contains(&"Promote"), "{:?}", held.path());
    let record = record_of(&t.lake, "run-hold").await;
    assert_eq!((record.outcome, record.decision, record.version), (Some(Outcome::Held), Some(Decision::Hold), Some(2)));
    assert_eq!(record.trigger.by.as_deref(), Some("test"));
    assert!(registry::approval(&t.lake, "penguins", 2).await.expect("read").is_none(), "a held version stays pending");

    // No model reaches an accuracy of 1.5.
    t.lake
        .put(&gate_key, b"rules:\n  - metric: accuracy\n    threshold: 1.5\n".to_vec(), "text/yaml")
        .await
        .expect("gate");
    let rejected =
        run(&t.lake, &deployer, &TaskTokens::default(), settings(ApprovalMode::None), "run-reject", json!({})).await;
    assert_eq!(rejected.status, Status::Succeeded, "{rejected:#?}");
    assert!(rejected.path().contains(&"Rejected") && !rejected.path().contains(&"Register"), "{:?}", rejected.path());
    let record = record_of(&t.lake, "run-reject").await;
    assert_eq!(
        (record.outcome, record.decision, record.version),
        (Some(Outcome::Rejected), Some(Decision::Reject), None)
    );
    assert_eq!(
        registry::versions(&t.lake, "penguins").await.expect("versions"),
        [1, 2],
        "a rejected challenger is not registered"
    );
    assert!(deployer.deployed.lock().await.is_empty(), "nothing the gate refused is deployed");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_training_failure_is_retried_then_caught_and_recorded() {
    let t = lake_with_batches().await;
    let deployer = Recorder::default();
    let config = keys::pipeline_settings("penguins", "train.yaml");
    t.lake.put(&config, b"iterations: 10\nlearning_rat: 0.1\n".to_vec(), "text/yaml").await.expect("train.yaml");
    let execution =
        run(&t.lake, &deployer, &TaskTokens::default(), settings(ApprovalMode::None), "run-fail", json!({})).await;
    assert_eq!(execution.status, Status::Failed);
    assert_eq!(execution.failure.as_ref().map(|f| f.error.as_str()), Some("RetrainFailed"));
    let train = execution.history.iter().find(|t| t.state == "Train").expect("Train ran");
    assert_eq!((train.attempts, train.outcome.as_str()), (2, "caught TrainFailed"), "one retry, then the catch");
    assert_eq!(execution.path()[execution.path().len() - 2..], ["RecordFailure", "Failed"]);
    let record = record_of(&t.lake, "run-fail").await;
    assert_eq!(record.status, RunStatus::Failed);
    let error = record.error.expect("the error is recorded");
    assert_eq!(error.error, "TrainFailed");
    assert!(error.cause.contains("learning_rat"), "{}", error.cause);
    assert!(guard::holder(&t.lake, "penguins").await.expect("read").is_none(), "a failed run releases the guard");
    assert_eq!(registry::versions(&t.lake, "penguins").await.expect("versions"), [1]);
}

/// Runs with approval required; once the run waits, a person decides through `mlops model
/// approve|reject`'s path: the decision is written, then sent with SendTaskSuccess to the
/// local Step Functions endpoint through aws-sdk-sfn.
async fn decided(status: ApprovalStatus, run_id: &str) -> (TestLake, Execution, Vec<(String, String, u32)>) {
    let t = lake_with_batches().await;
    let deployer = Recorder::default();
    let tokens = TaskTokens::default();
    let endpoint = LocalStepFunctions::start(0, Arc::new(TokenBackend { tokens: tokens.clone(), starts: None }))
        .await
        .expect("endpoint");
    let client = endpoint.client();
    let lake = t.lake.clone();
    let person = async {
        let mut waited = 0;
        let request = loop {
            if let Some(r) = mlops_pipeline::steps::approval_request(&lake, "penguins", 2).await.expect("read") {
                break r;
            }
            waited += 1;
            assert!(waited < 3000, "the run never asked for an approval");
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        };
        let decision =
            Approval { status, reason: "looked at the holdout".into(), by: "reviewer".into(), at: Utc::now() };
        registry::decide(&lake, "penguins", 2, &decision).await.expect("decided");
        let told = notify_waiting_run(&lake, &client, "penguins", 2, &decision).await.expect("sent");
        assert_eq!(told.as_deref(), Some(request.run_id.as_str()));
    };
    let (execution, ()) =
        tokio::join!(run(&t.lake, &deployer, &tokens, settings(ApprovalMode::Required), run_id, json!({})), person);
    let deployed = deployer.deployed.lock().await.clone();
    (t, execution, deployed)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_approved_version_is_promoted() {
    let (t, execution, deployed) = decided(ApprovalStatus::Approved, "run-approved").await;
    assert_eq!(execution.status, Status::Succeeded, "{execution:#?}");
    assert!(execution.path().windows(2).any(|w| w == ["WaitForApproval", "IsApproved"]), "{:?}", execution.path());
    assert_eq!(deployed, [("penguins".to_string(), "ModelVersion".to_string(), 2)]);
    let record = record_of(&t.lake, "run-approved").await;
    assert_eq!(record.outcome, Some(Outcome::Promoted));
    assert!(step_names(&record).contains(&"await_approval"));
    let approval = registry::approval(&t.lake, "penguins", 2).await.expect("read").expect("decided");
    assert_eq!(approval.by, "reviewer", "the person's decision stands");
    assert!(
        mlops_pipeline::steps::approval_request(&t.lake, "penguins", 2).await.expect("read").is_none(),
        "the request is removed when the run ends"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_version_is_not_promoted() {
    let (t, execution, deployed) = decided(ApprovalStatus::Rejected, "run-refused").await;
    assert_eq!(execution.status, Status::Succeeded, "{execution:#?}");
    assert!(execution.path().contains(&"Refused") && !execution.path().contains(&"Promote"), "{:?}", execution.path());
    assert!(deployed.is_empty(), "nothing an approver refused is deployed");
    let record = record_of(&t.lake, "run-refused").await;
    assert_eq!((record.outcome, record.version), (Some(Outcome::Refused), Some(2)));
    let approval = registry::approval(&t.lake, "penguins", 2).await.expect("read").expect("decided");
    assert_eq!(approval.status, ApprovalStatus::Rejected);

    // Retraining on the same data makes the same model: Register finds v2, and Promote
    // refuses it for the approver's decision; the run ends refused, not failed.
    let deployer = Recorder::default();
    let again =
        run(&t.lake, &deployer, &TaskTokens::default(), settings(ApprovalMode::None), "run-again", json!({})).await;
    assert_eq!(again.status, Status::Succeeded, "{again:#?}");
    assert!(again.path().windows(2).any(|w| w == ["Promote", "Refused"]), "{:?}", again.path());
    let record = record_of(&t.lake, "run-again").await;
    assert_eq!((record.outcome, record.version), (Some(Outcome::Refused), Some(2)));
    assert_eq!(record.error.map(|e| e.error).as_deref(), Some("PromotionRefused"));
    assert!(deployer.deployed.lock().await.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_concurrent_trigger_meets_the_guard() {
    let t = lake_with_batches().await;
    let deployer = Recorder::default();
    guard::claim(&t.lake, "penguins", "run-holding", Duration::hours(6), Utc::now()).await.expect("claimed");
    let skipped =
        run(&t.lake, &deployer, &TaskTokens::default(), settings(ApprovalMode::None), "run-second", drift_event())
            .await;
    assert_eq!(skipped.status, Status::Succeeded);
    assert_eq!(skipped.path(), ["Begin", "Skipped"]);
    let record = record_of(&t.lake, "run-second").await;
    assert_eq!(record.status, RunStatus::Skipped);
    let error = record.error.expect("the reason is recorded");
    assert_eq!(error.error, "PipelineBusy");
    assert!(error.cause.contains("run-holding"), "{}", error.cause);
    assert_eq!(
        guard::holder(&t.lake, "penguins").await.expect("read").map(|c| c.run_id).as_deref(),
        Some("run-holding")
    );

    // A claim older than its time to live (a run that died) is taken over.
    t.lake.delete(&keys::pipeline_guard("penguins")).await.expect("delete");
    guard::claim(&t.lake, "penguins", "run-dead", Duration::hours(6), Utc::now() - Duration::days(10))
        .await
        .expect("claimed");
    let taken =
        run(&t.lake, &deployer, &TaskTokens::default(), settings(ApprovalMode::None), "run-third", json!({})).await;
    assert_eq!(taken.status, Status::Succeeded, "{taken:#?}");
    assert_eq!(record_of(&t.lake, "run-third").await.outcome, Some(Outcome::Promoted));
}

/// The steps around a trainer of the user's, as Step Functions calls them around
/// `codebuild:startBuild.sync` and `sagemaker:createTrainingJob.sync`: the snapshot writes the
/// training rows and names them to the container; Collect takes the model the container
/// wrote (CodeBuild) or the model artifact (SageMaker), checks it and records it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_external_trainers_model_is_collected_and_checked() {
    let t = lake_with_batches().await;
    let config = local_config(&t.lake, "penguins", Some(1), 30);
    let external = Settings { trainer: Trainer::Codebuild, ..settings(ApprovalMode::None) };
    let begun = mlops_pipeline::handle(
        &t.lake,
        &config,
        json!({"step": "begin", "execution": "run-external", "trigger": {}, "settings": external}),
    )
    .await
    .expect("begin");
    let mut state = begun;
    state["snapshot"] =
        mlops_pipeline::handle(&t.lake, &config, json!({"step": "snapshot", "state": state})).await.expect("snapshot");
    let env: Vec<(String, String)> = state["snapshot"]["trainer_env"]
        .as_array()
        .expect("trainer variables")
        .iter()
        .map(|v| {
            (v["Name"].as_str().unwrap_or_default().to_string(), v["Value"].as_str().unwrap_or_default().to_string())
        })
        .collect();
    let names: Vec<&str> = env.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(names, ["MLOPS_TRAIN_DATA", "MLOPS_CONTRACT", "MLOPS_TRAIN_MODEL", "MLOPS_TRAIN_METRICS"]);
    let key = |uri: &str| uri.strip_prefix("s3://mlops-lake/").expect("a lake URI").to_string();
    let data = t.lake.get(&key(&env[0].1)).await.expect("the training rows").bytes;
    let lines = String::from_utf8_lossy(&data).lines().count();
    assert_eq!(lines, 1 + 900 - 180, "a header and every row but the holdout");

    // Nothing written yet: Collect says so.
    state["external"] = json!({"trainer": "codebuild", "build_id": "train:1"});
    let missing = mlops_pipeline::handle(&t.lake, &config, json!({"step": "collect", "state": state})).await;
    let e = missing.expect_err("no model");
    assert_eq!(e.name(), "ModelInvalid");
    assert!(e.to_string().contains("wrote no model"), "{e}");

    // The container writes a model to MLOPS_TRAIN_MODEL (here the example's).
    let onnx = std::fs::read(crate::common::example("model.onnx")).expect("model");
    t.lake.put(&key(&env[2].1), onnx.clone(), "application/octet-stream").await.expect("put");
    let trained =
        mlops_pipeline::handle(&t.lake, &config, json!({"step": "collect", "state": state})).await.expect("collected");
    assert_eq!(trained["trainer"], "codebuild");
    assert_eq!(trained["training_rows"], 720);

    // SageMaker packs /opt/ml/model into model.tar.gz.
    let mut archive = tar::Builder::new(flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast()));
    let mut header = tar::Header::new_gnu();
    header.set_size(onnx.len() as u64);
    header.set_mode(0o644);
    header.set_cksum();
    archive.append_data(&mut header, "model.onnx", onnx.as_slice()).expect("tar");
    let tgz = archive.into_inner().expect("tar").finish().expect("gzip");
    t.lake
        .put("pipelines/penguins/run-external/sagemaker/job/output/model.tar.gz", tgz, "application/gzip")
        .await
        .expect("put");
    state["external"] = json!({"trainer": "sagemaker", "job": "arn:aws:sagemaker:job/run-external", "artifact": "s3://mlops-lake/pipelines/penguins/run-external/sagemaker/job/output/model.tar.gz"});
    let trained =
        mlops_pipeline::handle(&t.lake, &config, json!({"step": "collect", "state": state})).await.expect("collected");
    assert_eq!(trained["trainer"], "sagemaker");
    let record: Value = serde_json::from_slice(
        &t.lake.get("pipelines/penguins/run-external/training.json").await.expect("record").bytes,
    )
    .expect("JSON");
    assert_eq!(record["trainer_version"], "arn:aws:sagemaker:job/run-external");

    // An artifact outside the lake, or without a model, is refused.
    state["external"]["artifact"] = json!("s3://elsewhere/model.tar.gz");
    let e = mlops_pipeline::handle(&t.lake, &config, json!({"step": "collect", "state": state}))
        .await
        .expect_err("refused");
    assert_eq!(e.name(), "InvalidInput");
}

#[test]
fn the_definition_is_whole() {
    let machine = mlops_pipeline::local::retrain_machine(mlops_pipeline::local::default_settings()).expect("loads");
    let definition: Value = serde_json::from_str(mlops_pipeline::RETRAIN_ASL).expect("JSON");
    // Every state is reachable from StartAt.
    let states = definition["States"].as_object().expect("States");
    let mut reached = std::collections::BTreeSet::from(["Begin".to_string()]);
    let mut todo = vec!["Begin".to_string()];
    while let Some(name) = todo.pop() {
        let state = &states[&name];
        let mut next: Vec<&str> = Vec::new();
        next.extend(state["Next"].as_str());
        next.extend(state["Default"].as_str());
        for list in ["Choices", "Catch"] {
            next.extend(state[list].as_array().into_iter().flatten().filter_map(|c| c["Next"].as_str()));
        }
        for n in next {
            if reached.insert(n.to_string()) {
                todo.push(n.to_string());
            }
        }
    }
    assert_eq!(reached.len(), machine.state_names().len(), "unreachable: {:?}", machine.state_names());
    // No run outlives the guard it holds: the guard's time to live exceeds the machine's
    // timeout, which exceeds the approval's.
    let run_timeout = definition["TimeoutSeconds"].as_u64().expect("a run has a timeout");
    let approval = states["WaitForApproval"]["TimeoutSeconds"].as_u64().expect("the approval has a timeout");
    assert!(
        approval < run_timeout && run_timeout < u64::from(guard::DEFAULT_TTL_HOURS) * 3600,
        "{approval} {run_timeout}"
    );
    // Every Task can fail into the record of its run.
    for (name, state) in states {
        if state["Type"] == "Task" && !["Begin", "RecordFailure"].contains(&name.as_str()) {
            let catches: Vec<&str> =
                state["Catch"].as_array().into_iter().flatten().filter_map(|c| c["Next"].as_str()).collect();
            assert!(catches.contains(&"RecordFailure"), "{name} does not catch into RecordFailure");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn model_quality_degraded_starts_a_run_as_drift_does() {
    let t = lake_with_batches().await;
    let detail =
        json!({"model": "penguins", "model_version": 1, "report_key": "reports/quality/penguins/x.json", "floors": []});
    let event = mlops_devkit::event_bus::delivered(&json!({
        "Source": "lambda-mlops", "DetailType": "ModelQualityDegraded", "Detail": detail.to_string(), "EventId": "local-00000002",
    }));
    let deployer = Recorder::default();
    let execution =
        run(&t.lake, &deployer, &TaskTokens::default(), settings(ApprovalMode::None), "run-quality", event).await;
    assert_eq!(execution.status, Status::Succeeded, "{execution:#?}");
    let record = record_of(&t.lake, "run-quality").await;
    assert_eq!(record.trigger.kind, mlops_pipeline::state::TriggerKind::Quality);
    assert_eq!(record.trigger.report_key.as_deref(), Some("reports/quality/penguins/x.json"));
    assert_eq!(record.trigger.event_id.as_deref(), Some("local-00000002"));
}

//! The shipped binaries as Lambda runs them: each function binary is started with
//! `AWS_LAMBDA_RUNTIME_API` pointing at an emulated Runtime API and the embedded lake, then
//! fed the sample events in `events/`. Start failures must arrive at `init/error` with a
//! message naming the cause; handler failures at `invocation/{id}/error` with a stable type.
//!
//! The binaries are those of the test profile, built beside this test by `make test`
//! (`cargo build --workspace --bins` before `cargo test`).

use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use mlops_devkit::event_bus::LocalEventBus;
use mlops_devkit::runtime_api::{FunctionError, Outcome, RuntimeApi};
use tokio::process::{Child, Command};

use crate::common::{BUCKET, TestLake, at, example, repo};

/// A function binary of the same profile as this test.
fn binary(name: &str) -> PathBuf {
    let path = PathBuf::from(env!("CARGO_BIN_EXE_mlops")).with_file_name(name);
    assert!(
        path.exists(),
        "{} is not built: run `cargo build --workspace --bins` first (make test does)",
        path.display()
    );
    path
}

/// Starts `function` against the Runtime API and the lake, with `env` as its configuration.
fn start(function: &str, api: &RuntimeApi, t: &TestLake, env: &[(&str, &str)]) -> Child {
    Command::new(binary(function))
        .current_dir(repo())
        .env_clear()
        .envs(api.lambda_env(function))
        .envs(t.server.env_vars())
        .envs(env.iter().copied())
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("the function binary starts")
}

const WAIT: Duration = Duration::from_secs(60);

async fn invoke(api: &RuntimeApi, event: &str) -> Outcome {
    tokio::time::timeout(WAIT, api.invoke(event)).await.expect("the function answers in time").expect("an answer")
}

async fn init_error(api: &RuntimeApi, child: &mut Child) -> FunctionError {
    let error = tokio::time::timeout(WAIT, api.init_error()).await.expect("init/error in time").expect("an init error");
    let status = tokio::time::timeout(WAIT, child.wait()).await.expect("the process exits").expect("status");
    assert!(!status.success(), "a failed start exits with an error status");
    error
}

fn response(outcome: Outcome) -> serde_json::Value {
    match outcome {
        Outcome::Response(body) => serde_json::from_str(&body).expect("JSON response"),
        Outcome::Error(e) => panic!("expected a response, got {e:?}"),
    }
}

const MODEL_ENV: [(&str, &str); 3] = [("LAKE_BUCKET", BUCKET), ("MODEL_NAME", "penguins"), ("MODEL_VERSION", "1")];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn predict_answers_api_gateway_events() {
    let t = TestLake::with_penguins().await;
    // On the multi-threaded runtime, and on the one-thread runtime predict uses with one worker.
    for workers in [None, Some("1")] {
        let api = RuntimeApi::start().await.expect("runtime API");
        let env: Vec<(&str, &str)> =
            MODEL_ENV.into_iter().chain(workers.map(|w| ("TOKIO_WORKER_THREADS", w))).collect();
        let _child = start("predict", &api, &t, &env);
        let answer = response(invoke(&api, include_str!("../../events/api-predict.json")).await);
        assert_eq!(answer["statusCode"], 200, "{workers:?}: {answer}");
        let body: serde_json::Value = serde_json::from_str(answer["body"].as_str().expect("body")).expect("JSON body");
        let classes: Vec<&str> =
            body["predictions"].as_array().expect("predictions").iter().filter_map(|p| p["class"].as_str()).collect();
        assert_eq!(classes, ["Adelie", "Chinstrap", "Gentoo"], "{workers:?}");
        // The same process answers the next invocation: the model loaded once.
        let answer = response(invoke(&api, include_str!("../../events/api-model.json")).await);
        assert_eq!(answer["statusCode"], 200, "{workers:?}: {answer}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ingest_writes_its_outputs_and_reports_failed_records() {
    let t = TestLake::with_penguins().await;
    let bytes = std::fs::read(example("batches/batch-01.csv")).expect("batch");
    t.lake.put("raw/penguins/batch-01.csv", bytes, "text/csv").await.expect("put");
    let api = RuntimeApi::start().await.expect("runtime API");
    let _child = start("ingest", &api, &t, &[("LAKE_BUCKET", BUCKET)]);
    let answer = response(invoke(&api, include_str!("../../events/s3-put.json")).await);
    assert_eq!(answer[0]["status"], "ingested", "{answer}");
    for key in ["manifest_key", "quarantine_key", "profile_key"] {
        let key = answer[0][key].as_str().expect("key");
        assert!(t.lake.exists(key).await.expect("head"), "{key} written");
    }
    // An object that is not there: the record fails, with a stable error type.
    let missing = include_str!("../../events/s3-put.json").replace("batch-01.csv", "no-such-batch.csv");
    match invoke(&api, &missing).await {
        Outcome::Error(e) => {
            assert_eq!(e.error_type, "RecordsFailed");
            assert!(e.error_message.contains("no-such-batch.csv"), "{}", e.error_message);
        }
        other => panic!("expected an error, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn drift_check_writes_its_report_and_sends_drift_detected() {
    let t = TestLake::with_penguins().await;
    t.ingest_batch("batch-03-shifted.csv", at("2025-12-31T06:00:00Z")).await;
    let bus = LocalEventBus::start(0, None).await.expect("event bus");
    let api = RuntimeApi::start().await.expect("runtime API");
    let endpoint = bus.endpoint();
    let env = [MODEL_ENV.as_slice(), &[("EVENT_BUS_NAME", "mlops-test"), ("AWS_ENDPOINT_URL_EVENTBRIDGE", &endpoint)]]
        .concat();
    let _child = start("drift-check", &api, &t, &env);
    let answer = response(invoke(&api, include_str!("../../events/schedule.json")).await);
    let key = answer["report_key"].as_str().unwrap_or_else(|| panic!("a report key in {answer}"));
    assert!(t.lake.exists(key).await.expect("head"), "{key} written");
    assert_eq!(answer["dataset_drift"], true, "{answer}");
    // The binary's aws-sdk-eventbridge client reached the endpoint named by the environment.
    let events = bus.events();
    assert_eq!(events.len(), 1, "{events:?}");
    let detail: serde_json::Value = serde_json::from_str(events[0]["Detail"].as_str().expect("detail")).expect("JSON");
    assert_eq!((detail["report_key"].as_str(), events[0]["DetailType"].as_str()), (Some(key), Some("DriftDetected")));
    assert_eq!(answer["event_id"], events[0]["EventId"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retrain_runs_steps_and_names_its_errors_for_step_functions() {
    let t = TestLake::with_penguins().await;
    let api = RuntimeApi::start().await.expect("runtime API");
    let _child = start("retrain", &api, &t, &MODEL_ENV);
    let begin = |execution: &str| {
        serde_json::json!({"step": "begin", "execution": execution, "trigger": {"by": "test"}, "settings": {"approval": "required"}})
            .to_string()
    };
    let started = response(invoke(&api, &begin("run-1")).await);
    assert_eq!(started["run"]["run_id"], "run-1");
    assert_eq!((started["run"]["champion"].as_u64(), started["run"]["approval"].as_str()), (Some(1), Some("required")));
    // A second run of the model meets the guard the first holds; Step Functions' Catch
    // matches the error by its type.
    match invoke(&api, &begin("run-2")).await {
        Outcome::Error(e) => {
            assert_eq!(e.error_type, "PipelineBusy");
            assert!(e.error_message.contains("run-1"), "{}", e.error_message);
        }
        other => panic!("expected PipelineBusy, got {other:?}"),
    }
    match invoke(&api, r#"{"step": "teleport"}"#).await {
        Outcome::Error(e) => assert_eq!(e.error_type, "InvalidInput"),
        other => panic!("expected InvalidInput, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn start_failures_arrive_at_init_error_naming_the_cause() {
    let t = TestLake::with_penguins().await;

    let api = RuntimeApi::start().await.expect("runtime API");
    let mut child = start("predict", &api, &t, &[("LAKE_BUCKET", BUCKET), ("MODEL_NAME", "penguins")]);
    let e = init_error(&api, &mut child).await;
    assert_eq!(e.error_type, "Init.Config");
    assert_eq!(e.error_message, "configuration: environment variable MODEL_VERSION is not set");

    // The runtime's worker threads are read before the runtime starts, and still reported.
    let api = RuntimeApi::start().await.expect("runtime API");
    let mut child = start("predict", &api, &t, &[MODEL_ENV.as_slice(), &[("TOKIO_WORKER_THREADS", "0")]].concat());
    let e = init_error(&api, &mut child).await;
    assert_eq!(e.error_type, "Init.Config");
    assert_eq!(e.error_message, "configuration: environment variable TOKIO_WORKER_THREADS must be at least 1");

    let api = RuntimeApi::start().await.expect("runtime API");
    let mut child =
        start("predict", &api, &t, &[("LAKE_BUCKET", BUCKET), ("MODEL_NAME", "penguins"), ("MODEL_VERSION", "7")]);
    let e = init_error(&api, &mut child).await;
    assert!(e.error_type.starts_with("Init."), "{e:?}");
    assert!(e.error_message.contains("penguins") && e.error_message.contains('7'), "{}", e.error_message);

    // A model file changed after registration no longer matches its manifest's digest.
    t.lake
        .put("models/penguins/v1/model.onnx", b"not an onnx file".to_vec(), "application/octet-stream")
        .await
        .expect("put");
    let api = RuntimeApi::start().await.expect("runtime API");
    let mut child = start("predict", &api, &t, &MODEL_ENV);
    let e = init_error(&api, &mut child).await;
    assert!(e.error_type.starts_with("Init."), "{e:?}");
    assert!(e.error_message.contains("model.onnx"), "{}", e.error_message);

    for function in ["ingest", "drift-check", "retrain"] {
        let api = RuntimeApi::start().await.expect("runtime API");
        let mut child = start(function, &api, &t, &[]);
        let e = init_error(&api, &mut child).await;
        assert_eq!(e.error_type, "Init.Config", "{function}");
        assert_eq!(e.error_message, "configuration: environment variable LAKE_BUCKET is not set", "{function}");
    }
}

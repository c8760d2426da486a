//! Watching the model: predict captures its answers through aws-sdk-firehose into the embedded
//! lake, labels arrive as their own dataset, and the quality check joins them, with the same
//! metrics `mlops evaluate` gives on the same rows; predict's and the checks' EMF lines obey
//! the specification; a window with no data is `insufficient_data`.

use std::process::Command;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Body;
use axum::http::Request;
use mlops_devkit::event_bus::LocalEventBus;
use mlops_devkit::firehose::LocalFirehose;
use mlops_flows::quality::{QualityConfig, emf_lines, run_quality_check};
use mlops_lake::capture::CaptureLine;
use mlops_metrics::Metrics;
use tower::ServiceExt as _;

use crate::common::{BUCKET, TestLake, at, env, example, repo};

const STREAM: &str = "mlops-capture-penguins";

/// The first `n` rows of the penguins training file, as CSV records.
fn penguins(n: usize) -> (csv::StringRecord, Vec<csv::StringRecord>) {
    let mut reader = csv::Reader::from_path(example("train.csv")).expect("train.csv");
    let header = reader.headers().expect("header").clone();
    (header, reader.records().take(n).map(|r| r.expect("record")).collect())
}

fn instance(header: &csv::StringRecord, row: &csv::StringRecord) -> serde_json::Value {
    let mut object = serde_json::Map::new();
    for (name, value) in header.iter().zip(row.iter()) {
        if name == "species" || name == "year" {
            continue;
        }
        let v = if value.is_empty() || value == "NA" {
            serde_json::Value::Null
        } else if let Ok(x) = value.parse::<f64>() {
            x.into()
        } else {
            value.into()
        };
        object.insert(name.to_string(), v);
    }
    serde_json::Value::Object(object)
}

async fn post(router: &axum::Router, request_id: &str, body: serde_json::Value) -> u16 {
    let request = Request::post("/predict")
        .header("content-type", "application/json")
        .header("x-request-id", request_id)
        .body(Body::from(body.to_string()))
        .expect("request");
    router.clone().oneshot(request).await.expect("response").status().as_u16()
}

/// The label given to row `i`: its species, except every seventh, which gets another, so that
/// the model is not always right.
fn label(species: &str, i: usize) -> &str {
    const ALL: [&str; 3] = ["Adelie", "Chinstrap", "Gentoo"];
    if i % 7 == 3 { ALL.iter().copied().find(|s| *s != species).unwrap_or(species) } else { species }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn captures_joined_with_labels_measure_the_model_as_evaluate_does() {
    let t = TestLake::with_penguins().await;
    let firehose = LocalFirehose::start(0, t.lake.clone(), &[(STREAM.into(), "capture/penguins/".into())])
        .await
        .expect("firehose");
    let capture_config = predict::CaptureConfig {
        stream: STREAM.into(),
        sample_rate: 1.0,
        flush_interval: Duration::from_millis(20),
        queue: 1000,
    };
    let lines = Arc::new(Mutex::new(Vec::new()));
    let config = mlops_lambda::ModelConfig::from_env(&env(&[])).expect("config");
    let mut app = predict::App::load(&t.lake, &config, predict::Limits::default()).await.expect("app");
    let capture = Arc::new(predict::Capture::start(firehose.client(), &capture_config));
    app.capture = Some(Arc::clone(&capture));
    app.emit = predict::Emit::Memory(Arc::clone(&lines));
    let router = predict::router(Arc::new(app));

    // 120 birds in 12 requests of 10, then one invalid request.
    let (header, rows) = penguins(120);
    for (r, chunk) in rows.chunks(10).enumerate() {
        let instances: Vec<serde_json::Value> = chunk.iter().map(|row| instance(&header, row)).collect();
        assert_eq!(post(&router, &format!("req-{r}"), serde_json::json!({ "instances": instances })).await, 200);
    }
    let bad = serde_json::json!({"instances": [{"island": "Atlantis"}]});
    assert_eq!(post(&router, "req-bad", bad).await, 400);
    for _ in 0..200 {
        if capture.counts.delivered.load(Ordering::Relaxed) >= 120 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    assert_eq!(
        capture.counts.delivered.load(Ordering::Relaxed),
        120,
        "every answered row, the rejected request's none"
    );
    assert!((1..=12).contains(&firehose.delivered()), "requests share records: {}", firehose.delivered());

    // The capture: 120 typed lines under capture/penguins/dt=…/, readable as rows of the contract.
    let objects = t.lake.list_objects("capture/penguins/").await.expect("list");
    let today = chrono::Utc::now().format("dt=%Y-%m-%d").to_string();
    assert!(objects.iter().all(|o| o.key.contains(&today) && o.key.ends_with(".jsonl")), "{objects:?}");
    let mut captured = Vec::new();
    let contract = mlops_contract::Contract::load(&example("contract.yaml")).expect("contract");
    let mut readable = mlops_pipeline::data::Rows::default();
    for o in &objects {
        let bytes = t.lake.get(&o.key).await.expect("object").bytes.to_vec();
        for line in String::from_utf8_lossy(&bytes).lines() {
            captured.push(serde_json::from_str::<CaptureLine>(line).expect("capture line"));
        }
        readable.add_bytes(&contract.features_only(), &o.key, bytes).expect("rows");
    }
    assert_eq!(captured.len(), 120);
    assert_eq!((readable.snapshot.rows, readable.snapshot.rejected), (120, 0), "capture is typed per the contract");
    let first = captured.iter().find(|c| c.capture.inference_id == "req-0:0").expect("req-0:0 captured");
    assert_eq!((first.capture.model_version, first.capture.variant.as_str()), (1, "champion"));
    assert_eq!(first.values["island"], "Torgersen");
    assert!(first.prediction.contains_key("class"), "{:?}", first.prediction);

    // predict's EMF: one valid line per request, classes counted, the rejection by reason.
    let now = chrono::Utc::now();
    let emitted = lines.lock().expect("lines").clone();
    assert_eq!(emitted.len(), 13);
    let mut predicted = 0;
    for line in &emitted {
        mlops_emf::validate(line, now).unwrap_or_else(|e| panic!("{e}: {line}"));
        let v: serde_json::Value = serde_json::from_str(line).expect("JSON");
        assert_eq!(
            (v["Model"].as_str(), v["ModelVersion"].as_str(), v["Variant"].as_str()),
            (Some("penguins"), Some("1"), Some("champion"))
        );
        for class in ["Adelie", "Chinstrap", "Gentoo"] {
            predicted += v[format!("Predicted.{class}")].as_u64().unwrap_or(0);
        }
    }
    assert_eq!(predicted, 120, "every answered row is counted under its class");
    let rejected: serde_json::Value = serde_json::from_str(&emitted[12]).expect("JSON");
    assert_eq!((rejected["Reason"].as_str(), rejected["Rejected"].as_u64()), (Some("invalid_instances"), Some(1)));

    // Ground truth: its own dataset, ingested like any other.
    let dir = tempfile::tempdir().expect("temp dir");
    let labels_file = dir.path().join("labels.csv");
    let mut labels = csv::Writer::from_path(&labels_file).expect("labels file");
    labels.write_record(["inference_id", "species"]).expect("header");
    let mut holdout = csv::Writer::from_path(dir.path().join("rows.csv")).expect("rows file");
    holdout.write_record(&header).expect("header");
    for (i, row) in rows.iter().enumerate() {
        let truth = label(&row[0], i);
        labels.write_record([format!("req-{}:{}", i / 10, i % 10).as_str(), truth]).expect("label");
        let mut record: Vec<&str> = row.iter().collect();
        record[0] = truth;
        holdout.write_record(&record).expect("row");
    }
    labels.flush().expect("flush");
    holdout.flush().expect("flush");
    t.ingest_labels(&labels_file).await;

    // A floor the model misses: macro-F1 of at least 0.99.
    let gate = "rules:\n  - metric: macro_f1\n    threshold: 0.99\n";
    t.lake.put("pipelines/penguins/gate.yaml", gate.as_bytes().to_vec(), "application/yaml").await.expect("gate");
    let quality = QualityConfig {
        model_name: "penguins".into(),
        labels_dataset: "penguins-labels".into(),
        window_days: 1,
        min_rows: 30,
    };
    let (report, report_key) = run_quality_check(&t.lake, &quality, chrono::Utc::now()).await.expect("quality");
    assert!(report_key.starts_with("reports/quality/penguins/"), "{report_key}");
    assert_eq!((report.captured, report.labelled, report.joined), (120, 120, 120));
    assert_eq!(report.status, "ok");
    assert_eq!(report.versions.len(), 1);
    assert_eq!(report.days.len(), 1);
    let Some(Metrics::Classification(measured)) = &report.versions[0].metrics else { panic!("{report:?}") };
    assert!(measured.accuracy < 1.0 && measured.accuracy > 0.8, "{}", measured.accuracy);
    assert!(report.degraded && report.floors[0].below, "{:?}", report.floors);
    assert!(report.versions[0].label_drift.is_some() && report.versions[0].prediction_drift.is_some());
    for line in emf_lines(&report) {
        mlops_emf::validate(&line, chrono::Utc::now()).unwrap_or_else(|e| panic!("{e}: {line}"));
        assert!(line.contains("\"MacroF1\"") && line.contains("\"BelowFloor\":1"), "{line}");
    }

    // The same rows through `mlops evaluate`: the same figures. The model computes in float32,
    // and its probabilities differ in their last bits between a batch of 10 rows (a request)
    // and one of 120 (evaluate's chunk), hence the tolerance on the log loss.
    let out = Command::new(env!("CARGO_BIN_EXE_mlops"))
        .current_dir(repo())
        .args(["evaluate", "--model", "penguins@1", "--contract", "examples/penguins/contract.yaml", "--json"])
        .arg(dir.path().join("evaluation.json"))
        .arg(dir.path().join("rows.csv"))
        .envs(t.server.env_vars())
        .env("LAKE_BUCKET", BUCKET)
        .output()
        .expect("mlops evaluate runs");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let record: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.path().join("evaluation.json")).expect("record")).expect("JSON");
    let evaluated = &record["candidate"]["metrics"];
    for (name, value) in [
        ("accuracy", measured.accuracy),
        ("macro_f1", measured.macro_f1),
        ("log_loss", measured.log_loss),
        ("roc_auc", measured.roc_auc.expect("auc")),
    ] {
        let expected = evaluated[name].as_f64().expect(name);
        assert!(
            (value - expected).abs() <= 1e-7 * expected.abs().max(1.0),
            "{name}: quality {value}, evaluate {expected}"
        );
    }
    assert_eq!(evaluated["rows"], 120);

    // drift-check runs the same check, and sends ModelQualityDegraded; with no batch in its
    // window the drift side is insufficient_data, not "no drift".
    let bus = LocalEventBus::start(0, None).await.expect("event bus");
    let config = drift_check::Config::from_env(&env(&[
        ("DRIFT_WINDOW_DAYS", "1"),
        ("EVENT_BUS_NAME", "mlops-test"),
        ("LABELS_DATASET", "penguins-labels"),
        ("QUALITY_WINDOW_DAYS", "1"),
    ]))
    .expect("config");
    let event = mlops_lambda::events::scheduled(chrono::Utc::now()).expect("event");
    let (summary, metrics) =
        drift_check::check(&t.lake, &bus.client(), &config, serde_json::from_str(&event).expect("event"))
            .await
            .expect("check");
    assert_eq!(summary.status, "insufficient_data");
    assert!(!summary.dataset_drift);
    let quality = summary.quality.expect("quality summary");
    assert!(quality.degraded && quality.event_id.is_some(), "{quality:?}");
    let sent: Vec<serde_json::Value> = bus.events();
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0]["DetailType"], "ModelQualityDegraded");
    for line in &metrics {
        mlops_emf::validate(line, chrono::Utc::now()).unwrap_or_else(|e| panic!("{e}: {line}"));
    }
    assert!(metrics.iter().any(|l| l.contains("\"InsufficientData\":1")), "{metrics:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_empty_window_is_insufficient_data_in_the_report_the_metrics_and_the_exit_status() {
    let t = TestLake::with_penguins().await;
    let config = drift_check::Config::from_env(&env(&[("DRIFT_WINDOW_DAYS", "1")])).expect("config");
    let bus = LocalEventBus::start(0, None).await.expect("event bus");
    let event = mlops_lambda::events::scheduled(at("2026-03-05T12:00:00Z")).expect("event");
    let summary = drift_check::invoke(&t.lake, &bus.client(), &config, &event).await.expect("check");
    assert_eq!((summary["status"].as_str(), summary["current_rows"].as_u64()), (Some("insufficient_data"), Some(0)));
    let report: serde_json::Value =
        serde_json::from_slice(&t.lake.get(summary["report_key"].as_str().expect("key")).await.expect("report").bytes)
            .expect("JSON");
    assert_eq!(report["status"], "insufficient_data");

    let dir = tempfile::tempdir().expect("temp dir");
    let event_file = dir.path().join("schedule.json");
    std::fs::write(&event_file, &event).expect("event file");
    let out = Command::new(env!("CARGO_BIN_EXE_mlops"))
        .current_dir(repo())
        .args(["invoke", "drift-check", "--event"])
        .arg(&event_file)
        .envs(t.server.env_vars())
        .envs([("LAKE_BUCKET", BUCKET), ("MODEL_NAME", "penguins"), ("MODEL_VERSION", "1"), ("DRIFT_WINDOW_DAYS", "1")])
        .output()
        .expect("mlops invoke runs");
    assert_eq!(out.status.code(), Some(3), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8_lossy(&out.stderr).contains("insufficient data"));

    // The report is found by date, without knowing its key.
    let mlops = |args: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_mlops"))
            .current_dir(repo())
            .args(args)
            .envs(t.server.env_vars())
            .env("LAKE_BUCKET", BUCKET)
            .output()
            .expect("mlops runs")
    };
    let listed = mlops(&["report", "list", "--kind", "drift", "--of", "penguins"]);
    let text = String::from_utf8_lossy(&listed.stdout);
    assert!(listed.status.success() && text.lines().count() == 1, "{text}");
    assert!(text.contains("2026-03-05T12-00-00Z  drift    penguins"), "{text}");
    let page = dir.path().join("page.html");
    let page_arg = page.display().to_string();
    let opened =
        mlops(&["report", "open", "--dataset", "penguins", "--date", "2026-03-05", "--no-browser", "--out", &page_arg]);
    assert!(opened.status.success(), "{}", String::from_utf8_lossy(&opened.stderr));
    assert!(std::fs::read_to_string(&page).expect("page").contains("<html"));
    let none = mlops(&["report", "open", "--dataset", "penguins", "--date", "2026-03-06", "--no-browser"]);
    assert!(!none.status.success() && String::from_utf8_lossy(&none.stderr).contains("no drift report of 2026-03-06"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_delivery_stream_never_fails_a_request() {
    let t = TestLake::with_penguins().await;
    let firehose = LocalFirehose::start(0, t.lake.clone(), &[(STREAM.into(), "capture/penguins/".into())])
        .await
        .expect("firehose");
    // The local endpoint answers as Firehose does for a stream that does not exist.
    let refused = firehose
        .client()
        .put_record_batch()
        .delivery_stream_name("no-such-stream")
        .records(
            aws_sdk_firehose::types::Record::builder()
                .data(aws_sdk_firehose::primitives::Blob::new(b"{}\n".to_vec()))
                .build()
                .expect("record"),
        )
        .send()
        .await
        .expect_err("unknown stream");
    assert!(aws_sdk_firehose::error::DisplayErrorContext(&refused).to_string().contains("ResourceNotFoundException"));

    // predict capturing to it answers every request; the lost lines are counted.
    let config = mlops_lambda::ModelConfig::from_env(&env(&[])).expect("config");
    let mut app = predict::App::load(&t.lake, &config, predict::Limits::default()).await.expect("app");
    let capture_config = predict::CaptureConfig {
        stream: "no-such-stream".into(),
        sample_rate: 1.0,
        flush_interval: Duration::from_millis(10),
        queue: 4,
    };
    let capture = Arc::new(predict::Capture::start(firehose.client(), &capture_config));
    app.capture = Some(Arc::clone(&capture));
    app.emit = predict::Emit::Discard;
    let router = predict::router(Arc::new(app));
    let (header, rows) = penguins(5);
    let instances: Vec<serde_json::Value> = rows.iter().map(|row| instance(&header, row)).collect();
    for r in 0..49 {
        assert_eq!(post(&router, &format!("r-{r}"), serde_json::json!({ "instances": instances })).await, 200);
    }
    // A request without an id gets one, and the answer names it: captured rows are
    // `<request id>:<index>`, so the caller can send their labels.
    let request = Request::post("/predict")
        .header("content-type", "application/json")
        .body(Body::from(serde_json::json!({ "instances": instances }).to_string()))
        .expect("request");
    let response = router.clone().oneshot(request).await.expect("response");
    let id = response.headers().get("x-request-id").and_then(|v| v.to_str().ok()).unwrap_or_default().to_string();
    assert!(response.status().is_success() && id.len() > 8, "{id:?}");
    let counts = &capture.counts;
    for _ in 0..200 {
        let (failed, dropped) = (counts.failed.load(Ordering::Relaxed), counts.dropped.load(Ordering::Relaxed));
        if failed + 5 * dropped == 250 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    let (failed, dropped) = (counts.failed.load(Ordering::Relaxed), counts.dropped.load(Ordering::Relaxed));
    assert_eq!(failed + 5 * dropped, 250, "every captured line is delivered, counted as failed or dropped");
    assert_eq!(counts.delivered.load(Ordering::Relaxed), 0);
    assert!(t.lake.list_objects("capture/").await.expect("list").is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn large_requests_are_captured_whole_within_firehose_limits() {
    let t = TestLake::with_penguins().await;
    let firehose = LocalFirehose::start(0, t.lake.clone(), &[(STREAM.into(), "capture/penguins/".into())])
        .await
        .expect("firehose");
    let config = mlops_lambda::ModelConfig::from_env(&env(&[])).expect("config");
    let mut app = predict::App::load(&t.lake, &config, predict::Limits::default()).await.expect("app");
    let capture_config = predict::CaptureConfig {
        stream: STREAM.into(),
        sample_rate: 1.0,
        flush_interval: Duration::from_millis(500),
        queue: 100,
    };
    let capture = Arc::new(predict::Capture::start(firehose.client(), &capture_config));
    app.capture = Some(Arc::clone(&capture));
    app.emit = predict::Emit::Discard;
    let router = predict::router(Arc::new(app));
    // 30 requests of 1,000 rows (the 344 birds, repeated): about 9 MB of lines, more than
    // two batches' worth.
    let (header, rows) = penguins(344);
    let instances: Vec<serde_json::Value> = rows.iter().cycle().take(1000).map(|row| instance(&header, row)).collect();
    let body = serde_json::json!({ "instances": instances });
    for r in 0..30 {
        assert_eq!(post(&router, &format!("big-{r}"), body.clone()).await, 200);
    }
    let load = |c: &std::sync::atomic::AtomicU64| c.load(Ordering::Relaxed);
    for _ in 0..400 {
        if load(&capture.counts.delivered) + load(&capture.counts.failed) >= 30_000 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    assert_eq!((load(&capture.counts.delivered), load(&capture.counts.failed)), (30_000, 0));
    assert_eq!(load(&capture.counts.dropped), 0);
}

//! A/B testing: a champion (the scikit-learn model, v1) and a challenger (the built-in
//! trainer's, v2) served by one predict, assigned by key, pinned by header, each answering as
//! its own scorer does; captured, labelled, and compared by `mlops ab report`.

use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use axum::body::Body;
use axum::http::Request;
use mlops::commands::model::{RegisterArgs, register};
use mlops_devkit::firehose::LocalFirehose;
use mlops_flows::quality::{AbConfig, run_ab_report};
use tower::ServiceExt as _;

use crate::common::{BUCKET, TestLake, env, example, repo};

async fn post(router: &axum::Router, headers: &[(&str, &str)], body: &serde_json::Value) -> (u16, serde_json::Value) {
    let mut request = Request::post("/predict").header("content-type", "application/json");
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    let response =
        router.clone().oneshot(request.body(Body::from(body.to_string())).expect("request")).await.expect("response");
    let status = response.status().as_u16();
    let bytes = axum::body::to_bytes(response.into_body(), 1 << 24).await.expect("body");
    (status, serde_json::from_slice(&bytes).expect("JSON"))
}

fn birds() -> Vec<(serde_json::Value, String)> {
    let mut reader = csv::Reader::from_path(example("train.csv")).expect("train.csv");
    let header = reader.headers().expect("header").clone();
    reader
        .records()
        .map(|r| {
            let r = r.expect("record");
            let mut instance = serde_json::Map::new();
            for (name, value) in header.iter().zip(r.iter()) {
                if name == "species" || name == "year" {
                    continue;
                }
                let v = match value.parse::<f64>() {
                    _ if value.is_empty() || value == "NA" => serde_json::Value::Null,
                    Ok(x) => x.into(),
                    Err(_) => value.into(),
                };
                instance.insert(name.to_string(), v);
            }
            (serde_json::Value::Object(instance), r[0].to_string())
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_ab_test_assigns_by_key_pins_by_header_and_is_compared_on_outcomes() {
    let t = TestLake::with_penguins().await;
    let dir = tempfile::tempdir().expect("temp dir");
    // The challenger: the built-in trainer's model of the same data, registered as v2.
    let model = dir.path().join("v2.onnx");
    let out = Command::new(env!("CARGO_BIN_EXE_mlops"))
        .current_dir(repo())
        .args(["train", "--contract", "examples/penguins/contract.yaml", "--out"])
        .arg(&model)
        .arg("examples/penguins/train.csv")
        .output()
        .expect("mlops train runs");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let v2 = register(
        &t.lake,
        &RegisterArgs {
            name: "penguins".into(),
            model,
            contract: example("contract.yaml"),
            train: example("train.csv"),
            metrics: None,
            class_labels: Some(vec!["Adelie".into(), "Chinstrap".into(), "Gentoo".into()]),
            lineage: Default::default(),
        },
    )
    .await
    .expect("v2 registers");
    assert_eq!(v2.version, 2);

    let firehose =
        LocalFirehose::start(0, t.lake.clone(), &[("ab".into(), "capture/penguins/".into())]).await.expect("firehose");
    let capture = Arc::new(predict::Capture::start(
        firehose.client(),
        &predict::CaptureConfig {
            stream: "ab".into(),
            sample_rate: 1.0,
            flush_interval: Duration::from_millis(20),
            queue: 1000,
        },
    ));
    let config = mlops_lambda::ModelConfig::from_env(&env(&[])).expect("config");
    let ab = predict::AbConfig { version: 2, weight: 0.5 };
    let mut app = predict::App::load_with(&t.lake, &config, predict::Limits::default(), Some(&ab))
        .await
        .expect("both load at cold start");
    app.capture = Some(Arc::clone(&capture));
    app.emit = predict::Emit::Discard;
    let router = predict::router(Arc::new(app));

    // Pinning, as SageMaker's TargetVariant: each variant answers as its own scorer.
    let birds = birds();
    let some: Vec<serde_json::Value> = birds.iter().take(20).map(|(i, _)| i.clone()).collect();
    let body = serde_json::json!({ "instances": some });
    for (variant, version) in [("champion", 1u32), ("challenger", 2)] {
        let (status, answer) = post(&router, &[("x-target-variant", variant)], &body).await;
        assert_eq!(status, 200, "{answer}");
        assert_eq!(
            (answer["variant"].as_str(), answer["model"]["version"].as_u64()),
            (Some(variant), Some(u64::from(version)))
        );
        let served = predict::Served::load(&t.lake, "penguins", version).await.expect("version loads");
        let request = predict::request::parse(&served.contract, body.to_string().as_bytes(), 1000).expect("valid");
        let own = served.score(&request.rows).expect("scores");
        assert_eq!(answer["predictions"], serde_json::Value::from(own), "v{version} answers as its own scorer");
    }
    let (status, answer) = post(&router, &[("x-target-variant", "blue")], &body).await;
    assert_eq!(status, 400, "{answer}");
    assert!(answer["error"].as_str().is_some_and(|e| e.contains("champion or challenger")), "{answer}");

    // Sticky by key: 300 customers, each twice; the split within three standard deviations.
    let mut truth = Vec::new();
    let mut challenger = 0;
    for i in 0..300 {
        let key = format!("customer-{i}");
        let (instance, species) = &birds[i % birds.len()];
        let one = serde_json::json!({ "instances": [instance] });
        let request_id = format!("ab-{i}");
        let (s1, first) = post(&router, &[("x-request-key", &key), ("x-request-id", &request_id)], &one).await;
        let (s2, second) = post(&router, &[("x-request-key", &key)], &one).await;
        assert_eq!((s1, s2), (200, 200));
        assert_eq!(first["variant"], second["variant"], "{key} keeps its variant");
        challenger += usize::from(first["variant"] == "challenger");
        truth.push((format!("{request_id}:0"), species.clone()));
    }
    let share = challenger as f64 / 300.0;
    assert!((share - 0.5).abs() <= 3.0 * (0.25f64 / 300.0).sqrt(), "challenger share {share}");

    // The labels arrive; the report compares the variants on them.
    for _ in 0..400 {
        if capture.counts.delivered.load(Ordering::Relaxed) >= 640 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    let labels_file = dir.path().join("labels.csv");
    let mut writer = csv::Writer::from_path(&labels_file).expect("labels");
    writer.write_record(["inference_id", "species"]).expect("header");
    for (id, species) in &truth {
        writer.write_record([id, species]).expect("label");
    }
    writer.flush().expect("flush");
    drop(writer);
    t.ingest_labels(&labels_file).await;

    let now = chrono::Utc::now();
    let ab = AbConfig {
        model_name: "penguins".into(),
        labels_dataset: "penguins-labels".into(),
        since: now.date_naive(),
        min_rows: 30,
        alpha: 0.05,
        power: 0.8,
    };
    let (report, key) = run_ab_report(&t.lake, &ab, now).await.expect("A/B report");
    assert!(key.starts_with("reports/ab/penguins/"));
    let page = t.lake.get(&key.replace(".json", ".html")).await.expect("the page").bytes;
    let page = String::from_utf8_lossy(&page);
    assert!(page.contains("challenger") && page.contains("Recommendation:") && page.contains("two-proportion z"));
    let variants: Vec<(&str, Vec<u32>, u64)> =
        report.variants.iter().map(|v| (v.variant.as_str(), v.versions.clone(), v.outcomes)).collect();
    assert_eq!(variants.len(), 2, "{report:?}");
    assert_eq!((variants[0].0, variants[0].1.as_slice()), ("challenger", &[2][..]));
    assert_eq!((variants[1].0, variants[1].1.as_slice()), ("champion", &[1][..]));
    assert_eq!(variants[0].2 + variants[1].2, 300, "every keyed request has its outcome");
    assert_eq!(variants[0].2, challenger as u64);
    // The figures are those of the statistics module, on the counts shown.
    let counts: Vec<(u64, u64)> = report
        .variants
        .iter()
        .map(|v| ((v.value.expect("accuracy") * v.outcomes as f64).round() as u64, v.outcomes))
        .collect();
    let z = mlops_metrics::ab::two_proportion_z(counts[0].0, counts[0].1, counts[1].0, counts[1].1);
    assert_eq!(report.test.as_deref(), Some("two-proportion z"));
    assert_eq!(report.p_value, z.map(|z| z.p_value), "{report:?}");
    for v in &report.variants {
        let i = v.interval.expect("interval");
        assert!(i.low <= v.value.expect("value") && v.value.expect("value") <= i.high);
    }
    assert!(["promote_challenger", "keep_champion", "not_enough_data"].contains(&report.recommendation.as_str()));

    // The same through the CLI.
    let out = Command::new(env!("CARGO_BIN_EXE_mlops"))
        .current_dir(repo())
        .args(["ab", "report", "--model", "penguins", "--labels", "penguins-labels"])
        .envs(t.server.env_vars())
        .env("LAKE_BUCKET", BUCKET)
        .output()
        .expect("mlops ab report runs");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(text.contains("challenger") && text.contains("champion") && text.contains("recommendation:"), "{text}");
    assert!(text.contains("two-proportion z"), "{text}");
}

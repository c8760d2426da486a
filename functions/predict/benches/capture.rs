//! What data capture costs a request: predict's handler in-process on the penguins model, with
//! capture off and with every request captured (a sample rate of 1) through aws-sdk-firehose
//! into the dev kit's Firehose endpoint, which writes each batch into the embedded lake.
//!
//! ```sh
//! cargo bench -p predict --bench capture
//! ```
//!
//! predict runs on a runtime of one worker thread: the requests are sent one at a time from
//! the runtime's own thread, as Lambda sends them, and the capture sender runs on the worker. The Firehose endpoint and the lake behind it run on a
//! runtime of their own (on AWS they are another service). The two configurations run in
//! alternating blocks of 500 requests, 20,000 requests each, for 1-row and 100-row requests;
//! it prints p50, p99 and p99.9 per configuration and the differences.

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::http::Request;
use mlops_contract::Contract;
use mlops_devkit::firehose::LocalFirehose;
use mlops_devkit::lake_server::{EmbeddedLake, ensure_bucket};
use mlops_lake::Lake;
use mlops_lake::registry::Manifest;
use mlops_model::Model;
use predict::{App, Capture, CaptureConfig, Served};
use serde_json::{Value, json};
use tower::ServiceExt;

const REQUESTS: usize = 20_000;
const BLOCK: usize = 500;

fn app() -> App {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/penguins");
    let bytes = std::fs::read(dir.join("model.onnx")).expect("model");
    let model = Model::load(&bytes).expect("model loads");
    let contract = Contract::load(&dir.join("contract.yaml")).expect("contract");
    let manifest = Manifest {
        name: "penguins".into(),
        version: 1,
        created_at: chrono::Utc::now(),
        dataset: contract.dataset.clone(),
        contract_version: 1,
        model_sha256: String::new(),
        model_bytes: bytes.len() as u64,
        inputs: model.inputs().to_vec(),
        outputs: model.outputs().to_vec(),
        baseline_id: None,
        class_labels: Some(vec!["Adelie".into(), "Chinstrap".into(), "Gentoo".into()]),
        metrics: None,
        lineage: None,
    };
    App::of(Served::new(manifest, contract, model).expect("contract fits"))
}

fn instances(n: usize) -> Vec<Value> {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/penguins");
    let expected: Value =
        serde_json::from_slice(&std::fs::read(dir.join("expected.json")).expect("expected.json")).expect("JSON");
    expected["rows"].as_array().expect("rows").iter().cycle().take(n).cloned().collect()
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    sorted[((sorted.len() as f64 * p) as usize).min(sorted.len() - 1)]
}

async fn time_block(router: &axum::Router, body: &str, n: usize, samples: &mut Vec<f64>, next_id: &mut u64) {
    for _ in 0..n {
        *next_id += 1;
        let request = Request::post("/predict")
            .header("content-type", "application/json")
            .header("x-request-id", format!("bench-{next_id}"))
            .body(Body::from(body.to_string()))
            .expect("request");
        let started = Instant::now();
        let response = router.clone().oneshot(request).await.expect("infallible");
        samples.push(started.elapsed().as_secs_f64() * 1e6);
        assert!(response.status().is_success());
    }
}

fn main() {
    // The delivery stream's side: the embedded lake and the local Firehose, on their own thread.
    let dir = tempfile::tempdir().expect("temp dir");
    let stream = "mlops-capture-penguins".to_string();
    let (ready, endpoint) = std::sync::mpsc::channel();
    let lake_dir = dir.path().to_path_buf();
    let sink_stream = stream.clone();
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().expect("runtime");
        rt.block_on(async move {
            let server = EmbeddedLake::start(&lake_dir, 0).await.expect("lake");
            ensure_bucket(&server.client(), "bench").await.expect("bucket");
            let lake = Lake::new(server.client(), "bench");
            let firehose = LocalFirehose::start(0, lake.clone(), &[(sink_stream, "capture/penguins/".into())])
                .await
                .expect("firehose");
            ready.send((firehose.endpoint(), lake)).expect("ready");
            let _keep = (server, firehose);
            std::future::pending::<()>().await;
        });
    });
    let (firehose_endpoint, lake) = endpoint.recv().expect("the sink starts");
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().expect("runtime");
    rt.block_on(async {
        let config =
            CaptureConfig { stream, sample_rate: 1.0, flush_interval: Duration::from_millis(1000), queue: 10_000 };
        let off = predict::router(Arc::new(app()));
        let mut captured = app();
        let capture = Arc::new(Capture::start(mlops_devkit::firehose::client_for(&firehose_endpoint), &config));
        captured.capture = Some(Arc::clone(&capture));
        let on = predict::router(Arc::new(captured));
        println!("| rows | capture | p50 µs | p99 µs | p99.9 µs |");
        println!("|---:|---|---:|---:|---:|");
        let mut id = 0;
        for rows in [1usize, 100] {
            let body = json!({ "instances": instances(rows) }).to_string();
            let (mut without, mut with) = (Vec::new(), Vec::new());
            // Warm both paths up, then alternate blocks so that both see the same machine.
            time_block(&off, &body, 200, &mut Vec::new(), &mut id).await;
            time_block(&on, &body, 200, &mut Vec::new(), &mut id).await;
            for _ in 0..REQUESTS / BLOCK {
                time_block(&off, &body, BLOCK, &mut without, &mut id).await;
                time_block(&on, &body, BLOCK, &mut with, &mut id).await;
            }
            let mut figures = Vec::new();
            for (name, samples) in [("off", &mut without), ("on", &mut with)] {
                samples.sort_by(f64::total_cmp);
                let f = (percentile(samples, 0.5), percentile(samples, 0.99), percentile(samples, 0.999));
                println!("| {rows} | {name} | {:.1} | {:.1} | {:.1} |", f.0, f.1, f.2);
                figures.push(f);
            }
            println!(
                "| {rows} | on − off | {:+.1} | {:+.1} | {:+.1} |",
                figures[1].0 - figures[0].0,
                figures[1].1 - figures[0].1,
                figures[1].2 - figures[0].2
            );
        }
        // Let the queue drain: wait until nothing more is delivered or lost.
        let offered = (REQUESTS + 200) as u64;
        let (lines, counts) = (offered * 101, &capture.counts);
        let load = |c: &std::sync::atomic::AtomicU64| c.load(std::sync::atomic::Ordering::Relaxed);
        let mut last = u64::MAX;
        for _ in 0..50 {
            tokio::time::sleep(Duration::from_millis(1200)).await;
            let now = load(&counts.delivered) + load(&counts.failed);
            if now == last {
                break;
            }
            last = now;
        }
        let objects = lake.list_objects("capture/penguins/").await.expect("list");
        println!(
            "\n{} requests captured ({lines} rows): {} rows delivered in {} objects; {} requests dropped because the queue was full; {} rows lost",
            2 * offered,
            load(&counts.delivered),
            objects.len(),
            load(&counts.dropped),
            load(&counts.failed),
        );
    });
}

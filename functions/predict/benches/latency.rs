//! Prediction latency and model load time for every conformance model and the penguins
//! example, through the predict handler in-process and through the model alone, beside
//! onnxruntime's figures for the same models and rows (from `bench/onnxruntime_bench.py`).
//!
//! ```sh
//! python bench/onnxruntime_bench.py --out bench/onnxruntime.json   # onnxruntime, one thread
//! cargo bench -p predict --bench latency                           # this, one thread
//! ```
//!
//! ONNX files given as arguments (`cargo bench … -- model.onnx`) have their load timed too.
//! Other arguments select the models whose name contains one of them, or whose family is one
//! of them (`cargo bench … -- mlp penguins`); without any, every model is measured.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::http::Request;
use mlops_contract::{Column, ColumnType, Contract};
use mlops_lake::registry::Manifest;
use mlops_model::{Cell, Model, NamedTensor};
use predict::{App, Served};
use serde_json::{Value, json};
use tower::ServiceExt;

/// Median of a closure's run time in microseconds, after warming up, over at least 300
/// runs and half a second.
fn median_us(mut f: impl FnMut()) -> f64 {
    for _ in 0..20 {
        f();
    }
    let mut samples = Vec::new();
    let start = Instant::now();
    while samples.len() < 300 || start.elapsed() < Duration::from_millis(500) {
        let t = Instant::now();
        f();
        samples.push(t.elapsed().as_secs_f64() * 1e6);
        if samples.len() >= 100_000 {
            break;
        }
    }
    samples.sort_by(f64::total_cmp);
    samples[samples.len() / 2]
}

/// A benchmark case: a model, a contract for its inputs and 20 instances.
struct Case {
    name: String,
    family: String,
    bytes: Vec<u8>,
    contract: Contract,
    instances: Vec<Value>,
}

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn column(name: &str, kind: ColumnType) -> Column {
    Column { name: name.into(), kind, nullable: true, min: None, max: None, allowed: None, description: None }
}

/// Builds a case from a conformance fixture: a contract that types each input column as the
/// model does, and the fixture's rows as instances.
fn fixture_case(json_path: &Path) -> Option<Case> {
    let spec: Value = serde_json::from_slice(&std::fs::read(json_path).ok()?).ok()?;
    if spec.get("expect_error").is_some() {
        return None;
    }
    let inputs = spec["inputs"].as_array()?;
    let rows = inputs[0]["shape"][0].as_u64()? as usize;
    let mut columns = Vec::new();
    let mut values: Vec<(String, Vec<Value>)> = Vec::new();
    for input in inputs {
        let name = input["name"].as_str()?;
        let width = input["shape"][1].as_u64()? as usize;
        let kind = match input["type"].as_str()? {
            "float" | "double" => ColumnType::Float,
            "int64" => ColumnType::Int,
            _ => ColumnType::Category,
        };
        let data = input["data"].as_array()?;
        for j in 0..width {
            let col = if width == 1 && inputs.len() > 1 { name.to_string() } else { format!("x{j}") };
            columns.push(column(&col, kind));
            values.push((col, (0..rows).map(|r| data[r * width + j].clone()).collect()));
        }
    }
    let features = columns.iter().map(|c| c.name.clone()).collect();
    let contract = Contract {
        dataset: "bench".into(),
        version: 1,
        target: None,
        features,
        event_time: None,
        id: None,
        columns,
        csv: Default::default(),
    };
    let instances = (0..rows)
        .map(|r| Value::Object(values.iter().map(|(name, v)| (name.clone(), v[r].clone())).collect()))
        .collect();
    Some(Case {
        name: json_path.file_stem()?.to_str()?.to_string(),
        family: spec["family"].as_str().unwrap_or("other").to_string(),
        bytes: std::fs::read(json_path.with_extension("onnx")).ok()?,
        contract,
        instances,
    })
}

fn penguins_case() -> Case {
    let dir = repo().join("examples/penguins");
    let expected: Value =
        serde_json::from_slice(&std::fs::read(dir.join("expected.json")).expect("expected.json")).expect("JSON");
    Case {
        name: "penguins".into(),
        family: "penguins".into(),
        bytes: std::fs::read(dir.join("model.onnx")).expect("model"),
        contract: Contract::load(&dir.join("contract.yaml")).expect("contract"),
        instances: expected["rows"].as_array().expect("rows").clone(),
    }
}

fn app(case: &Case) -> App {
    let model = Model::load(&case.bytes).expect("model loads");
    let manifest = Manifest {
        name: case.name.clone(),
        version: 1,
        created_at: chrono::Utc::now(),
        dataset: case.contract.dataset.clone(),
        contract_version: 1,
        model_sha256: String::new(),
        model_bytes: case.bytes.len() as u64,
        inputs: model.inputs().to_vec(),
        outputs: model.outputs().to_vec(),
        baseline_id: None,
        class_labels: None,
        metrics: None,
        lineage: None,
    };
    let champion = Served::new(manifest, case.contract.clone(), model).expect("contract fits");
    App::of(champion)
}

/// The first `n` instances, repeating the 20 as needed.
fn instances(case: &Case, n: usize) -> Vec<Value> {
    case.instances.iter().cycle().take(n).cloned().collect()
}

/// The model's input tensors for `n` rows, bypassing JSON and validation.
fn tensors(app: &App, case: &Case, n: usize) -> Vec<NamedTensor> {
    let served = &app.champion;
    let rows: Vec<Vec<Cell>> = instances(case, n)
        .iter()
        .map(|inst| {
            served
                .scorer
                .order()
                .iter()
                .map(|&i| match &inst[&case.contract.features[i]] {
                    Value::Number(x) => x.as_i64().map_or(Cell::Num(x.as_f64().unwrap_or(f64::NAN)), Cell::Int),
                    Value::String(s) => Cell::Text(s.clone()),
                    _ => Cell::Null,
                })
                .collect()
        })
        .collect();
    served.scorer.layout().encode(&rows).expect("inputs")
}

fn main() {
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
    let ort: Value = std::fs::read(repo().join("bench/onnxruntime.json"))
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
        .unwrap_or(Value::Null);
    let mut paths: Vec<PathBuf> = std::fs::read_dir(repo().join("tests/fixtures/models"))
        .expect("fixtures")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "json") && p.file_stem().is_some_and(|s| s != "index"))
        .collect();
    paths.sort();
    let mut cases: Vec<Case> = paths.iter().filter_map(|p| fixture_case(p)).collect();
    cases.push(penguins_case());
    cases.sort_by(|a, b| (&a.family, &a.name).cmp(&(&b.family, &b.name)));
    let selected: Vec<String> =
        std::env::args().skip(1).filter(|a| !a.starts_with('-') && !a.ends_with(".onnx")).collect();
    if !selected.is_empty() {
        cases.retain(|c| selected.iter().any(|s| c.name.contains(s.as_str()) || &c.family == s));
    }

    println!(
        "| family | model | KB | load ms | ort load ms | handler 1 row µs | model 1 row µs | ort 1 row µs | ort/model 1 | handler 100 rows µs | model 100 rows µs | ort 100 rows µs | ort/model 100 |"
    );
    println!("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
    let mut results = serde_json::Map::new();
    for case in &cases {
        let load_ms = median_us(|| {
            std::hint::black_box(Model::load(&case.bytes).expect("load"));
        }) / 1e3;
        let standalone = app(case);
        let router = predict::router(Arc::new(app(case)));
        let mut row = json!({"family": case.family, "load_ms": load_ms, "model_bytes": case.bytes.len()});
        let mut cells = Vec::new();
        for n in [1usize, 100] {
            let body = json!({ "instances": instances(case, n) }).to_string();
            let handler = median_us(|| {
                let request = Request::post("/predict")
                    .header("content-type", "application/json")
                    .body(Body::from(body.clone()))
                    .expect("request");
                let response = rt.block_on(router.clone().oneshot(request)).expect("infallible");
                assert!(response.status().is_success(), "{}: {}", case.name, response.status());
            });
            let inputs = tensors(&standalone, case, n);
            let model_only = median_us(|| {
                std::hint::black_box(standalone.champion.scorer.model().run(&inputs).expect("run"));
            });
            let ort_us = ort["models"][&case.name][format!("p50_us_{n}")].as_f64();
            row[format!("handler_us_{n}")] = json!(handler);
            row[format!("model_us_{n}")] = json!(model_only);
            cells.push((handler, model_only, ort_us));
        }
        let ort_load = ort["models"][&case.name]["load_ms"].as_f64();
        let fmt = |v: Option<f64>, digits: usize| v.map_or("–".to_string(), |v| format!("{v:.digits$}"));
        let ratio = |ort: Option<f64>, ours: f64| ort.map_or("–".to_string(), |o| format!("{:.2}", o / ours));
        println!(
            "| {} | {} | {:.1} | {:.2} | {} | {:.1} | {:.1} | {} | {} | {:.1} | {:.1} | {} | {} |",
            case.family,
            case.name,
            case.bytes.len() as f64 / 1024.0,
            load_ms,
            fmt(ort_load, 2),
            cells[0].0,
            cells[0].1,
            fmt(cells[0].2, 1),
            ratio(cells[0].2, cells[0].1),
            cells[1].0,
            cells[1].1,
            fmt(cells[1].2, 1),
            ratio(cells[1].2, cells[1].1),
        );
        results.insert(case.name.clone(), row);
    }
    let extra: Vec<PathBuf> = std::env::args().skip(1).filter(|a| a.ends_with(".onnx")).map(PathBuf::from).collect();
    if !extra.is_empty() {
        println!("\n| model file | KB | load ms | ort load ms | ort/ours |\n|---|---:|---:|---:|---:|");
    }
    for path in extra {
        let bytes = std::fs::read(&path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()));
        let load_ms = median_us(|| {
            std::hint::black_box(Model::load(&bytes).expect("load"));
        }) / 1e3;
        let name = path.file_name().and_then(|n| n.to_str()).unwrap_or_default();
        let ort_ms = ort["load"][name]["load_ms"].as_f64();
        println!(
            "| {name} | {:.0} | {load_ms:.1} | {} | {} |",
            bytes.len() as f64 / 1024.0,
            ort_ms.map_or("–".to_string(), |v| format!("{v:.1}")),
            ort_ms.map_or("–".to_string(), |v| format!("{:.2}", v / load_ms)),
        );
        results.insert(name.to_string(), json!({"model_bytes": bytes.len(), "load_ms": load_ms}));
    }
    let out = repo().join("target/bench-latency.json");
    if std::fs::write(&out, serde_json::to_vec_pretty(&Value::Object(results)).unwrap_or_default()).is_ok() {
        eprintln!("figures written to {}", out.display());
    }
}

//! `mlops score`: one record per input row, from a file model or a registered version.

use mlops::commands::LakeArgs;
use mlops::commands::score::{Loaded, ScoreArgs, score_file};
use serde_json::Value;

use crate::common::{self, TestLake, example};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scores_every_row_of_a_batch_from_a_model_file() {
    let dir = tempfile::tempdir().expect("temp dir");
    let model = example("model.onnx").display().to_string();
    let scorer = Loaded::load(&model, None, async || unreachable!("a file needs no lake")).await.expect("model loads");
    let args = ScoreArgs {
        model,
        contract: None,
        lake: LakeArgs { bucket: "unused".into() },
        input: example("batches/batch-02.csv"),
        output: dir.path().join("scores.jsonl"),
        batch_size: 64,
    };
    let summary = tokio::task::block_in_place(|| score_file(&scorer, &args)).expect("scoring");
    let text = std::fs::read_to_string(&args.output).expect("output");
    let records: Vec<Value> = text.lines().map(|l| serde_json::from_str(l).expect("JSON line")).collect();
    assert_eq!(records.len(), 306, "one record per data row");
    assert_eq!(summary.rows, 306);
    assert_eq!(summary.scored + summary.failed, 306);
    let rows: Vec<u64> = records.iter().map(|r| r["row"].as_u64().expect("row")).collect();
    assert_eq!(rows, (1..=306).collect::<Vec<u64>>());
    // The rows the contract rejects (as ingest quarantines them and predict answers them 400)
    // fail, each with the contract's reason; every other row is scored.
    let failed: Vec<(u64, &str)> =
        records.iter().filter_map(|r| Some((r["row"].as_u64()?, r.get("error")?.as_str()?))).collect();
    assert_eq!(
        failed,
        [
            (17, "bill_length_mm: \"abc\" is not a number"),
            (66, "island: \"Atlantis\" is not one of Biscoe, Dream, Torgersen"),
            (123, "body_mass_g: -3650 is below the minimum 2000"),
            (182, "flipper_length_mm: 1950 is above the maximum 250"),
            (240, "island: a value is required"),
            (298, "the row has 5 fields but the header has 8"),
        ],
        "{text}"
    );
    assert_eq!(summary.failed, 6, "{text}");
    assert!(records[0]["label"].is_i64() && records[0]["probabilities"].as_array().map(Vec::len) == Some(3));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scores_to_csv_with_a_registered_version() {
    let t = TestLake::with_penguins().await;
    let dir = tempfile::tempdir().expect("temp dir");
    let lake = t.lake.clone();
    let scorer = Loaded::load("penguins@1", None, async move || Ok(lake)).await.expect("registered version loads");
    let args = ScoreArgs {
        model: "penguins@1".into(),
        contract: None,
        lake: LakeArgs { bucket: common::BUCKET.into() },
        input: example("batches/batch-01.csv"),
        output: dir.path().join("scores.csv"),
        batch_size: 1000,
    };
    let summary = tokio::task::block_in_place(|| score_file(&scorer, &args)).expect("scoring");
    assert_eq!((summary.rows, summary.scored, summary.failed), (300, 300, 0));
    let mut reader = csv::Reader::from_path(&args.output).expect("csv");
    let header: Vec<String> = reader.headers().expect("header").iter().map(str::to_string).collect();
    assert_eq!(header, ["row", "class", "label", "probabilities_0", "probabilities_1", "probabilities_2", "error"]);
    assert_eq!(reader.records().count(), 300);
}

/// A contract over the five inputs of `imputer_scaler_logreg.onnx` (one float matrix) with a
/// boolean, an integer and nullable floats, plus columns the model does not take.
const PARITY_CONTRACT: &str = "dataset: parity
target: y
features: [f1, f2, flag, count, f5]
columns:
  - {name: id, type: string}
  - {name: f1, type: float, nullable: true}
  - {name: f2, type: float, nullable: true}
  - {name: flag, type: bool, nullable: true}
  - {name: count, type: int, nullable: true}
  - {name: f5, type: float, nullable: true}
  - {name: y, type: category, nullable: true}
";

/// The same rows three ways: a CSV with its columns in another order than the features (and
/// extra ones), JSON Lines with JSON booleans and nulls, and predict's instances.
const PARITY_CSV: &str = "id,f5,flag,y,count,f2,f1
a,0.5,true,x,3,-1.25,2.0
b,,false,,0,0.75,
c,-2.5,,x,,1.5,0.125
d,1e-3,TRUE,x,-7,,-3.5
";

fn parity_instances() -> Vec<Value> {
    vec![
        serde_json::json!({"f5": 0.5, "flag": true, "count": 3, "f2": -1.25, "f1": 2.0}),
        serde_json::json!({"f1": null, "f2": 0.75, "flag": false, "count": 0, "f5": null}),
        serde_json::json!({"count": null, "f2": 1.5, "f1": 0.125, "f5": -2.5, "flag": null}),
        serde_json::json!({"flag": true, "count": -7, "f5": 0.001, "f1": -3.5}),
    ]
}

fn fixture_model() -> std::path::PathBuf {
    common::repo().join("tests/fixtures/models/imputer_scaler_logreg.onnx")
}

fn records(path: &std::path::Path) -> Vec<Value> {
    let text = std::fs::read_to_string(path).expect("output");
    text.lines().map(|l| serde_json::from_str(l).expect("JSON line")).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mlops_score_and_predict_answer_the_same_rows_identically() {
    use mlops_contract::Contract;
    use mlops_lake::registry::Manifest;
    use tower::ServiceExt;

    let dir = tempfile::tempdir().expect("temp dir");
    let contract_path = dir.path().join("contract.yaml");
    std::fs::write(&contract_path, PARITY_CONTRACT).expect("contract");
    let csv = dir.path().join("rows.csv");
    std::fs::write(&csv, PARITY_CSV).expect("csv");
    let jsonl = dir.path().join("rows.jsonl");
    let lines: Vec<String> = parity_instances().iter().map(Value::to_string).collect();
    std::fs::write(&jsonl, lines.join("\n")).expect("jsonl");

    // mlops score, from the CSV and from JSON Lines.
    let model = fixture_model().display().to_string();
    let loaded = Loaded::load(&model, Some(&contract_path), async || unreachable!("a file needs no lake"))
        .await
        .expect("model and contract load");
    let mut scored = Vec::new();
    for input in [&csv, &jsonl] {
        let args = ScoreArgs {
            model: model.clone(),
            contract: Some(contract_path.clone()),
            input: input.clone(),
            output: dir.path().join("out.jsonl"),
            batch_size: 3,
            lake: LakeArgs { bucket: "unused".into() },
        };
        let summary = tokio::task::block_in_place(|| score_file(&loaded, &args)).expect("scoring");
        assert_eq!((summary.rows, summary.scored, summary.failed), (4, 4, 0), "{}", input.display());
        let mut out = records(&args.output);
        for r in &mut out {
            r.as_object_mut().expect("record").remove("row");
        }
        scored.push(out);
    }
    assert_eq!(scored[0], scored[1], "CSV and JSON Lines give the same outputs");

    // predict, on the same rows as instances.
    let bytes = std::fs::read(fixture_model()).expect("model file");
    let onnx = mlops_model::Model::load(&bytes).expect("model");
    let contract = Contract::from_yaml(PARITY_CONTRACT, "contract.yaml").expect("contract");
    let manifest = Manifest {
        name: "parity".into(),
        version: 1,
        created_at: chrono::Utc::now(),
        dataset: "parity".into(),
        contract_version: 1,
        model_sha256: String::new(),
        model_bytes: bytes.len() as u64,
        inputs: onnx.inputs().to_vec(),
        outputs: onnx.outputs().to_vec(),
        baseline_id: None,
        class_labels: None,
        metrics: None,
        lineage: None,
    };
    let champion = predict::Served::new(manifest, contract, onnx).expect("fits");
    let app = predict::App::of(champion);
    let router = predict::router(std::sync::Arc::new(app));
    let request = axum::http::Request::post("/predict")
        .header("content-type", "application/json")
        .body(axum::body::Body::from(serde_json::json!({"instances": parity_instances()}).to_string()))
        .expect("request");
    let response = router.oneshot(request).await.expect("infallible");
    assert_eq!(response.status(), 200);
    let body = http_body_util::BodyExt::collect(response.into_body()).await.expect("body").to_bytes();
    let body: Value = serde_json::from_slice(&body).expect("JSON");
    let predicted = body["predictions"].as_array().expect("predictions");
    assert_eq!(predicted, &scored[0], "predict and mlops score agree on every row");
    // Booleans became 1/0 and missing values NaN: rows differing only there score differently.
    assert_ne!(predicted[0], predicted[1]);
}

#[test]
fn mlops_score_exits_non_zero_when_no_row_is_scored() {
    let dir = tempfile::tempdir().expect("temp dir");
    let contract = dir.path().join("contract.yaml");
    std::fs::write(&contract, PARITY_CONTRACT).expect("contract");
    let input = dir.path().join("bad.csv");
    std::fs::write(&input, "id,f1,f2,flag,count,f5\na,x,1,true,1,1\nb,1,1,maybe,1,1\n").expect("csv");
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_mlops"))
        .args(["score", "--model"])
        .arg(fixture_model())
        .arg("--contract")
        .arg(&contract)
        .arg("--input")
        .arg(&input)
        .arg("--output")
        .arg(dir.path().join("out.jsonl"))
        .output()
        .expect("mlops runs");
    assert!(!out.status.success(), "no row scored must fail");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("scored 0 of 2 rows") && stderr.contains("no row of"), "{stderr}");
    let written = records(&dir.path().join("out.jsonl"));
    assert!(written[0]["error"].as_str().expect("error").contains("\"x\" is not a number"), "{written:?}");
    assert!(written[1]["error"].as_str().expect("error").contains("\"maybe\" is not true or false"), "{written:?}");
}

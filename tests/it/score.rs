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
        output: Some(dir.path().join("scores.jsonl")),
        batch_size: 64,
        items_per_batch: 10,
        parallel: None,
    };
    let summary = tokio::task::block_in_place(|| score_file(&scorer, &args)).expect("scoring");
    let text = std::fs::read_to_string(args.output.as_ref().expect("output")).expect("output");
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
        output: Some(dir.path().join("scores.csv")),
        batch_size: 1000,
        items_per_batch: 10,
        parallel: None,
    };
    let summary = tokio::task::block_in_place(|| score_file(&scorer, &args)).expect("scoring");
    assert_eq!((summary.rows, summary.scored, summary.failed), (300, 300, 0));
    let mut reader = csv::Reader::from_path(args.output.as_ref().expect("output")).expect("csv");
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
            output: Some(dir.path().join("out.jsonl")),
            batch_size: 3,
            items_per_batch: 10,
            parallel: None,
            lake: LakeArgs { bucket: "unused".into() },
        };
        let summary = tokio::task::block_in_place(|| score_file(&loaded, &args)).expect("scoring");
        assert_eq!((summary.rows, summary.scored, summary.failed), (4, 4, 0), "{}", input.display());
        let mut out = records(args.output.as_ref().expect("output"));
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

/// The rows of a predictions object: (source, row, prediction JSON, error).
fn predictions(bytes: Vec<u8>) -> Vec<(String, i64, Option<Value>, Option<String>)> {
    use arrow_array::cast::AsArray as _;
    use arrow_array::types::Int64Type;
    let reader = parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(bytes::Bytes::from(bytes))
        .expect("Parquet")
        .build()
        .expect("reader");
    let mut out = Vec::new();
    for batch in reader {
        let batch = batch.expect("batch");
        let column = |name: &str| batch.column_by_name(name).unwrap_or_else(|| panic!("no column {name}")).clone();
        let (source, row, prediction, error) = (column("source"), column("row"), column("prediction"), column("error"));
        let (source, row) = (source.as_string::<i32>(), row.as_primitive::<Int64Type>());
        let (prediction, error) = (prediction.as_string::<i32>(), error.as_string::<i32>());
        for i in 0..batch.num_rows() {
            use arrow_array::Array as _;
            out.push((
                source.value(i).to_string(),
                row.value(i),
                (!prediction.is_null(i)).then(|| serde_json::from_str(prediction.value(i)).expect("prediction JSON")),
                (!error.is_null(i)).then(|| error.value(i).to_string()),
            ));
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_batch_score_handler_on_a_prefix_gives_what_mlops_score_gives() {
    let t = TestLake::with_penguins().await;
    t.ingest_batch("batch-01.csv", common::at("2026-03-01T10:00:00Z")).await;
    t.ingest_batch("batch-02.csv", common::at("2026-03-02T10:00:00Z")).await;
    let listed = t.lake.list_objects("curated/penguins/").await.expect("list");
    assert_eq!(listed.len(), 2);

    // A batch as the Distributed Map passes it: the listing's items and the BatchInput.
    let items: Vec<Value> = listed
        .iter()
        .map(|o| serde_json::json!({"Etag": o.etag, "Key": o.key, "LastModified": 1764547200, "Size": o.size, "StorageClass": "STANDARD"}))
        .collect();
    let event = serde_json::json!({"Items": items, "BatchInput": {"model": "penguins", "version": 1}});
    let config = score::Config { bucket: common::BUCKET.into(), model: None };
    let out = score::handle(&t.lake, &score::Scorers::default(), &config, event).await.expect("batch scored");
    let done: score::BatchScored = serde_json::from_value(out).expect("summary");
    assert_eq!((done.items, done.rows, done.scored, done.failed), (2, 600, 600, 0));
    assert_eq!(
        done.outputs.iter().map(|k| &k[..k.rfind('/').expect("key")]).collect::<Vec<_>>(),
        ["predictions/penguins/v1/dt=2026-03-01", "predictions/penguins/v1/dt=2026-03-02"]
    );

    // The Athena table over the predictions types every column as the function writes it.
    let contract = mlops_contract::Contract::load(&example("contract.yaml")).expect("contract");
    let table = mlops_formats::athena::predictions("penguins", &contract, common::BUCKET);
    let written = t.lake.get(&done.outputs[0]).await.expect("predictions").bytes;
    assert_eq!(table.columns, common::hive_columns(written));
    assert!(done.outputs[0].starts_with(&table.location.replace("s3://mlops-lake/", "")));

    let dir = tempfile::tempdir().expect("temp dir");
    let loaded = {
        let lake = t.lake.clone();
        Loaded::load("penguins@1", None, async move || Ok(lake)).await.expect("registered version loads")
    };
    for (object, output) in listed.iter().zip(&done.outputs) {
        let scored = predictions(t.lake.get(output).await.expect("predictions").bytes);
        assert_eq!(scored.len(), 300, "{output}");
        // mlops score on the same rows: the curated file, read locally.
        let local = dir.path().join("curated.parquet");
        std::fs::write(&local, t.lake.get(&object.key).await.expect("curated").bytes).expect("write");
        let args = ScoreArgs {
            model: "penguins@1".into(),
            contract: None,
            lake: LakeArgs { bucket: common::BUCKET.into() },
            input: local.clone(),
            output: Some(dir.path().join("scores.jsonl")),
            batch_size: 7,
            items_per_batch: 10,
            parallel: None,
        };
        let summary = tokio::task::block_in_place(|| score_file(&loaded, &args)).expect("scoring");
        assert_eq!((summary.rows, summary.scored), (300, 300));
        let expected = records(args.output.as_ref().expect("output"));
        for ((source, row, prediction, error), mut record) in scored.into_iter().zip(expected) {
            assert_eq!((source.as_str(), error), (object.key.as_str(), None));
            let record = record.as_object_mut().expect("record");
            assert_eq!(record.remove("row").and_then(|r| r.as_i64()), Some(row));
            assert_eq!(prediction, Some(Value::Object(record.clone())), "{output} row {row}");
        }
    }

    // The same prefix through `mlops score --input s3://…`: the same handler, in parallel
    // batches of one object, to the same keys and contents.
    let before: Vec<Vec<u8>> = {
        let mut all = Vec::new();
        for k in &done.outputs {
            all.push(t.lake.get(k).await.expect("get").bytes);
        }
        all
    };
    let args = ScoreArgs {
        model: "penguins@1".into(),
        contract: None,
        lake: LakeArgs { bucket: common::BUCKET.into() },
        input: "s3://mlops-lake/curated/penguins/".into(),
        output: None,
        batch_size: 1024,
        items_per_batch: 1,
        parallel: Some(2),
    };
    let local = mlops::commands::score::score_prefix(&t.lake, &args, "curated/penguins/").await.expect("prefix scored");
    assert_eq!((local.items, local.rows, local.scored), (2, 600, 600));
    assert_eq!(local.outputs, done.outputs);
    for (k, bytes) in local.outputs.iter().zip(before) {
        assert_eq!(
            predictions(t.lake.get(k).await.expect("get").bytes),
            predictions(bytes),
            "{k}: the same predictions"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_stream_handler_reports_exactly_the_bad_record_as_failed() {
    let t = TestLake::with_penguins().await;
    let event: Value = serde_json::from_str(include_str!("../../events/sqs-score.json")).expect("sample event");
    let config = score::Config {
        bucket: common::BUCKET.into(),
        model: Some(mlops_lake::ModelRef { name: "penguins".into(), version: 1 }),
    };
    let out = score::handle(&t.lake, &score::Scorers::default(), &config, event.clone()).await.expect("scored");
    assert_eq!(out, serde_json::json!({"batchItemFailures": [{"itemIdentifier": event["Records"][1]["messageId"]}]}));
    let written = t.lake.list("predictions/penguins/v1/").await.expect("list");
    assert_eq!(written.len(), 1, "{written:?}");
    let rows = predictions(t.lake.get(&written[0]).await.expect("get").bytes);
    assert_eq!(rows.len(), 2, "the two good records");
    assert!(rows.iter().all(|(source, _, p, e)| source.ends_with(":mlops-score")
        && e.is_none()
        && p.as_ref().is_some_and(|p| p["class"].is_string())));

    // Without a model to score with, the whole batch fails (and is retried), naming why.
    let config = score::Config { bucket: common::BUCKET.into(), model: None };
    let e = score::handle(&t.lake, &score::Scorers::default(), &config, event).await.expect_err("no model");
    assert!(e.to_string().contains("MODEL_NAME"), "{e}");
}

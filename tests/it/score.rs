//! `mlops score`: one record per input row, from a file model or a registered version.

use mlops::score::{ScoreArgs, Scorer, score_file};
use serde_json::Value;

use crate::common::{TestLake, example};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scores_every_row_of_a_batch_from_a_model_file() {
    let dir = tempfile::tempdir().expect("temp dir");
    let model = example("model.onnx").display().to_string();
    let scorer = Scorer::load(&model, async || unreachable!("a file needs no lake")).await.expect("model loads");
    let args = ScoreArgs {
        model,
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
    // Data row 17 (file line 18) has bill_length_mm "abc": only that row fails.
    assert!(records[16]["error"].as_str().expect("error").contains("\"abc\" is not a number"), "{}", records[16]);
    assert_eq!(summary.failed, 1, "{text}");
    assert!(records[0]["label"].is_i64() && records[0]["probabilities"].as_array().map(Vec::len) == Some(3));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scores_to_csv_with_a_registered_version() {
    let t = TestLake::with_penguins().await;
    let dir = tempfile::tempdir().expect("temp dir");
    let lake = t.lake.clone();
    let scorer = Scorer::load("penguins@1", async move || lake).await.expect("registered version loads");
    let args = ScoreArgs {
        model: "penguins@1".into(),
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

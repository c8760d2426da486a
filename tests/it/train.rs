//! The retraining loop by hand, as a user runs it: ingest batches, train on the training file
//! and the curated batches in the lake, evaluate against the registered champion on a holdout,
//! register the candidate with its lineage, decide on it.

use std::process::Command;

use crate::common::{BUCKET, TestLake, at, example, repo};

fn mlops(t: &TestLake, args: &[&str]) -> (bool, String, String) {
    let mut command = Command::new(env!("CARGO_BIN_EXE_mlops"));
    command.current_dir(repo()).args(args).env_clear().env("PATH", std::env::var_os("PATH").unwrap_or_default());
    command.envs(t.server.env_vars()).envs([
        ("LAKE_BUCKET", BUCKET),
        ("MLOPS_USER", "ci-test"),
        ("MLOPS_CODE_VERSION", "abc123"),
    ]);
    let out = tokio::task::block_in_place(|| command.output().expect("mlops runs"));
    (out.status.success(), String::from_utf8_lossy(&out.stdout).into(), String::from_utf8_lossy(&out.stderr).into())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn train_evaluate_register_and_approve_with_lineage() {
    let t = TestLake::with_penguins().await;
    t.ingest_batch("batch-01.csv", at("2026-05-01T00:00:00Z")).await;
    t.ingest_batch("batch-03-shifted.csv", at("2026-05-02T00:00:00Z")).await;
    let dir = tempfile::tempdir().expect("temp dir");
    let model = dir.path().join("candidate.onnx");
    let model = model.to_str().expect("path");
    let contract = example("contract.yaml");
    let contract = contract.to_str().expect("path");
    let train = example("train.csv");
    let train = train.to_str().expect("path");
    let curated = format!("s3://{BUCKET}/curated/penguins/");

    let (ok, stdout, stderr) = mlops(&t, &["train", "--contract", contract, "--out", model, train, &curated]);
    assert!(ok, "{stdout}{stderr}");
    assert!(stdout.contains("trained Multiclass on") && stdout.contains("0 labels differ"), "{stdout}");
    let record: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.path().join("candidate.training.json")).expect("record"))
            .expect("JSON");
    let inputs = record["data"]["inputs"].as_array().expect("inputs");
    assert_eq!(inputs.len(), 3, "the training file and two curated files: {inputs:?}");
    assert!(inputs[1]["key"].as_str().is_some_and(|k| k.starts_with(&curated) && k.ends_with(".parquet")));
    assert_eq!(record["data"]["rows"], 344 + 300 + 300);
    assert_eq!(record["data"]["sha256"].as_str().map(str::len), Some(64));

    let evaluation = dir.path().join("evaluation.json");
    let evaluation = evaluation.to_str().expect("path");
    let holdout = example("batches/batch-02.csv");
    let (ok, stdout, stderr) = mlops(
        &t,
        &[
            "evaluate",
            "--model",
            model,
            "--contract",
            contract,
            "--champion",
            "penguins@1",
            "--json",
            evaluation,
            holdout.to_str().expect("path"),
        ],
    );
    assert!(ok, "{stdout}{stderr}");
    assert!(stdout.contains("champion penguins@1") && stdout.contains("accuracy"), "{stdout}");
    assert!(stdout.contains("decision: PROMOTE") || stdout.contains("decision: HOLD"), "{stdout}");
    let eval: serde_json::Value = serde_json::from_slice(&std::fs::read(evaluation).expect("record")).expect("JSON");
    assert_eq!(eval["rows"], 300, "the holdout's valid rows");
    assert!(eval["champion"]["metrics"]["accuracy"].as_f64().is_some());

    let register = [
        "model",
        "register",
        "--name",
        "penguins",
        "--model",
        model,
        "--contract",
        contract,
        "--train",
        train,
        "--evaluation",
        evaluation,
    ];
    let (ok, stdout, stderr) = mlops(&t, &register);
    assert!(ok, "{stdout}{stderr}");
    assert!(stderr.contains("registered penguins v2") && stderr.contains("pending approval"), "{stderr}");
    let (ok, _, stderr) = mlops(&t, &register);
    assert!(ok && stderr.contains("penguins v2 already holds this model"), "{stderr}");

    let (ok, show, stderr) = mlops(&t, &["model", "show", "penguins@2"]);
    assert!(ok, "{stderr}");
    for expected in [
        "parent      penguins@1",
        "code        abc123",
        "registered  by ci-test",
        "PendingManualApproval",
        "input     s3://",
        "evaluated   on 300 holdout rows",
    ] {
        assert!(show.contains(expected), "{expected:?} not in\n{show}");
    }

    let (ok, stdout, stderr) =
        mlops(&t, &["model", "approve", "penguins@2", "--reason", "better log loss on batch-02"]);
    assert!(ok && stdout.contains("penguins@2 Approved by ci-test"), "{stdout}{stderr}");
    let (ok, _, stderr) = mlops(&t, &["model", "reject", "penguins@2", "--reason", "changed my mind"]);
    assert!(!ok && stderr.contains("was already Approved by ci-test"), "{stderr}");
    let (ok, list, stderr) = mlops(&t, &["model", "list", "--name", "penguins"]);
    assert!(ok, "{stderr}");
    let lines: Vec<&str> = list.lines().collect();
    assert!(lines[1].starts_with("v1") && lines[1].contains("PendingManualApproval"), "{list}");
    assert!(lines[2].starts_with("v2") && lines[2].contains("Approved") && lines[2].contains("v1"), "{list}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_external_trainer_gets_the_snapshot_and_its_model_is_collected() {
    let t = TestLake::start().await;
    let dir = tempfile::tempdir().expect("temp dir");
    let model = dir.path().join("external.onnx");
    let contract = example("contract.yaml");
    // A trainer of the user's own: it sees the snapshot (header and 344 rows), writes a model
    // and its metrics.
    let command = format!(
        "test $(wc -l < \"$MLOPS_TRAIN_DATA\") -eq 345 && cp {} \"$MLOPS_TRAIN_MODEL\" && echo '{{\"accuracy\": 0.97}}' > \"$MLOPS_TRAIN_METRICS\"",
        example("model.onnx").display()
    );
    let args = [
        "train",
        "--contract",
        contract.to_str().expect("path"),
        "--out",
        model.to_str().expect("path"),
        "--command",
        &command,
    ];
    let train = example("train.csv");
    let (ok, stdout, stderr) = mlops(&t, &[&args[..], &[train.to_str().expect("path")]].concat());
    assert!(ok, "{stdout}{stderr}");
    let record: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.path().join("external.training.json")).expect("record"))
            .expect("JSON");
    assert_eq!(record["trainer"], "command");
    assert_eq!(record["reported_metrics"]["accuracy"], 0.97);
    assert_eq!(record["data"]["rows"], 344);
    // A trainer that fails, or writes no model, fails the run with its reason.
    let (ok, _, stderr) = mlops(&t, &[&args[..5], &["--command", "exit 3", train.to_str().expect("path")]].concat());
    assert!(!ok && stderr.contains("failed"), "{stderr}");
}

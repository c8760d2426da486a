//! The `mlops` binary, configured only through the environment as a user would.

use std::process::Command;

use crate::common::{TestLake, repo};

fn mlops(t: &TestLake, args: &[&str]) -> std::process::Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_mlops"));
    command.current_dir(repo()).args(args).env_clear().env("PATH", std::env::var_os("PATH").unwrap_or_default());
    for (name, value) in t.server.env_vars() {
        command.env(name, value);
    }
    command.envs([("LAKE_BUCKET", "mlops-lake"), ("MODEL_NAME", "penguins"), ("MODEL_VERSION", "1")]);
    command.output().expect("mlops runs")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn register_then_invoke_predict_with_the_sample_event() {
    let t = TestLake::start().await;
    let register = [
        "model",
        "register",
        "--name",
        "penguins",
        "--model",
        "examples/penguins/model.onnx",
        "--contract",
        "examples/penguins/contract.yaml",
        "--train",
        "examples/penguins/train.csv",
        "--class-labels",
        "Adelie,Chinstrap,Gentoo",
    ];
    let out = {
        let t = &t;
        tokio::task::block_in_place(|| mlops(t, &register))
    };
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let manifest: serde_json::Value = serde_json::from_slice(&out.stdout).expect("manifest JSON");
    assert_eq!(manifest["version"], 1);

    let out = tokio::task::block_in_place(|| mlops(&t, &["invoke", "predict", "--event", "events/api-predict.json"]));
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let response: serde_json::Value = serde_json::from_slice(&out.stdout).expect("response JSON");
    assert_eq!(response["statusCode"], 200);
    let body: serde_json::Value = serde_json::from_str(response["body"].as_str().expect("body")).expect("body JSON");
    assert_eq!(body["predictions"].as_array().map(Vec::len), Some(3));

    let out = tokio::task::block_in_place(|| mlops(&t, &["invoke", "predict", "--event", "events/missing.json"]));
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("reading events/missing.json"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_setting_is_named() {
    let t = TestLake::start().await;
    let out = tokio::task::block_in_place(|| {
        let mut command = Command::new(env!("CARGO_BIN_EXE_mlops"));
        command.current_dir(repo()).args(["invoke", "drift-check", "--event", "events/schedule.json"]);
        command.env_clear().envs(t.server.env_vars());
        command.output().expect("mlops runs")
    });
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("environment variable LAKE_BUCKET is not set"), "{stderr}");
}

#[test]
fn ingest_tries_a_contract_on_local_files() {
    let out = tempfile::tempdir().expect("temp dir");
    let output = Command::new(env!("CARGO_BIN_EXE_mlops"))
        .current_dir(repo())
        .args(["ingest", "--contract", "examples/penguins/contract.yaml", "--out"])
        .arg(out.path())
        .args(["examples/penguins/batches/batch-01.csv", "examples/penguins/batches/batch-02.csv"])
        .output()
        .expect("mlops runs");
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let report = String::from_utf8_lossy(&output.stdout);
    assert!(report.contains("batch-02.csv                      306      300            6"), "{report}");
    assert!(report.contains("line     18: bill_length_mm: \"abc\" is not a number"), "{report}");
    let manifests: Vec<_> = walk(&out.path().join("manifests"));
    assert_eq!(manifests.len(), 2, "one manifest per file");
    let manifest: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&manifests[1]).expect("manifest")).expect("JSON");
    assert_eq!(manifest["counts"], serde_json::json!({"rows_read": 306, "curated": 300, "quarantined": 6}));
    assert_eq!(manifest["contract_version"], 1);
    assert_eq!(manifest["format"], "csv");
}

fn walk(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let path = entry.path();
        if path.is_dir() { files.extend(walk(&path)) } else { files.push(path) }
    }
    files.sort();
    files
}

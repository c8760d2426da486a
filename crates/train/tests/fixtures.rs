//! The trainer's committed fixtures (tests/fixtures/train/, made by make_expected.py): each
//! model retrained here is byte-for-byte the committed one, and the exported graph as tract
//! runs it (predict's path), the native model and onnxruntime's recorded outputs agree on every
//! row of the training file: labels exactly, scores within 1e-5.

use std::path::{Path, PathBuf};

use mlops_contract::Contract;
use mlops_contract::validate::Value;
use mlops_model::{Model, Scorer};
use mlops_train::evaluate::numbers;
use mlops_train::{DataSnapshot, Prediction, TrainConfig};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn fixture(name: &str) -> PathBuf {
    root().join("tests/fixtures/train").join(name)
}

fn rows(contract: &Contract) -> Vec<Vec<Value>> {
    let mut rows = Vec::new();
    let data = root().join("examples/penguins/train.csv");
    let rejected = mlops_flows::baseline::each_row(contract, &[data], |r| rows.push(r.to_vec())).expect("rows");
    assert_eq!(rejected, 0);
    rows
}

fn check(case: &str) {
    let contract = Contract::load(&fixture(&format!("{case}.contract.yaml"))).expect("contract");
    let config = TrainConfig::from_yaml(&std::fs::read_to_string(fixture("train.yaml")).expect("config"), "train.yaml")
        .expect("config");
    let rows = rows(&contract);
    let trained = mlops_train::train(&contract, &rows, &config, DataSnapshot::default()).expect("trained");
    let committed = std::fs::read(fixture(&format!("{case}.onnx"))).expect("committed model");
    assert!(trained.onnx == committed, "{case}: the retrained model differs from the committed one");

    let expected: serde_json::Value =
        serde_json::from_slice(&std::fs::read(fixture(&format!("{case}.expected.json"))).expect("expected"))
            .expect("JSON");
    assert_eq!(expected["rows"], rows.len());
    let scorer = Scorer::new(Model::load(&committed).expect("loads"), &contract, trained.class_labels())
        .expect("fits the contract");
    let positions: Vec<usize> = contract
        .features
        .iter()
        .map(|f| contract.columns.iter().position(|c| &c.name == f).expect("a column"))
        .collect();
    let features: Vec<Vec<Value>> = rows.iter().map(|r| positions.iter().map(|&i| r[i].clone()).collect()).collect();
    let tract = scorer.score(&features).expect("scored");
    let refs: Vec<&[Value]> = rows.iter().map(Vec::as_slice).collect();
    let native = trained.predict(&refs);
    let mut worst = 0f64;
    for (i, out) in tract.iter().enumerate() {
        match &native {
            Prediction::Classes(p) => {
                let ort_label = expected["label"][i].as_u64().expect("label");
                assert_eq!(out["label"].as_u64(), Some(ort_label), "{case} row {i}: tract and onnxruntime labels");
                assert_eq!(mlops_train::booster::argmax(&p[i]) as u64, ort_label, "{case} row {i}: native label");
                let ort = numbers(&expected["probabilities"][i]);
                for ((t, o), n) in numbers(&out["probabilities"]).iter().zip(&ort).zip(&p[i]) {
                    worst = worst.max((t - o).abs()).max((n - o).abs());
                }
            }
            Prediction::Numbers(v) => {
                let ort = numbers(&expected["variable"][i])[0];
                let t = numbers(&out["variable"])[0];
                worst = worst.max((t - ort).abs() / ort.abs().max(1.0)).max((v[i] - ort).abs() / ort.abs().max(1.0));
            }
        }
    }
    println!("{case}: {} rows, largest difference from onnxruntime {worst:.2e}", rows.len());
    assert!(worst <= 1e-5, "{case}: a score differs from onnxruntime's by {worst:e}");
}

#[test]
fn multiclass_model_matches_onnxruntime_and_itself() {
    check("multiclass");
}

#[test]
fn binary_model_matches_onnxruntime_and_itself() {
    check("binary");
}

#[test]
fn regression_model_matches_onnxruntime_and_itself() {
    check("regression");
}

#[test]
fn training_is_deterministic_for_a_seed_and_changes_with_it() {
    let contract = Contract::load(&fixture("multiclass.contract.yaml")).expect("contract");
    let rows = rows(&contract);
    let config = TrainConfig { iterations: 10, ..TrainConfig::default() };
    let a = mlops_train::train(&contract, &rows, &config, DataSnapshot::default()).expect("trained");
    let b = mlops_train::train(&contract, &rows, &config, DataSnapshot::default()).expect("trained");
    assert!(a.onnx == b.onnx);
    let other = TrainConfig { seed: 1, ..config };
    let c = mlops_train::train(&contract, &rows, &other, DataSnapshot::default()).expect("trained");
    assert!(a.onnx != c.onnx, "another seed holds out other rows");
}

#[test]
fn bad_input_gets_a_reason() {
    let contract = Contract::load(&fixture("multiclass.contract.yaml")).expect("contract");
    let rows = rows(&contract);
    let e = mlops_train::train(&contract, &rows[..1], &TrainConfig::default(), DataSnapshot::default())
        .expect_err("one row");
    assert!(e.to_string().contains("too few to train on"), "{e}");
    let e = TrainConfig::from_yaml("iterations: 0\n", "t.yaml").expect_err("zero");
    assert!(e.to_string().contains("iterations must be at least 1"), "{e}");
    let e = TrainConfig::from_yaml("itterations: 5\n", "t.yaml").expect_err("typo");
    assert!(e.to_string().contains("unknown field"), "{e}");
    let regression = TrainConfig { task: Some(mlops_train::Task::Regression), ..TrainConfig::default() };
    let e = mlops_train::train(&contract, &rows, &regression, DataSnapshot::default()).expect_err("category");
    assert!(e.to_string().contains("cannot be regressed"), "{e}");
}

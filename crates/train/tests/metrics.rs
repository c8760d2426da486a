//! Evaluation metrics against scikit-learn's on committed cases (tests/fixtures/metrics/,
//! made by make_cases.py): ties, a class absent from the truth, constant predictions, a
//! constant truth; every figure within 1e-9.

use std::path::Path;

use mlops_train::metrics::{classification, regression};

fn cases() -> serde_json::Value {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures/metrics/cases.json");
    serde_json::from_slice(&std::fs::read(path).expect("cases")).expect("JSON")
}

fn f(v: &serde_json::Value) -> f64 {
    v.as_f64().expect("a number")
}

fn close(name: &str, what: &str, ours: f64, theirs: f64) {
    assert!((ours - theirs).abs() <= 1e-9, "{name}: {what} is {ours}, scikit-learn says {theirs}");
}

#[test]
fn classification_metrics_equal_scikit_learns() {
    let cases = cases();
    for case in cases["classification"].as_array().expect("cases") {
        let name = case["name"].as_str().expect("name");
        let classes: Vec<String> =
            case["classes"].as_array().expect("classes").iter().map(|c| c.as_str().expect("class").into()).collect();
        let truth: Vec<usize> =
            case["truth"].as_array().expect("truth").iter().map(|v| v.as_u64().expect("class") as usize).collect();
        let p: Vec<Vec<f64>> = case["probabilities"]
            .as_array()
            .expect("probabilities")
            .iter()
            .map(|r| r.as_array().expect("row").iter().map(f).collect())
            .collect();
        let m = classification(&classes, &truth, &p);
        close(name, "accuracy", m.accuracy, f(&case["accuracy"]));
        close(name, "macro-F1", m.macro_f1, f(&case["macro_f1"]));
        close(name, "log loss", m.log_loss, f(&case["log_loss"]));
        match case["roc_auc"].as_f64() {
            Some(auc) => close(name, "ROC AUC", m.roc_auc.expect("an AUC"), auc),
            None => assert_eq!(m.roc_auc, None, "{name}"),
        }
        for (k, class) in m.per_class.iter().enumerate() {
            close(name, "precision", class.precision, f(&case["precision"][k]));
            close(name, "recall", class.recall, f(&case["recall"][k]));
            close(name, "f1", class.f1, f(&case["f1"][k]));
            assert_eq!(class.support, case["support"][k].as_u64().expect("support"), "{name}");
        }
    }
}

#[test]
fn a_class_absent_from_the_truth_is_left_out_of_roc_auc_and_named() {
    let cases = cases();
    let case = &cases["classification"].as_array().expect("cases")[2];
    assert_eq!(case["name"], "a class absent from the truth");
    let truth: Vec<usize> =
        case["truth"].as_array().expect("truth").iter().map(|v| v.as_u64().expect("class") as usize).collect();
    let p: Vec<Vec<f64>> = case["probabilities"]
        .as_array()
        .expect("rows")
        .iter()
        .map(|r| r.as_array().expect("row").iter().map(f).collect())
        .collect();
    let m = classification(&["c0".into(), "c1".into(), "c2".into()], &truth, &p);
    assert_eq!(m.roc_auc_skipped, ["c2"]);
}

#[test]
fn regression_metrics_equal_scikit_learns() {
    let cases = cases();
    for case in cases["regression"].as_array().expect("cases") {
        let name = case["name"].as_str().expect("name");
        let get = |key: &str| -> Vec<f64> { case[key].as_array().expect("numbers").iter().map(f).collect() };
        let m = regression(&get("truth"), &get("predicted"));
        close(name, "RMSE", m.rmse, f(&case["rmse"]));
        close(name, "MAE", m.mae, f(&case["mae"]));
        close(name, "R²", m.r2, f(&case["r2"]));
    }
}

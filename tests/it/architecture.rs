//! The invariants of ARCHITECTURE.md that the dependency graph can show, checked with
//! `cargo tree` on the lockfile (no network): what each crate links, and what it must not.

use std::collections::BTreeSet;
use std::process::Command;

use crate::common::repo;

/// The packages a workspace crate links (normal dependencies, this platform).
fn linked(package: &str) -> BTreeSet<String> {
    let out = Command::new(env!("CARGO"))
        .current_dir(repo())
        .args(["tree", "--locked", "--offline", "-e", "normal", "--prefix", "none", "-p", package])
        .output()
        .expect("cargo tree runs");
    assert!(out.status.success(), "cargo tree -p {package}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| l.split_whitespace().next())
        .map(str::to_string)
        .collect()
}

fn assert_links_none(package: &str, forbidden: &[&str], why: &str) {
    let deps = linked(package);
    let found: Vec<&&str> = forbidden.iter().filter(|f| deps.contains(**f)).collect();
    assert!(found.is_empty(), "{package} links {found:?}: {why}");
}

#[test]
fn each_function_links_only_what_it_uses() {
    assert_links_none(
        "predict",
        &[
            "parquet",
            "arrow-array",
            "datasketches",
            "mlops-flows",
            "mlops-formats",
            "mlops-drift",
            "mlops-train",
            "forust-ml",
        ],
        "predict scores rows; it writes no Parquet and reads no profile",
    );
    for function in ["ingest", "drift-check"] {
        assert_links_none(
            function,
            &["tract-onnx", "tract-core", "mlops-model", "mlops-train"],
            "only predict runs models",
        );
    }
    for function in ["predict", "ingest", "drift-check", "retrain", "deploy-hooks"] {
        assert_links_none(function, &["mlops-devkit", "s3s", "s3s-fs"], "only the dev kit knows it is local");
    }
    assert_links_none(
        "deploy-hooks",
        &["tract-onnx", "mlops-model", "predict", "parquet"],
        "the hooks check predict through Lambda, as CodeDeploy deploys it, and score nothing themselves",
    );
    assert!(linked("drift-check").contains("mlops-metrics"), "model quality computes metrics with the evaluation code");
    assert!(linked("predict").contains("mlops-emf"), "predict writes its metrics through mlops-emf");
    assert_links_none(
        "retrain",
        &["lambda_http", "axum", "aws-sdk-sfn"],
        "the step function serves no HTTP and calls no Step Functions",
    );
}

#[test]
fn the_domain_crates_have_no_io_and_know_no_lambda() {
    let io = ["aws-sdk-s3", "aws-config", "tokio", "lambda_runtime", "lambda_http", "aws_lambda_events"];
    for domain in
        ["mlops-contract", "mlops-drift", "mlops-model", "mlops-formats", "mlops-train", "mlops-metrics", "mlops-emf"]
    {
        assert_links_none(domain, &io, "the domain and format crates do no AWS or async I/O");
    }
    for library in ["mlops-lake", "mlops-flows", "mlops-pipeline"] {
        assert_links_none(
            library,
            &["lambda_runtime", "lambda_http", "aws_lambda_events"],
            "only function crates know event JSON",
        );
    }
}

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
    for function in ["predict", "ingest", "drift-check", "retrain", "deploy-hooks", "score"] {
        assert_links_none(function, &["mlops-devkit", "s3s", "s3s-fs"], "only the dev kit knows it is local");
    }
    assert_links_none(
        "deploy-hooks",
        &["tract-onnx", "mlops-model", "predict", "parquet"],
        "the hooks check predict through Lambda, as CodeDeploy deploys it, and score nothing themselves",
    );
    assert_links_none(
        "score",
        &["mlops-train", "forust-ml", "mlops-flows", "lambda_http", "axum"],
        "score runs the shared scorer over the lake: it trains nothing and serves no HTTP",
    );
    assert!(linked("score").contains("mlops-model"), "score scores with the one scorer");
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

/// The Rust sources of the workspace's crates, functions and CLI (not the tests).
fn sources() -> Vec<(std::path::PathBuf, String)> {
    fn walk(dir: &std::path::Path, out: &mut Vec<(std::path::PathBuf, String)>) {
        for entry in std::fs::read_dir(dir).expect("a source directory").flatten() {
            let path = entry.path();
            if path.is_dir() && !path.ends_with("tests") && !path.ends_with("benches") {
                walk(&path, out);
            } else if path.extension().is_some_and(|e| e == "rs") {
                out.push((path.clone(), std::fs::read_to_string(&path).expect("a readable source")));
            }
        }
    }
    let mut out = Vec::new();
    for top in ["crates", "functions", "src"] {
        walk(&repo().join(top), &mut out);
    }
    out
}

#[test]
fn every_server_the_project_runs_sets_tcp_nodelay() {
    // A listener is bound in one of the places that set TCP_NODELAY on what it accepts:
    // without it an answer written as headers and then a body waits about 40 ms for the
    // client's delayed ACK, and every S3 read from the embedded lake paid that at cold start.
    let mut binders = Vec::new();
    for (path, text) in sources() {
        if text.contains("TcpListener::bind(") {
            assert!(
                ["set_nodelay(true)", "listen::no_delay(", "predict::serve_on("].iter().any(|s| text.contains(s)),
                "{} binds a listener without TCP_NODELAY",
                path.display()
            );
            binders.push(path.strip_prefix(repo()).expect("in the repository").display().to_string());
        }
        for (i, _) in text.match_indices("axum::serve(") {
            let before = &text[..i];
            let function = &before[before.rfind("fn ").unwrap_or(0)..];
            assert!(
                function.contains("listen::bind(") || function.contains("tap_io("),
                "{} serves a listener that is not from listen::bind or tap_io",
                path.display()
            );
        }
    }
    binders.sort();
    assert!(binders.len() >= 3, "{binders:?}");
}

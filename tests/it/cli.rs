//! The `mlops` binary, configured only through the environment as a user would.

use std::process::Command;

use crate::common::{TestLake, example, repo};

fn mlops(t: &TestLake, args: &[&str]) -> std::process::Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_mlops"));
    command.current_dir(repo()).args(args).env_clear().env("PATH", std::env::var_os("PATH").unwrap_or_default());
    for (name, value) in t.server.env_vars() {
        command.env(name, value);
    }
    command.envs([("LAKE_BUCKET", "mlops-lake"), ("MODEL_NAME", "penguins"), ("MODEL_VERSION", "1")]);
    command.output().expect("mlops runs")
}

/// `mlops model register` of the example model, from the repository root.
const REGISTER_PENGUINS: [&str; 12] = [
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn register_then_invoke_predict_with_the_sample_event() {
    let t = TestLake::start().await;
    let register = REGISTER_PENGUINS;
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

#[test]
fn an_inferred_contract_curates_every_row_of_the_files_it_came_from() {
    for (file, rows) in [("examples/penguins/train.csv", 344), ("tests/fixtures/pandas/penguins.csv", 344)] {
        let dir = tempfile::tempdir().expect("temp dir");
        let contract = dir.path().join("contract.yaml");
        let inferred = Command::new(env!("CARGO_BIN_EXE_mlops"))
            .current_dir(repo())
            .args(["contract", "infer", "--dataset", "inferred", "--out"])
            .arg(&contract)
            .arg(file)
            .output()
            .expect("mlops runs");
        assert!(inferred.status.success(), "{file}: {}", String::from_utf8_lossy(&inferred.stderr));
        let text = std::fs::read_to_string(&contract).expect("contract written");
        assert!(text.starts_with("# Inferred by `mlops contract infer` from 344 rows"), "{text}");
        if file.contains("pandas") {
            // pandas' spellings: NA for a gap, 2007.0 for an int of a column with gaps.
            assert!(text.contains("null_values:\n  - NA\n") && text.contains("whole_floats: true"), "{text}");
            assert!(text.contains("- name: year\n  type: int\n  nullable: true"), "{text}");
            assert!(text.contains("event_time: observed_at"), "{text}");
        }
        let out = dir.path().join("out");
        let ingested = Command::new(env!("CARGO_BIN_EXE_mlops"))
            .current_dir(repo())
            .args(["ingest", "--contract"])
            .arg(&contract)
            .arg("--out")
            .arg(&out)
            .arg(file)
            .output()
            .expect("mlops runs");
        assert!(ingested.status.success(), "{file}: {}", String::from_utf8_lossy(&ingested.stderr));
        let manifests = walk(&out.join("manifests"));
        assert_eq!(manifests.len(), 1);
        let manifest: serde_json::Value =
            serde_json::from_slice(&std::fs::read(&manifests[0]).expect("manifest")).expect("JSON");
        assert_eq!(
            manifest["counts"],
            serde_json::json!({"rows_read": rows, "curated": rows, "quarantined": 0}),
            "{file} under\n{text}\n{}",
            String::from_utf8_lossy(&ingested.stdout)
        );
    }
}

#[test]
fn contract_infer_names_what_it_cannot_read() {
    let dir = tempfile::tempdir().expect("temp dir");
    let ragged = dir.path().join("ragged.csv");
    std::fs::write(&ragged, "a,b\n1,2\n3\n").expect("file");
    let output =
        Command::new(env!("CARGO_BIN_EXE_mlops")).args(["contract", "infer"]).arg(&ragged).output().expect("runs");
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("line 3 has 1 fields where the header has 2"), "{stderr}");
    let output = Command::new(env!("CARGO_BIN_EXE_mlops"))
        .args(["contract", "infer"])
        .arg(dir.path().join("missing.csv"))
        .output()
        .expect("runs");
    assert!(String::from_utf8_lossy(&output.stderr).contains("missing.csv"), "{output:?}");
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

/// A free port on 127.0.0.1 (bound, read, released).
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).map(|a| a.port()).expect("a free port")
}

/// One HTTP/1.1 request on a fresh connection; returns (status, body).
fn http(port: u16, method: &str, path: &str, body: &str) -> Option<(u16, String)> {
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect(("127.0.0.1", port)).ok()?;
    let request = format!(
        "{method} {path} HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(request.as_bytes()).ok()?;
    let mut response = String::new();
    stream.read_to_string(&mut response).ok()?;
    let status = response.split_whitespace().nth(1)?.parse().ok()?;
    let body = response.split_once("\r\n\r\n").map(|(_, b)| b.to_string()).unwrap_or_default();
    Some((status, body))
}

/// `mlops serve` on free ports in `dir`, with `args` and `env` besides; stopped when the
/// returned guard drops. Returns the guard, the lake's and predict's ports and the Step
/// Functions endpoint's.
fn serve(dir: &std::path::Path, args: &[&str], env: &[(&str, &str)]) -> (impl Drop, u16, u16, u16) {
    let (lake_port, predict_port, sfn_port) = (free_port(), free_port(), free_port());
    let mut serve = Command::new(env!("CARGO_BIN_EXE_mlops"))
        .current_dir(repo())
        .args(["serve", "--dir"])
        .arg(dir)
        .args(["--lake-port", &lake_port.to_string(), "--predict-port", &predict_port.to_string(), "--poll-ms", "100"])
        .args(["--events-port", &free_port().to_string(), "--sfn-port", &sfn_port.to_string()])
        // Each server its own capture endpoint: tests run side by side.
        .args(["--firehose-port", &free_port().to_string()])
        .args(args)
        .env_clear()
        .envs(env.iter().copied())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("mlops serve starts");
    let stop = scopeguard(move || {
        let _ = serve.kill();
        let _ = serve.wait();
    });
    (stop, lake_port, predict_port, sfn_port)
}

/// Waits up to `tenths` tenths of a second for `ready`.
fn wait_for(what: &str, tenths: u32, ready: &dyn Fn() -> bool) {
    for _ in 0..tenths {
        if ready() {
            return;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    panic!("timed out waiting for {what}");
}

#[test]
fn serve_runs_predict_and_ingests_objects_dropped_into_raw() {
    let dir = tempfile::tempdir().expect("temp dir");
    let (stop, lake_port, predict_port, _) = serve(dir.path(), &[], &[]);
    let wait_for = |what: &str, ready: &dyn Fn() -> bool| wait_for(what, 300, ready);
    wait_for("predict", &|| http(predict_port, "GET", "/model", "").is_some());
    // Before the model is registered, predict says so.
    assert_eq!(http(predict_port, "GET", "/model", "").map(|r| r.0), Some(503));

    let endpoint = format!("http://127.0.0.1:{lake_port}");
    let register = Command::new(env!("CARGO_BIN_EXE_mlops"))
        .current_dir(repo())
        .args(["model", "register", "--name", "penguins", "--model", "examples/penguins/model.onnx"])
        .args(["--contract", "examples/penguins/contract.yaml", "--train", "examples/penguins/train.csv"])
        .args(["--class-labels", "Adelie,Chinstrap,Gentoo"])
        .env_clear()
        .envs([
            ("AWS_ENDPOINT_URL_S3", endpoint.as_str()),
            ("AWS_ACCESS_KEY_ID", "mlops-local"),
            ("AWS_SECRET_ACCESS_KEY", "mlops-local-secret"),
            ("AWS_REGION", "us-east-1"),
            ("LAKE_BUCKET", "mlops-lake"),
        ])
        .output()
        .expect("register runs");
    assert!(register.status.success(), "{}", String::from_utf8_lossy(&register.stderr));

    let body = r#"{"instance": {"island": "Biscoe", "bill_length_mm": 50.0, "bill_depth_mm": 15.2, "flipper_length_mm": 218, "body_mass_g": 5700, "sex": "male"}}"#;
    let (status, answer) = http(predict_port, "POST", "/predict", body).expect("predict answers");
    assert_eq!(status, 200, "{answer}");
    assert!(answer.contains("Gentoo"), "{answer}");

    // An object copied into the lake's directory, as `cp` or a sync tool would put it.
    let raw = dir.path().join("mlops-lake/raw/penguins");
    std::fs::create_dir_all(&raw).expect("raw dir");
    std::fs::copy(example("batches/batch-02.csv"), raw.join("batch-02.csv")).expect("copy");
    let manifests = dir.path().join("mlops-lake/manifests/penguins");
    wait_for("the batch manifest", &|| !walk(&manifests).is_empty());
    let manifest: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&walk(&manifests)[0]).expect("manifest")).expect("JSON");
    assert_eq!(manifest["counts"], serde_json::json!({"rows_read": 306, "curated": 300, "quarantined": 6}));
    for prefix in ["curated", "quarantine", "profiles"] {
        assert_eq!(walk(&dir.path().join("mlops-lake").join(prefix)).len(), 1, "{prefix}");
    }
    drop(stop);
}

#[test]
fn serve_retrains_on_drift_and_serves_the_approved_version() {
    let dir = tempfile::tempdir().expect("temp dir");
    // drift-check compares the last batch alone with the baseline.
    let (stop, lake_port, predict_port, sfn_port) =
        serve(dir.path(), &["--drift-every-s", "1", "--approval", "required"], &[("DRIFT_WINDOW_BATCHES", "1")]);
    let wait_for = |what: &str, ready: &dyn Fn() -> bool| wait_for(what, 1200, ready);
    wait_for("predict", &|| http(predict_port, "GET", "/model", "").is_some());
    let endpoint = format!("http://127.0.0.1:{lake_port}");
    let sfn = format!("http://127.0.0.1:{sfn_port}");
    let cli = |args: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_mlops"))
            .current_dir(repo())
            .args(args)
            .env_clear()
            .envs([
                ("AWS_ENDPOINT_URL_S3", endpoint.as_str()),
                ("AWS_ENDPOINT_URL_SFN", sfn.as_str()),
                ("AWS_ACCESS_KEY_ID", "mlops-local"),
                ("AWS_SECRET_ACCESS_KEY", "mlops-local-secret"),
                ("AWS_REGION", "us-east-1"),
                ("LAKE_BUCKET", "mlops-lake"),
            ])
            .output()
            .expect("mlops runs")
    };
    let register = cli(&REGISTER_PENGUINS);
    assert!(register.status.success(), "{}", String::from_utf8_lossy(&register.stderr));
    let version = || {
        http(predict_port, "GET", "/model", "")
            .and_then(|(_, body)| serde_json::from_str::<serde_json::Value>(&body).ok())
            .and_then(|m| m["version"].as_u64())
    };
    wait_for("v1 serving", &|| version() == Some(1));

    // Two ordinary batches, then the shifted one: drift-check finds drift in the last batch
    // and DriftDetected starts a run, which registers v2 and waits for a person.
    let raw = dir.path().join("mlops-lake/raw/penguins");
    std::fs::create_dir_all(&raw).expect("raw dir");
    let manifests = dir.path().join("mlops-lake/manifests/penguins");
    for (i, batch) in ["batch-01.csv", "batch-02.csv", "batch-03-shifted.csv"].into_iter().enumerate() {
        std::fs::copy(example(&format!("batches/{batch}")), raw.join(batch)).expect("copy");
        wait_for("the batch manifest", &|| walk(&manifests).len() > i);
    }
    let request = dir.path().join("mlops-lake/pipelines/penguins/approvals/v2.json");
    wait_for("the approval request", &|| request.exists());
    assert_eq!(version(), Some(1), "nothing is deployed before the approval");

    let approve = cli(&["model", "approve", "penguins@2", "--reason", "holdout looks right", "--by", "reviewer"]);
    let said = String::from_utf8_lossy(&approve.stdout).to_string();
    assert!(approve.status.success(), "{said}{}", String::from_utf8_lossy(&approve.stderr));
    assert!(said.contains("sent the decision to retraining run"), "{said}");
    wait_for("v2 serving", &|| version() == Some(2));

    let runs = cli(&["pipeline", "list", "--model", "penguins"]);
    let listed = String::from_utf8_lossy(&runs.stdout).to_string();
    assert!(runs.status.success(), "{}", String::from_utf8_lossy(&runs.stderr));
    assert!(listed.lines().any(|l| l.contains("drift") && l.contains("promoted") && l.contains("v2")), "{listed}");
    drop(stop);
}

/// Runs `f` when dropped, so a failing assertion still stops the server.
fn scopeguard(f: impl FnOnce()) -> impl Drop {
    struct Guard<F: FnOnce()>(Option<F>);
    impl<F: FnOnce()> Drop for Guard<F> {
        fn drop(&mut self) {
            if let Some(f) = self.0.take() {
                f();
            }
        }
    }
    Guard(Some(f))
}

#[test]
fn drift_compares_local_files_and_writes_json_and_html() {
    let out = tempfile::tempdir().expect("temp dir");
    let (json, html) = (out.path().join("r.json"), out.path().join("r.html"));
    let run = Command::new(env!("CARGO_BIN_EXE_mlops"))
        .current_dir(repo())
        .args(["drift", "--contract", "examples/penguins/contract.yaml", "--reference", "examples/penguins/train.csv"])
        .args(["--current", "examples/penguins/batches/batch-03-shifted.csv", "--json"])
        .arg(&json)
        .arg("--html")
        .arg(&html)
        .output()
        .expect("mlops runs");
    assert!(run.status.success(), "{}", String::from_utf8_lossy(&run.stderr));
    let report: serde_json::Value = serde_json::from_slice(&std::fs::read(&json).expect("json")).expect("JSON");
    assert_eq!(report["dataset_drift"], true);
    let drifted: Vec<&str> = report["columns"]
        .as_array()
        .expect("columns")
        .iter()
        .filter(|c| c["drifted"] == true)
        .filter_map(|c| c["column"].as_str())
        .collect();
    assert_eq!(drifted, ["bill_length_mm", "flipper_length_mm", "body_mass_g"]);
    assert_eq!(report["columns"][1]["method"], "ks", "a reference of 344 rows gets KS");
    let page = std::fs::read_to_string(&html).expect("html");
    assert!(page.contains("Dataset drift detected") && page.matches("<svg").count() == 6, "one chart per feature");
    assert!(!page.contains("<script") && !page.contains("http://") && !page.contains("https://"), "self-contained");

    let bad = Command::new(env!("CARGO_BIN_EXE_mlops"))
        .current_dir(repo())
        .args(["drift", "--contract", "examples/penguins/contract.yaml", "--reference", "examples/penguins/train.csv"])
        .args(["--current", "examples/penguins/batches/batch-01.csv", "--method", "bill_length_mm=median"])
        .output()
        .expect("mlops runs");
    assert!(!bad.status.success());
    let stderr = String::from_utf8_lossy(&bad.stderr);
    assert!(
        stderr.contains("\"median\" is not a method; use one of ks, chisquare, z, psi, jensenshannon, wasserstein"),
        "{stderr}"
    );
}

#[test]
fn every_command_fails_clearly_without_a_lake_or_with_a_bad_setting() {
    let run = |args: &[&str], env: &[(&str, &str)]| {
        let mut command = Command::new(env!("CARGO_BIN_EXE_mlops"));
        command.current_dir(repo()).args(args).env_clear().env("PATH", std::env::var_os("PATH").unwrap_or_default());
        command.envs(env.iter().copied());
        command.output().expect("mlops runs")
    };
    // No endpoint and no region: a clear refusal instead of the SDK probing instance metadata.
    let out = run(&["model", "list", "--name", "penguins"], &[]);
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("no lake is configured") && stderr.contains("mlops lake serve"), "{stderr}");
    assert!(!stderr.contains("WARN") && !stderr.contains("IMDS"), "{stderr}");
    // A local endpoint with nothing listening: the hint names it, and no SDK debug dump follows.
    let dead = [
        ("AWS_ENDPOINT_URL_S3", "http://127.0.0.1:9"),
        ("AWS_ACCESS_KEY_ID", "k"),
        ("AWS_SECRET_ACCESS_KEY", "s"),
        ("AWS_REGION", "us-east-1"),
    ];
    let out = run(&["model", "list", "--name", "penguins"], &dead);
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("is the lake running? AWS_ENDPOINT_URL_S3=http://127.0.0.1:9"), "{stderr}");
    assert!(stderr.contains("Connection refused") && !stderr.contains("DispatchFailure {"), "{stderr}");
    for args in [&["pipeline", "run", "retrain", "--sfn-port", "0"][..], &["pipeline", "list"]] {
        let out = run(args, &dead);
        assert!(!out.status.success(), "{args:?}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains("is the lake running?"), "{args:?}: {stderr}");
    }
    // mlops serve reads the functions' settings at start and refuses a bad one before serving.
    let out = run(&["serve", "--dir", "/nonexistent/never-created"], &[("PREDICT_MAX_INSTANCES", "lots")]);
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("environment variable PREDICT_MAX_INSTANCES=\"lots\" is not a valid usize"), "{stderr}");
}

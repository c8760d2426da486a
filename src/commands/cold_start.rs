//! `mlops cold-start`: how long a function binary takes from process start to its first
//! answer, and how much memory it holds, run as Lambda runs it — through the Runtime API,
//! with the model loaded from the (embedded) lake.

use std::path::PathBuf;
use std::process::Stdio;
use std::time::{Duration, Instant};

use anyhow::Context as _;

use clap::Args;
use mlops_devkit::lake_server::{EmbeddedLake, ensure_bucket};
use mlops_devkit::runtime_api::{Outcome, RuntimeApi};

use super::model::{RegisterArgs, register};

/// Measure predict's cold start and peak memory as Lambda runs it.
///
/// Starts the binary against an emulated
/// Runtime API and an embedded lake holding the example model, time process start → first
/// response, and read its peak memory. Repeated --runs times.
#[derive(Debug, Clone, Args)]
pub struct ColdStartArgs {
    /// The predict binary (build it with `cargo build --release -p predict`).
    #[arg(long, default_value = "target/release/predict")]
    pub binary: PathBuf,
    /// The example directory (model.onnx, contract.yaml, train.csv).
    #[arg(long, default_value = "examples/penguins")]
    pub example: PathBuf,
    #[arg(long, default_value_t = 20)]
    pub runs: usize,
    /// The API Gateway event to send.
    #[arg(long, default_value = "events/api-predict.json")]
    pub event: PathBuf,
    /// Write every run as JSON here.
    #[arg(long)]
    pub json: Option<PathBuf>,
    /// Also serve an A/B challenger (AB_MODEL_VERSION): both versions load at cold start.
    #[arg(long)]
    pub ab: bool,
}

impl ColdStartArgs {
    pub async fn run(self) -> anyhow::Result<()> {
        let event =
            std::fs::read_to_string(&self.event).with_context(|| format!("reading {}", self.event.display()))?;
        let options =
            ColdStartOptions { binary: self.binary, example: self.example, runs: self.runs.max(1), ab: self.ab };
        let results = measure(&options, &event).await?;
        println!("{}", summary(&results));
        if let Some(path) = self.json {
            std::fs::write(&path, serde_json::to_vec_pretty(&results)?)
                .with_context(|| format!("writing {}", path.display()))?;
        }
        Ok(())
    }
}

/// What to measure.
#[derive(Debug, Clone)]
pub struct ColdStartOptions {
    /// The predict binary (e.g. `target/release/predict`).
    pub binary: PathBuf,
    /// The example directory holding model.onnx, contract.yaml and train.csv.
    pub example: PathBuf,
    pub runs: usize,
    /// Serve an A/B challenger too (a second version), loaded at cold start beside the champion.
    pub ab: bool,
}

/// One cold start.
#[derive(Debug, Clone, Copy, serde::Serialize)]
pub struct ColdStart {
    /// Process start to the first response received by the Runtime API.
    pub first_response_ms: f64,
    /// Peak resident memory of the process after that response (`VmHWM`).
    pub peak_rss_mb: f64,
    /// Where the time went, from the `predict::init` log line (absent if the binary logs none).
    pub breakdown: Option<Breakdown>,
}

/// A cold start in phases, in milliseconds; they add up to `first_response_ms`.
#[derive(Debug, Clone, Copy, Default, serde::Serialize, serde::Deserialize)]
pub struct Breakdown {
    /// `spawn` to `main`: exec, the dynamic loader, the Tokio runtime.
    pub process_ms: f64,
    /// Reading and checking the environment.
    pub config_ms: f64,
    /// Building the S3 client (aws-config: region, credentials, endpoint).
    pub client_ms: f64,
    /// Loading every served version, concurrently: `read_ms` and `build_ms` are the champion's.
    pub load_ms: f64,
    pub read_ms: f64,
    pub build_ms: f64,
    /// Starting data capture, when configured.
    pub capture_ms: f64,
    /// The end of init to the first response: the runtime's first `next`, the handler, the
    /// response posted.
    pub first_invoke_ms: f64,
}

impl Breakdown {
    /// The phases from predict's `predict::init` JSON log line, given when it was spawned and
    /// how long it took to answer.
    fn from_log(line: &str, spawned_at: std::time::SystemTime, first_response_ms: f64) -> Option<Breakdown> {
        let value: serde_json::Value = serde_json::from_str(line).ok()?;
        let fields = value.get("fields")?;
        if fields.get("message")?.as_str()? != "initialised" {
            return None;
        }
        let f = |name: &str| fields.get(name).and_then(serde_json::Value::as_f64);
        let spawned_us = spawned_at.duration_since(std::time::UNIX_EPOCH).ok()?.as_micros() as f64;
        let process_ms = (f("main_at_unix_us")? - spawned_us) / 1e3;
        let init_ms = f("init_ms")?;
        Some(Breakdown {
            process_ms,
            config_ms: f("config_ms")?,
            client_ms: f("client_ms")?,
            load_ms: f("load_ms")?,
            read_ms: f("read_ms")?,
            build_ms: f("build_ms")?,
            capture_ms: f("capture_ms")?,
            first_invoke_ms: first_response_ms - process_ms - init_ms,
        })
    }
}

/// Runs predict `runs` times from a cold process, each answering `events/api-predict.json`.
pub async fn measure(options: &ColdStartOptions, event: &str) -> anyhow::Result<Vec<ColdStart>> {
    let dir = tempfile::tempdir()?;
    let server = EmbeddedLake::start(dir.path(), 0).await?;
    let client = server.client();
    ensure_bucket(&client, crate::DEFAULT_BUCKET).await?;
    let lake = mlops_lake::Lake::new(client, crate::DEFAULT_BUCKET);
    let example = |f: &str| options.example.join(f);
    let manifest = register(
        &lake,
        &RegisterArgs {
            name: "penguins".into(),
            model: example("model.onnx"),
            contract: example("contract.yaml"),
            train: example("train.csv"),
            metrics: None,
            class_labels: Some(vec!["Adelie".into(), "Chinstrap".into(), "Gentoo".into()]),
            lineage: Default::default(),
        },
    )
    .await?;
    let version = manifest.version.to_string();
    // The challenger: the example's model again, registered on another baseline (the first
    // batch) so that it is a version of its own, loaded and checked like any other.
    let challenger = if options.ab {
        let batch = options.example.join("batches/batch-01.csv");
        let v = register(
            &lake,
            &RegisterArgs {
                name: "penguins".into(),
                model: example("model.onnx"),
                contract: example("contract.yaml"),
                train: batch,
                metrics: None,
                class_labels: Some(vec!["Adelie".into(), "Chinstrap".into(), "Gentoo".into()]),
                lineage: Default::default(),
            },
        )
        .await?;
        Some(v.version.to_string())
    } else {
        None
    };
    let ab_env: Vec<(&str, String)> =
        challenger.iter().flat_map(|v| [("AB_MODEL_VERSION", v.clone()), ("AB_WEIGHT", "0.5".to_string())]).collect();
    let mut runs = Vec::with_capacity(options.runs);
    for _ in 0..options.runs {
        let api = RuntimeApi::start().await?;
        let spawned_at = std::time::SystemTime::now();
        let started = Instant::now();
        let mut child = tokio::process::Command::new(&options.binary)
            .env_clear()
            .envs(api.lambda_env("predict"))
            .envs(server.env_vars())
            .envs([("LAKE_BUCKET", crate::DEFAULT_BUCKET), ("MODEL_NAME", "penguins"), ("MODEL_VERSION", &version)])
            .envs(ab_env.iter().map(|(k, v)| (*k, v.as_str())))
            // Only the init line, as JSON: what the breakdown reads.
            .env("RUST_LOG", "error,predict::init=info")
            .env("AWS_LAMBDA_LOG_FORMAT", "JSON")
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .with_context(|| format!("starting {}", options.binary.display()))?;
        let stdout = child.stdout.take().context("the process's output")?;
        // The whole output is read until the process ends, so that its writes never fail.
        let init_line = tokio::spawn(async move {
            use tokio::io::AsyncBufReadExt;
            let mut lines = tokio::io::BufReader::new(stdout).lines();
            let mut init = None;
            while let Ok(Some(line)) = lines.next_line().await {
                if init.is_none() && line.contains("\"initialised\"") {
                    init = Some(line);
                }
            }
            init
        });
        let outcome = tokio::time::timeout(Duration::from_secs(30), api.invoke(event)).await??;
        let elapsed = started.elapsed();
        if let Outcome::Error(e) = outcome {
            anyhow::bail!("predict failed: {} {}", e.error_type, e.error_message);
        }
        let pid = child.id().context("the process has exited")?;
        let peak =
            super::invoke::peak_rss_in(&format!("/proc/{pid}/status")).context("reading the process's peak memory")?;
        child.kill().await?;
        let first_response_ms = elapsed.as_secs_f64() * 1e3;
        let breakdown = match tokio::time::timeout(Duration::from_secs(5), init_line).await {
            Ok(Ok(Some(line))) => Breakdown::from_log(&line, spawned_at, first_response_ms),
            _ => None,
        };
        runs.push(ColdStart { first_response_ms, peak_rss_mb: peak as f64 / 1048576.0, breakdown });
    }
    Ok(runs)
}

/// The median and the largest of the runs, as a table row.
pub fn summary(runs: &[ColdStart]) -> String {
    let mut t: Vec<f64> = runs.iter().map(|r| r.first_response_ms).collect();
    let mut m: Vec<f64> = runs.iter().map(|r| r.peak_rss_mb).collect();
    t.sort_by(f64::total_cmp);
    m.sort_by(f64::total_cmp);
    let median = |v: &[f64]| v.get(v.len() / 2).copied().unwrap_or(f64::NAN);
    let max = |v: &[f64]| v.last().copied().unwrap_or(f64::NAN);
    let mut out = format!(
        "{} runs: process start → first response median {:.1} ms (min {:.1}, max {:.1}); peak RSS median {:.1} MB (max {:.1})",
        runs.len(),
        median(&t),
        t.first().copied().unwrap_or(f64::NAN),
        max(&t),
        median(&m),
        max(&m)
    );
    let breakdowns: Vec<Breakdown> = runs.iter().filter_map(|r| r.breakdown).collect();
    if !breakdowns.is_empty() {
        let phase = |f: fn(&Breakdown) -> f64| {
            let mut v: Vec<f64> = breakdowns.iter().map(f).collect();
            v.sort_by(f64::total_cmp);
            median(&v)
        };
        out.push_str(&format!(
            "\nmedian per phase over {} runs: process start {:.1} ms, config {:.2} ms, S3 client {:.1} ms, \
             load {:.1} ms (reads {:.1} ms, model build {:.1} ms), capture {:.2} ms, first invocation {:.1} ms",
            breakdowns.len(),
            phase(|b| b.process_ms),
            phase(|b| b.config_ms),
            phase(|b| b.client_ms),
            phase(|b| b.load_ms),
            phase(|b| b.read_ms),
            phase(|b| b.build_ms),
            phase(|b| b.capture_ms),
            phase(|b| b.first_invoke_ms),
        ));
    }
    out
}

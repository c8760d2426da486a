//! The `mlops` command line.

use std::path::PathBuf;

use anyhow::Context as _;
use clap::{Parser, Subcommand};
use mlops::invoke::Function;
use mlops::lake_server::{EmbeddedLake, ensure_bucket};
use mlops::register::RegisterArgs;
use mlops_core::Lake;
use mlops_core::config::process_env;

/// Serverless MLOps, locally: an embedded S3 lake, the model registry, and the Lambda
/// handlers run in-process.
#[derive(Debug, Parser)]
#[command(name = "mlops", version, about, long_about = None)]
struct Cli {
    /// The lake bucket.
    #[arg(long, global = true, env = "LAKE_BUCKET", default_value = mlops::DEFAULT_BUCKET)]
    bucket: String,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Work with the lake.
    Lake {
        #[command(subcommand)]
        command: LakeCommand,
    },
    /// Work with the model registry (in the lake that AWS_ENDPOINT_URL_S3 or AWS points to).
    Model {
        #[command(subcommand)]
        command: ModelCommand,
    },
    /// Run the whole stack locally until Ctrl-C: the embedded lake, predict on a port, ingest
    /// on every object that appears under raw/ (as the bucket notification would), and
    /// drift-check on a schedule. No AWS account needed.
    Serve {
        /// Directory holding the lake (one sub-directory per bucket).
        #[arg(long, default_value = "lake")]
        dir: PathBuf,
        /// Port of the S3 endpoint.
        #[arg(long, default_value_t = 9000)]
        lake_port: u16,
        /// Port of predict (POST /predict, GET /model).
        #[arg(long, default_value_t = 8080)]
        predict_port: u16,
        /// Port of the local EventBridge endpoint that receives DriftDetected events.
        #[arg(long, default_value_t = 9001)]
        events_port: u16,
        /// The model version to serve and watch, as NAME@VERSION.
        #[arg(long, default_value = "penguins@1")]
        model: String,
        /// How often raw/ is listed for new objects, in milliseconds.
        #[arg(long, default_value_t = 1000)]
        poll_ms: u64,
        /// Run drift-check every this many seconds (off unless set).
        #[arg(long)]
        drift_every_s: Option<u64>,
    },
    /// Measure predict's cold start as Lambda runs it: start the binary against an emulated
    /// Runtime API and an embedded lake holding the example model, time process start →
    /// first response, and read its peak memory. Repeated --runs times.
    ColdStart {
        /// The predict binary (build it with `cargo build --release -p predict`).
        #[arg(long, default_value = "target/release/predict")]
        binary: PathBuf,
        /// The example directory (model.onnx, contract.yaml, train.csv).
        #[arg(long, default_value = "examples/penguins")]
        example: PathBuf,
        #[arg(long, default_value_t = 20)]
        runs: usize,
        /// The API Gateway event to send.
        #[arg(long, default_value = "events/api-predict.json")]
        event: PathBuf,
        /// Write every run as JSON here.
        #[arg(long)]
        json: Option<PathBuf>,
    },
    /// Run one event through a function's handler in-process, like `sam local invoke`
    /// without Docker. Reads LAKE_BUCKET, MODEL_NAME, MODEL_VERSION and the DRIFT_*
    /// variables as the deployed function does.
    Invoke {
        /// The function to run.
        #[arg(value_enum)]
        function: Function,
        /// A JSON event file, e.g. events/api-predict.json.
        #[arg(long)]
        event: PathBuf,
    },
    /// Run the ingest pipeline on local CSV or JSON Lines files (optionally .gz): curated rows,
    /// quarantined rows with reasons, a profile and a manifest per file, written under --out
    /// with the lake's key layout. For trying a contract before deploying it.
    Ingest {
        /// The data contract (YAML).
        #[arg(long)]
        contract: PathBuf,
        /// A baseline profile (e.g. a model version's baseline.json) for the histogram bins.
        #[arg(long)]
        baseline: Option<PathBuf>,
        /// Directory for the outputs.
        #[arg(long)]
        out: PathBuf,
        /// Batch files to ingest.
        #[arg(required = true)]
        files: Vec<PathBuf>,
    },
    /// Test drift between a reference file and current files (CSV or JSON Lines, optionally
    /// .gz) read against a contract: each feature with the method the field's defaults pick
    /// (Evidently's: KS or chi-square/z on a reference of up to 1000 rows, normalised
    /// Wasserstein or Jensen-Shannon beyond), then the dataset verdict. Exits 0 either way;
    /// the report's `dataset_drift` says which.
    Drift {
        /// The data contract (YAML); its `features` are tested.
        #[arg(long)]
        contract: PathBuf,
        /// The reference: rows (.csv, .jsonl, optionally .gz) such as the training set, or a
        /// profile (.json) such as a model version's baseline.json.
        #[arg(long)]
        reference: PathBuf,
        /// The current data: one or more batches of rows or profiles (.json, as ingest writes
        /// them under profiles/), taken together. Profiles are merged.
        #[arg(long, required = true, num_args = 1..)]
        current: Vec<PathBuf>,
        /// Write the report as JSON here.
        #[arg(long)]
        json: Option<PathBuf>,
        /// Write the report as a self-contained HTML page here.
        #[arg(long)]
        html: Option<PathBuf>,
        /// Share of drifted features at which the dataset has drifted.
        #[arg(long, default_value_t = 0.5)]
        drift_share: f64,
        /// Fewer non-missing values than this in either sample is "insufficient data".
        #[arg(long, default_value_t = 30)]
        min_rows: u64,
        /// Multiple-testing correction of the p-value tests: none, bonferroni or bh.
        #[arg(long, default_value = "none")]
        correction: String,
        /// Per-column method and threshold, e.g. --method body_mass_g=psi:0.2 (repeatable).
        /// Methods: ks, chisquare, z, psi, jensenshannon, wasserstein.
        #[arg(long = "method")]
        methods: Vec<String>,
    },
    /// Profile rows into a mergeable profile (JSON): per numeric column count, nulls, min, max,
    /// mean, variance, a KLL sketch and a histogram; per categorical column counts per label
    /// (a frequent-items sketch beyond 1000 labels). Without --baseline the profile is a
    /// baseline: its histogram edges are the deciles of its own values.
    Profile {
        /// The data contract (YAML).
        #[arg(long)]
        contract: PathBuf,
        /// Cut histograms at this profile's edges (e.g. a model version's baseline.json), so
        /// that the result merges with ingest's profiles.
        #[arg(long)]
        baseline: Option<PathBuf>,
        /// Where to write the profile.
        #[arg(long, short)]
        out: PathBuf,
        /// Rows: .csv or .jsonl, optionally .gz; taken together.
        #[arg(required = true, num_args = 1..)]
        files: Vec<PathBuf>,
    },
    /// Score a CSV or JSON Lines file with a model: one output record per input row, holding
    /// every model output by its ONNX name. A single-matrix model takes the CSV columns in
    /// order (JSON Lines: arrays); a model with named inputs takes them by column name.
    Score {
        /// An ONNX file, or name@version from the registry (e.g. penguins@1).
        #[arg(long)]
        model: String,
        /// Rows to score: .csv (with a header) or .jsonl.
        #[arg(long)]
        input: PathBuf,
        /// Where to write the records: .jsonl or .csv.
        #[arg(long)]
        output: PathBuf,
        /// Rows per model run.
        #[arg(long, default_value_t = 1024)]
        batch_size: usize,
    },
    /// Run the whole loop on the penguins example in a temporary embedded lake.
    Demo {
        /// Keep the lake in this directory instead of a temporary one.
        #[arg(long)]
        keep: Option<PathBuf>,
    },
}

#[derive(Debug, Subcommand)]
enum LakeCommand {
    /// Serve a directory as an S3-compatible endpoint on 127.0.0.1 until interrupted.
    Serve {
        /// Directory holding the buckets (created if missing).
        #[arg(long)]
        dir: PathBuf,
        /// Port to listen on; 0 picks a free one.
        #[arg(long, default_value_t = 9000)]
        port: u16,
    },
}

#[derive(Debug, Subcommand)]
enum ModelCommand {
    /// Upload a model with its contract, a baseline computed from its training data and a
    /// manifest, as the next immutable version.
    Register {
        /// Model name, e.g. penguins.
        #[arg(long)]
        name: String,
        /// The ONNX file.
        #[arg(long)]
        model: PathBuf,
        /// The data contract (YAML).
        #[arg(long)]
        contract: PathBuf,
        /// The training data (CSV with a header) the baseline is computed from.
        #[arg(long)]
        train: PathBuf,
        /// Metrics to record in the manifest (a JSON file).
        #[arg(long)]
        metrics: Option<PathBuf>,
        /// Class names indexed by the model's integer labels, comma-separated.
        #[arg(long, value_delimiter = ',')]
        class_labels: Option<Vec<String>>,
    },
    /// List the registered versions of a model.
    List {
        #[arg(long)]
        name: String,
    },
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "warn".into()))
        .with_writer(std::io::stderr)
        .init();
    let cli = Cli::parse();
    match cli.command {
        Command::Lake { command: LakeCommand::Serve { dir, port } } => serve(&dir, port, &cli.bucket).await,
        Command::Model { command } => {
            let lake = Lake::new(mlops_core::storage::client_from_env().await, &cli.bucket);
            match command {
                ModelCommand::Register { name, model, contract, train, metrics, class_labels } => {
                    let args = RegisterArgs { name, model, contract, train, metrics, class_labels };
                    let manifest = mlops::register::register(&lake, &args).await?;
                    println!("{}", serde_json::to_string_pretty(&manifest)?);
                    eprintln!("registered {} v{} in s3://{}", manifest.name, manifest.version, cli.bucket);
                    Ok(())
                }
                ModelCommand::List { name } => {
                    for v in mlops_core::registry::versions(&lake, &name).await? {
                        println!("{name} v{v}");
                    }
                    Ok(())
                }
            }
        }
        Command::Serve { dir, lake_port, predict_port, events_port, model, poll_ms, drift_every_s } => {
            let (name, version) = model
                .split_once('@')
                .and_then(|(n, v)| Some((n.to_string(), v.trim_start_matches('v').parse::<u32>().ok()?)))
                .with_context(|| format!("--model {model:?} is not NAME@VERSION, e.g. penguins@1"))?;
            let options = mlops::serve::ServeOptions {
                dir,
                lake_port,
                predict_port,
                events_port,
                bucket: cli.bucket.clone(),
                model: name,
                version,
                poll: std::time::Duration::from_millis(poll_ms.max(50)),
                drift_every: drift_every_s.map(std::time::Duration::from_secs),
            };
            mlops::serve::serve(&options).await
        }
        Command::ColdStart { binary, example, runs, event, json } => {
            let event = std::fs::read_to_string(&event).with_context(|| format!("reading {}", event.display()))?;
            let options = mlops::cold_start::ColdStartOptions { binary, example, runs: runs.max(1) };
            let results = mlops::cold_start::measure(&options, &event).await?;
            println!("{}", mlops::cold_start::summary(&results));
            if let Some(path) = json {
                std::fs::write(&path, serde_json::to_vec_pretty(&results)?)?;
            }
            Ok(())
        }
        Command::Drift { contract, reference, current, json, html, drift_share, min_rows, correction, methods } => {
            let config = mlops_core::stats::TestConfig {
                drift_share,
                min_rows,
                correction: mlops::drift_local::parse_correction(&correction)?,
                ..Default::default()
            };
            let overrides =
                methods.iter().map(|m| mlops::drift_local::parse_override(m)).collect::<anyhow::Result<_>>()?;
            let args = mlops::drift_local::DriftArgs { contract, reference, current, json, html, config, overrides };
            mlops::drift_local::run(&args, &mut std::io::stdout())?;
            Ok(())
        }
        Command::Profile { contract, baseline, out, files } => {
            let contract = mlops_core::Contract::load(&contract)?;
            let baseline = match baseline {
                Some(path) => {
                    let bytes = std::fs::read(&path).with_context(|| format!("reading {}", path.display()))?;
                    Some(mlops_core::Profile::from_json(&bytes, &path.display().to_string())?)
                }
                None => None,
            };
            let clock = std::time::Instant::now();
            let (profile, rejected) = mlops::drift_local::profile_rows(&contract, &files, baseline.as_ref())?;
            std::fs::write(&out, profile.to_json()).with_context(|| format!("writing {}", out.display()))?;
            println!(
                "profile: {} rows of {} ({} rejected by the contract), {} columns, {:.2} s → {}",
                profile.rows,
                contract.dataset,
                rejected,
                profile.columns.len(),
                clock.elapsed().as_secs_f64(),
                out.display()
            );
            Ok(())
        }
        Command::Invoke { function, event } => {
            let text = std::fs::read_to_string(&event).with_context(|| format!("reading {}", event.display()))?;
            let clock = std::time::Instant::now();
            let lake = Lake::new(mlops_core::storage::client_from_env().await, &cli.bucket);
            let response = mlops::invoke::invoke(&lake, function, &text, &process_env()).await;
            eprintln!("{}", mlops::invoke::report_line(clock.elapsed()));
            println!("{}", serde_json::to_string_pretty(&response?)?);
            Ok(())
        }
        Command::Ingest { contract, baseline, out, files } => {
            let args = mlops::ingest_local::LocalIngest { contract, baseline, files, out };
            mlops::ingest_local::ingest_files(&args, &mut std::io::stdout())?;
            Ok(())
        }
        Command::Score { model, input, output, batch_size } => {
            let bucket = cli.bucket.clone();
            let scorer = mlops::score::Scorer::load(&model, async || {
                Lake::new(mlops_core::storage::client_from_env().await, &bucket)
            })
            .await?;
            let args = mlops::score::ScoreArgs { model, input, output, batch_size };
            let summary = tokio::task::block_in_place(|| mlops::score::score_file(&scorer, &args))?;
            eprintln!(
                "scored {} of {} rows into {} ({} failed)",
                summary.scored,
                summary.rows,
                args.output.display(),
                summary.failed
            );
            Ok(())
        }
        Command::Demo { keep } => {
            let options = mlops::demo::DemoOptions { keep, ..mlops::demo::DemoOptions::from_repository() };
            let mut stdout = std::io::stdout();
            mlops::demo::run(&options, &mut stdout).await?;
            Ok(())
        }
    }
}

async fn serve(dir: &std::path::Path, port: u16, bucket: &str) -> anyhow::Result<()> {
    let server = EmbeddedLake::start(dir, port).await?;
    ensure_bucket(&server.client(), bucket).await?;
    println!("Embedded S3 lake serving {} at {}", dir.display(), server.endpoint());
    println!("Bucket: {bucket}. Point the AWS SDKs, the CLI and the functions at it with:\n");
    for (name, value) in server.env_vars() {
        println!("  export {name}={value}");
    }
    println!("  export LAKE_BUCKET={bucket}");
    println!("\nPress Ctrl-C to stop.");
    tokio::signal::ctrl_c().await?;
    Ok(())
}

//! `mlops score`: batch scoring of a CSV or JSON Lines file, the offline deployment target.
//!
//! Rows are read against the model's contract exactly as ingest and predict read them (the
//! same validation and coercion: booleans, integers, nulls; columns by name, in any order),
//! then scored in chunks by the one scorer predict uses. A row that cannot be read or scored
//! gets a record with its error, so the output always has as many records as the input has
//! rows.

use std::fs::File;
use std::io::{BufWriter, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use anyhow::{Context as _, bail};
use clap::Args;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use mlops_contract::Contract;
use mlops_contract::validate::Value as Cell;
use mlops_formats::rows::{FileKind, ReadError, is_gzip, read_batch};
use mlops_lake::{Lake, ModelRef, registry};
use mlops_model::{Model, Scorer};
use serde_json::Value;

use super::{LakeArgs, lake_hint};

/// Score rows with a model or a registered version: a file, or every object under a lake prefix.
///
/// A CSV or JSON Lines file (optionally .gz) or a curated Parquet file gives one output record
/// per input row in --output, holding every model output by its ONNX name (and `class` for a
/// registered version with class labels). Rows are validated against the model's contract,
/// columns taken by name. Exits non-zero when no row could be scored.
///
/// With --input s3://BUCKET/PREFIX (and --model NAME@VERSION), the objects under the prefix
/// are scored as the batch-score state machine scores them on AWS: the same handler, in
/// batches of --items-per-batch objects, --parallel batches at a time, each object's
/// predictions written to predictions/<model>/v<N>/dt=<its dt>/<its name>.parquet in the lake.
#[derive(Debug, Clone, Args)]
pub struct ScoreArgs {
    /// An ONNX file, or NAME@VERSION from the registry (e.g. penguins@1).
    #[arg(long)]
    pub model: String,
    /// The contract of a model file [default: contract.yaml beside the model]; a registered
    /// version brings its own.
    #[arg(long)]
    pub contract: Option<PathBuf>,
    /// Rows to score: .csv (with a header), .jsonl or .ndjson, optionally .gz, or .parquet;
    /// or s3://BUCKET/PREFIX for every object under a prefix of the lake.
    #[arg(long)]
    pub input: PathBuf,
    /// Where to write the records of a file: .jsonl or .csv (a prefix's go to the lake).
    #[arg(long)]
    pub output: Option<PathBuf>,
    /// Rows per model run.
    #[arg(long, default_value_t = 1024)]
    pub batch_size: usize,
    /// Objects per batch, for a lake prefix (the state machine's items_per_batch).
    #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u32).range(1..))]
    pub items_per_batch: u32,
    /// Batches scored at once, for a lake prefix [default: the cores].
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..))]
    pub parallel: Option<u32>,
    #[command(flatten)]
    pub lake: LakeArgs,
}

impl ScoreArgs {
    pub async fn run(self) -> anyhow::Result<()> {
        if let Some(prefix) = self.input.to_str().and_then(|i| i.strip_prefix("s3://")) {
            let (bucket, prefix) = prefix.split_once('/').unwrap_or((prefix, ""));
            let lake = LakeArgs { bucket: bucket.to_string() }.connect().await?;
            let summary = score_prefix(&lake, &self, prefix).await?;
            eprintln!(
                "scored {} of {} rows of {} objects under s3://{bucket}/{prefix} into s3://{bucket}/{} ({} failed)",
                summary.scored,
                summary.rows,
                summary.items,
                score::predictions_prefix(&model_ref(&self.model)?),
                summary.failed
            );
            if summary.scored == 0 {
                bail!("no row under s3://{bucket}/{prefix} was scored ({} rows read)", summary.rows);
            }
            return Ok(());
        }
        let Some(output) = &self.output else {
            bail!("--output names where the records of {} go (.jsonl or .csv)", self.input.display());
        };
        let output = output.clone();
        let lake = self.lake.clone();
        let loaded = Loaded::load(&self.model, self.contract.as_deref(), async || lake.connect().await).await?;
        let summary = tokio::task::block_in_place(|| score_file(&loaded, &self))?;
        eprintln!(
            "scored {} of {} rows into {} ({} failed)",
            summary.scored,
            summary.rows,
            output.display(),
            summary.failed
        );
        if summary.scored == 0 {
            bail!("no row of {} was scored ({} rows read)", self.input.display(), summary.rows);
        }
        Ok(())
    }
}

/// Counts of a scoring run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ScoreSummary {
    pub rows: u64,
    pub scored: u64,
    pub failed: u64,
}

/// A model to score with and the contract its rows are read against.
#[derive(Debug)]
pub struct Loaded {
    pub scorer: Scorer,
    pub contract: Contract,
}

impl Loaded {
    /// Loads `spec`: an existing ONNX file (with `contract`, or the `contract.yaml` beside it),
    /// or `NAME@VERSION` from the lake.
    pub async fn load(
        spec: &str,
        contract: Option<&Path>,
        lake: impl AsyncFnOnce() -> anyhow::Result<Lake>,
    ) -> anyhow::Result<Loaded> {
        if Path::new(spec).is_file() {
            let bytes = std::fs::read(spec).with_context(|| format!("reading {spec}"))?;
            let model = Model::load(&bytes).with_context(|| format!("loading {spec}"))?;
            let path = match contract {
                Some(p) => p.to_path_buf(),
                None => Path::new(spec).with_file_name("contract.yaml"),
            };
            if !path.is_file() {
                bail!("{spec} needs its data contract: pass --contract (no {} found)", path.display());
            }
            let contract = Contract::load(&path)?;
            let scorer = Scorer::new(model, &contract, None)
                .with_context(|| format!("{spec} does not fit {}", path.display()))?;
            return Ok(Loaded { scorer, contract });
        }
        let model_ref: ModelRef =
            spec.parse().with_context(|| format!("--model {spec:?} is neither an existing file nor NAME@VERSION"))?;
        let lake = lake().await?;
        let (stored, bytes) =
            registry::load(&lake, &model_ref.name, model_ref.version).await.map_err(|e| lake_hint(e.into()))?;
        let model = Model::load(&bytes)?;
        let scorer = Scorer::new(model, &stored.contract, stored.manifest.class_labels.clone())?;
        Ok(Loaded { scorer, contract: stored.contract })
    }
}

/// A reader that counts the bytes read, for the progress bar.
struct Counting<R> {
    inner: R,
    read: Arc<AtomicU64>,
}

impl<R: Read> Read for Counting<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.read.fetch_add(n as u64, Ordering::Relaxed);
        Ok(n)
    }
}

/// Writes one record per row, as JSON Lines or CSV.
enum Sink {
    Jsonl(BufWriter<File>),
    Csv { writer: Box<csv::Writer<BufWriter<File>>>, columns: Option<Vec<String>> },
}

impl Sink {
    fn create(path: &Path) -> anyhow::Result<Sink> {
        let file = BufWriter::new(File::create(path).with_context(|| format!("creating {}", path.display()))?);
        match path.extension().and_then(|e| e.to_str()).unwrap_or_default().to_ascii_lowercase().as_str() {
            "csv" => Ok(Sink::Csv { writer: Box::new(csv::Writer::from_writer(file)), columns: None }),
            "jsonl" | "ndjson" | "json" => Ok(Sink::Jsonl(file)),
            _ => bail!("{}: the output must be .csv or .jsonl", path.display()),
        }
    }

    fn write(&mut self, row: u64, result: &Result<serde_json::Map<String, Value>, String>) -> anyhow::Result<()> {
        match self {
            Sink::Jsonl(out) => {
                let mut record = serde_json::Map::new();
                record.insert("row".into(), row.into());
                match result {
                    Ok(fields) => record.extend(fields.clone()),
                    Err(e) => {
                        record.insert("error".into(), e.clone().into());
                    }
                }
                serde_json::to_writer(&mut *out, &record)?;
                out.write_all(b"\n")?;
            }
            Sink::Csv { writer, columns } => {
                let flat = |fields: &serde_json::Map<String, Value>| -> Vec<(String, String)> {
                    let mut cells = Vec::new();
                    for (name, v) in fields {
                        match v {
                            Value::Array(items) => {
                                for (i, item) in items.iter().enumerate() {
                                    cells.push((format!("{name}_{i}"), plain(item)));
                                }
                            }
                            other => cells.push((name.clone(), plain(other))),
                        }
                    }
                    cells
                };
                if columns.is_none() {
                    // The header comes from the first scored row; error rows before it are
                    // written once the columns are known, so the header goes first.
                    let names: Vec<String> = match result {
                        Ok(fields) => flat(fields).into_iter().map(|(n, _)| n).collect(),
                        Err(_) => Vec::new(),
                    };
                    let mut header = vec!["row".to_string()];
                    header.extend(names.iter().cloned());
                    header.push("error".into());
                    writer.write_record(&header)?;
                    *columns = Some(names);
                }
                let names = columns.as_deref().unwrap_or_default();
                let mut record = vec![row.to_string()];
                match result {
                    Ok(fields) => {
                        let cells = flat(fields);
                        record.extend(
                            names.iter().map(|n| {
                                cells.iter().find(|(c, _)| c == n).map(|(_, v)| v.clone()).unwrap_or_default()
                            }),
                        );
                        record.push(String::new());
                    }
                    Err(e) => {
                        record.extend(names.iter().map(|_| String::new()));
                        record.push(e.clone());
                    }
                }
                writer.write_record(&record)?;
            }
        }
        Ok(())
    }

    fn finish(self) -> anyhow::Result<()> {
        match self {
            Sink::Jsonl(mut out) => out.flush()?,
            Sink::Csv { mut writer, .. } => writer.flush()?,
        }
        Ok(())
    }
}

fn plain(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Null => String::new(),
        other => other.to_string(),
    }
}

/// Scores `args.input` into `args.output`, showing progress on a terminal.
pub fn score_file(loaded: &Loaded, args: &ScoreArgs) -> anyhow::Result<ScoreSummary> {
    let Some(output) = args.output.as_deref() else {
        bail!("--output names where the records of {} go (.jsonl or .csv)", args.input.display());
    };
    let file = File::open(&args.input).with_context(|| format!("reading {}", args.input.display()))?;
    let size = file.metadata().map(|m| m.len()).unwrap_or(0);
    let progress = ProgressBar::with_draw_target(Some(size), ProgressDrawTarget::stderr());
    progress.set_style(
        ProgressStyle::with_template("{spinner} scoring [{bar:30}] {percent}% {msg}")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    let name = args.input.to_string_lossy().into_owned();
    let kind = FileKind::of(&name);
    if kind == FileKind::Profile {
        bail!("{name}: rows to score come as .csv, .jsonl or .ndjson (a .json file is a profile)");
    }
    let read = Arc::new(AtomicU64::new(0));
    let counted = Counting { inner: file, read: Arc::clone(&read) };
    let input: Box<dyn std::io::BufRead> = if is_gzip(&name, None) {
        Box::new(std::io::BufReader::new(flate2::read::MultiGzDecoder::new(std::io::BufReader::new(counted))))
    } else {
        Box::new(std::io::BufReader::with_capacity(256 << 10, counted))
    };
    let mut sink = Sink::create(output)?;
    let mut summary = ScoreSummary { rows: 0, scored: 0, failed: 0 };
    let batch = args.batch_size.max(1);
    let features = loaded.contract.features_only();
    let mut pending: Vec<(u64, Result<Vec<Cell>, String>)> = Vec::with_capacity(batch);
    let mut flush = |pending: &mut Vec<(u64, Result<Vec<Cell>, String>)>, summary: &mut ScoreSummary| {
        let good: Vec<Vec<Cell>> = pending.iter().filter_map(|(_, r)| r.as_ref().ok().cloned()).collect();
        let mut results = loaded.scorer.score_each(&good).into_iter();
        for (row, read) in pending.drain(..) {
            let result = match read {
                Ok(_) => results.next().unwrap_or_else(|| Err("no output for this row".into())),
                Err(e) => Err(e),
            };
            if result.is_ok() {
                summary.scored += 1
            } else {
                summary.failed += 1
            }
            sink.write(row, &result)?;
        }
        progress.set_position(read.load(Ordering::Relaxed));
        progress.set_message(format!("{} rows", summary.rows));
        anyhow::Ok(())
    };
    if name.ends_with(".parquet") {
        // Curated Parquet: the values are typed already; the features are taken by name.
        let mut bytes = Vec::new();
        let mut input = input;
        input.read_to_end(&mut bytes).with_context(|| format!("reading {name}"))?;
        let rows =
            mlops_formats::curated::read_values(bytes.into(), &features).with_context(|| format!("reading {name}"))?;
        for row in rows {
            summary.rows += 1;
            pending.push((summary.rows, Ok(row)));
            if pending.len() >= batch {
                flush(&mut pending, &mut summary)?;
            }
        }
    } else {
        let outcome = read_batch(&features, kind, input, |row| {
            summary.rows += 1;
            let cells = row.outcome.map_err(|reasons| {
                // Each reason's message names its column.
                let reasons: Vec<String> = reasons.into_iter().map(|r| r.message).collect();
                reasons.join("; ")
            });
            pending.push((summary.rows, cells));
            if pending.len() >= batch {
                flush(&mut pending, &mut summary)?;
            }
            anyhow::Ok(())
        });
        match outcome {
            Ok(()) => {}
            Err(ReadError::Consumer(e)) => return Err(e),
            Err(e) => bail!("{}: {e}", args.input.display()),
        }
    }
    flush(&mut pending, &mut summary)?;
    sink.finish()?;
    progress.finish_and_clear();
    Ok(summary)
}

fn model_ref(spec: &str) -> anyhow::Result<ModelRef> {
    spec.parse()
        .with_context(|| format!("--model {spec:?}: a lake prefix is scored by a registered version, NAME@VERSION"))
}

/// Scores every object under `prefix` of `lake` with the batch-score handler, in batches of
/// `args.items_per_batch` objects, `args.parallel` batches at a time.
pub async fn score_prefix(lake: &Lake, args: &ScoreArgs, prefix: &str) -> anyhow::Result<score::BatchScored> {
    let model = model_ref(&args.model)?;
    let keys: Vec<String> = lake.list(prefix).await.map_err(|e| lake_hint(e.into()))?;
    if keys.is_empty() {
        bail!("s3://{}/{prefix} holds no object to score", lake.bucket());
    }
    let config = Arc::new(score::Config { bucket: lake.bucket().to_string(), model: None });
    let scorers = Arc::new(score::Scorers::default());
    // Load once before the batches start, so that a bad version fails once and early.
    scorers.get(lake, &model).await.map_err(|e| lake_hint(e.into()))?;
    let parallel =
        args.parallel.map_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()), |p| p as usize);
    let limit = Arc::new(tokio::sync::Semaphore::new(parallel));
    let progress = ProgressBar::with_draw_target(Some(keys.len() as u64), ProgressDrawTarget::stderr());
    progress.set_style(
        ProgressStyle::with_template("{spinner} scoring [{bar:30}] {pos}/{len} objects {msg}")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    let today = chrono::Utc::now().date_naive();
    let mut tasks = tokio::task::JoinSet::new();
    for (n, chunk) in keys.chunks(args.items_per_batch as usize).enumerate() {
        let batch = score::ItemBatch {
            items: chunk.iter().map(|k| score::Item { key: k.clone() }).collect(),
            input: score::BatchInput { model: Some(model.name.clone()), version: Some(model.version) },
        };
        let (lake, config, scorers, limit) =
            (lake.clone(), Arc::clone(&config), Arc::clone(&scorers), Arc::clone(&limit));
        tasks.spawn(async move {
            let _permit = limit.acquire_owned().await;
            (n, score::score_items(&lake, &scorers, &config, &batch, today).await)
        });
    }
    let mut done: Vec<(usize, score::BatchScored)> = Vec::new();
    let mut first_error = None;
    while let Some(joined) = tasks.join_next().await {
        match joined {
            Ok((n, Ok(batch))) => {
                progress.inc(batch.items as u64);
                done.push((n, batch));
            }
            Ok((n, Err(e))) => {
                first_error.get_or_insert_with(|| anyhow::anyhow!("batch {n}: {e}"));
            }
            Err(e) => {
                first_error.get_or_insert_with(|| anyhow::anyhow!("a batch stopped: {e}"));
            }
        }
    }
    progress.finish_and_clear();
    if let Some(e) = first_error {
        return Err(e);
    }
    done.sort_by_key(|(n, _)| *n);
    let mut total = score::BatchScored { model: model.to_string(), ..score::BatchScored::default() };
    for (_, b) in done {
        total.items += b.items;
        total.rows += b.rows;
        total.scored += b.scored;
        total.failed += b.failed;
        total.outputs.extend(b.outputs);
    }
    Ok(total)
}

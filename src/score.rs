//! `mlops score`: batch scoring of a CSV or JSON Lines file, the offline deployment target.
//!
//! Rows stream through in chunks: read, convert to the model's inputs, run, write one
//! record per input row. A row that cannot be converted gets a record with its error, so
//! the output always has as many records as the input has rows.

use std::fs::File;
use std::io::{BufRead, BufReader, BufWriter, Write};
use std::path::{Path, PathBuf};

use anyhow::{Context as _, bail};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use mlops_core::model::{Cell, Layout, RowOutputs, rows_json};
use mlops_core::registry::{self, Manifest};
use mlops_core::{Lake, Model};
use serde_json::Value;

/// What to score and where to write it.
#[derive(Debug, Clone)]
pub struct ScoreArgs {
    /// An ONNX file, or `name@version` in the registry.
    pub model: String,
    pub input: PathBuf,
    pub output: PathBuf,
    /// Rows per model run.
    pub batch_size: usize,
}

/// Counts of a scoring run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ScoreSummary {
    pub rows: u64,
    pub scored: u64,
    pub failed: u64,
}

/// A model to score with, from a file or the registry.
#[derive(Debug)]
pub struct Scorer {
    model: Model,
    layout: Layout,
    manifest: Option<Manifest>,
}

impl Scorer {
    /// Loads `spec`: an existing file path, or `name@version` from the lake.
    pub async fn load(spec: &str, lake: impl AsyncFnOnce() -> Lake) -> anyhow::Result<Scorer> {
        if Path::new(spec).is_file() {
            let bytes = std::fs::read(spec).with_context(|| format!("reading {spec}"))?;
            let model = Model::load(&bytes)?;
            let layout = Layout::of(&model)?;
            return Ok(Scorer { model, layout, manifest: None });
        }
        let Some((name, version)) = spec.split_once('@') else {
            bail!("--model {spec:?} is neither a file nor name@version");
        };
        let version: u32 = version.trim_start_matches('v').parse().with_context(|| format!("version in {spec:?}"))?;
        let loaded = registry::load(&lake().await, name, version).await?;
        let layout = registry::check_fits(&loaded.model, &loaded.contract)?;
        Ok(Scorer { model: loaded.model, layout, manifest: Some(loaded.manifest) })
    }

    fn score(&self, rows: &[Vec<Cell>]) -> anyhow::Result<RowOutputs> {
        let inputs = self.layout.encode(rows)?;
        let outputs = self.model.run(&inputs)?;
        let mut out = rows_json(&outputs, rows.len())?;
        if let Some(manifest) = &self.manifest {
            registry::add_class_names(manifest, &mut out);
        }
        Ok(out)
    }

    /// Scores a chunk; if the chunk fails as a whole, scores row by row so that only the
    /// rows at fault carry an error.
    fn score_chunk(&self, rows: &[Vec<Cell>]) -> Vec<Result<serde_json::Map<String, Value>, String>> {
        match self.score(rows) {
            Ok(out) => out.into_iter().map(Ok).collect(),
            Err(_) => rows
                .iter()
                .map(|r| {
                    self.score(std::slice::from_ref(r))
                        .map(|mut o| o.pop().unwrap_or_default())
                        .map_err(|e| e.to_string())
                })
                .collect(),
        }
    }
}

/// Reads input rows as cells in the layout's column order.
enum Rows {
    Csv { reader: csv::Reader<BufReader<File>>, columns: Vec<usize> },
    Jsonl { lines: std::io::Lines<BufReader<File>>, names: Option<Vec<String>> },
}

impl Rows {
    fn open(path: &Path, layout: &Layout) -> anyhow::Result<Rows> {
        let file = File::open(path).with_context(|| format!("opening {}", path.display()))?;
        let ext = path.extension().and_then(|e| e.to_str()).unwrap_or_default().to_ascii_lowercase();
        let names = match layout {
            Layout::Named { columns } => Some(columns.iter().map(|(n, _)| n.clone()).collect::<Vec<_>>()),
            Layout::Matrix { .. } => None,
        };
        match ext.as_str() {
            "csv" => {
                let mut reader = csv::ReaderBuilder::new().flexible(true).from_reader(BufReader::new(file));
                let header: Vec<String> = reader.headers()?.iter().map(|h| h.trim().to_string()).collect();
                let columns = match &names {
                    // Named inputs are matched to columns by name.
                    Some(names) => names
                        .iter()
                        .map(|n| {
                            header
                                .iter()
                                .position(|h| h == n)
                                .with_context(|| format!("{} has no column {n:?}", path.display()))
                        })
                        .collect::<anyhow::Result<Vec<usize>>>()?,
                    // A single matrix input takes the columns in order.
                    None => {
                        if let Some(w) = layout.width()
                            && w != header.len()
                        {
                            bail!("{} has {} columns but the model takes {w}", path.display(), header.len());
                        }
                        (0..header.len()).collect()
                    }
                };
                Ok(Rows::Csv { reader, columns })
            }
            "jsonl" | "ndjson" | "json" => Ok(Rows::Jsonl { lines: BufReader::new(file).lines(), names }),
            _ => bail!("{}: the input must be .csv or .jsonl", path.display()),
        }
    }

    /// The next row: cells, or why the row cannot be read. `None` at the end.
    fn next(&mut self) -> Option<Result<Vec<Cell>, String>> {
        match self {
            Rows::Csv { reader, columns } => {
                let mut record = csv::StringRecord::new();
                match reader.read_record(&mut record) {
                    Ok(false) => None,
                    Ok(true) => Some(Ok(columns
                        .iter()
                        .map(|&i| match record.get(i).map(str::trim) {
                            None | Some("") => Cell::Null,
                            Some(text) => Cell::Text(text.to_string()),
                        })
                        .collect())),
                    Err(e) => Some(Err(format!("unreadable row: {e}"))),
                }
            }
            Rows::Jsonl { lines, names } => loop {
                let line = match lines.next()? {
                    Ok(line) => line,
                    Err(e) => return Some(Err(format!("unreadable line: {e}"))),
                };
                if line.trim().is_empty() {
                    continue;
                }
                return Some(json_cells(&line, names.as_deref()));
            },
        }
    }
}

fn json_cells(line: &str, names: Option<&[String]>) -> Result<Vec<Cell>, String> {
    let value: Value = serde_json::from_str(line).map_err(|e| format!("not JSON: {e}"))?;
    let cell = |v: &Value| match v {
        Value::Null => Cell::Null,
        Value::Number(n) => n.as_i64().map_or_else(|| Cell::Num(n.as_f64().unwrap_or(f64::NAN)), Cell::Int),
        Value::String(s) => Cell::Text(s.clone()),
        Value::Bool(b) => Cell::Int(i64::from(*b)),
        other => Cell::Text(other.to_string()),
    };
    match (names, &value) {
        (Some(names), Value::Object(map)) => Ok(names.iter().map(|n| map.get(n).map_or(Cell::Null, cell)).collect()),
        (None, Value::Array(items)) => Ok(items.iter().map(cell).collect()),
        (Some(_), _) => Err("expected a JSON object of column values".into()),
        (None, _) => Err("expected a JSON array of feature values (the model takes one matrix input)".into()),
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
pub fn score_file(scorer: &Scorer, args: &ScoreArgs) -> anyhow::Result<ScoreSummary> {
    let size = std::fs::metadata(&args.input).map(|m| m.len()).unwrap_or(0);
    let progress = ProgressBar::with_draw_target(Some(size), ProgressDrawTarget::stderr());
    progress.set_style(
        ProgressStyle::with_template("{spinner} scoring [{bar:30}] {percent}% {msg}")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    let mut rows = Rows::open(&args.input, &scorer.layout)?;
    let mut sink = Sink::create(&args.output)?;
    let mut summary = ScoreSummary { rows: 0, scored: 0, failed: 0 };
    let batch = args.batch_size.max(1);
    let mut pending: Vec<(u64, Result<Vec<Cell>, String>)> = Vec::with_capacity(batch);
    let mut done = false;
    while !done {
        pending.clear();
        while pending.len() < batch {
            match rows.next() {
                Some(r) => {
                    summary.rows += 1;
                    pending.push((summary.rows, r));
                }
                None => {
                    done = true;
                    break;
                }
            }
        }
        let good: Vec<Vec<Cell>> = pending.iter().filter_map(|(_, r)| r.as_ref().ok().cloned()).collect();
        let mut results = scorer.score_chunk(&good).into_iter();
        for (row, read) in &pending {
            let result = match read {
                Ok(_) => results.next().unwrap_or_else(|| Err("no output for this row".into())),
                Err(e) => Err(e.clone()),
            };
            if result.is_ok() {
                summary.scored += 1
            } else {
                summary.failed += 1
            }
            sink.write(*row, &result)?;
        }
        if let Rows::Csv { reader, .. } = &rows {
            progress.set_position(reader.position().byte());
        }
        progress.set_message(format!("{} rows", summary.rows));
    }
    sink.finish()?;
    progress.finish_and_clear();
    Ok(summary)
}

//! One batch from a byte stream to its outputs, with memory bounded whatever the batch size.
//!
//! The source is read through a buffer (and a gzip decoder when compressed), one record at a
//! time; curated rows go to Parquet writers whose row groups are closed at a byte budget;
//! quarantined rows are written as they come. Nothing of the batch is held whole.

use std::collections::BTreeMap;
use std::io::{BufReader, Read, Write};

use chrono::NaiveDate;

use super::spill::Spill;
use super::{BatchManifest, Counts, IngestLimits, QuarantineRecord, Source};
use crate::error::{Error, Result};
use mlops_contract::Contract;
use mlops_contract::validate::{Reason, Value};
use mlops_drift::profile::{Profile, Profiler};
use mlops_formats::curated::CuratedWriter;
use mlops_formats::rows::{FileKind, ReadError, Row, is_gzip, read_batch};
use mlops_lake::keys::{self, BatchKeys};
use mlops_lake::outputs::{ObjectWriter, Outputs};

const PARQUET: &str = "application/vnd.apache.parquet";
const JSONL: &str = "application/x-ndjson";
const JSON: &str = "application/json";

/// An error of the source stream itself (as opposed to its content), which fails the batch
/// so that it is retried rather than quarantined.
#[derive(Debug)]
struct SourceError(std::io::Error);

impl std::fmt::Display for SourceError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

impl std::error::Error for SourceError {}

/// Counts the bytes read from the source and marks its errors as [`SourceError`]s.
struct Counted<R> {
    inner: R,
    bytes: u64,
}

impl<R: Read> Read for Counted<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        match self.inner.read(buf) {
            Ok(n) => {
                self.bytes += n as u64;
                Ok(n)
            }
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => Err(e),
            Err(e) => Err(std::io::Error::other(SourceError(e))),
        }
    }
}

fn source_error(e: &std::io::Error) -> Option<&SourceError> {
    e.get_ref().and_then(|inner| inner.downcast_ref::<SourceError>())
}

/// Buffer between the source and the record reader.
const READ_BUFFER: usize = 256 << 10;

/// Runs a batch read from `input` (as stored: compressed or not) through the pipeline and
/// writes its outputs: curated Parquet per date, quarantine JSONL, profile, and the manifest
/// last. Returns the manifest.
///
/// Content problems (bad rows, a bad header, undecodable gzip) end up in the quarantine;
/// an `Err` means the source or an output failed, and nothing of the batch was committed
/// except possibly some curated files that a retry rewrites.
pub fn ingest_stream(
    contract: &Contract,
    baseline: &Profile,
    source: &Source<'_>,
    content_encoding: Option<&str>,
    input: impl Read,
    outputs: &dyn Outputs,
    limits: &IngestLimits,
) -> Result<BatchManifest> {
    let started_at = chrono::Utc::now();
    let clock = std::time::Instant::now();
    let etag = source.etag.unwrap_or_default().trim_matches('"').to_string();
    let batch = keys::batch_id(source.key, &etag);
    let keys = BatchKeys::new(&contract.dataset, &baseline.edges_id(), source.dt, &batch);
    let kind = FileKind::of(source.key);
    let compressed = is_gzip(source.key, content_encoding);

    let mut counted = Counted { inner: input, bytes: 0 };
    let mut state = State::new(contract, baseline, source, &batch, outputs, limits, &keys)?;
    let parallel = limits.threads > 1 && kind == FileKind::Csv;
    let result = if compressed {
        let decoder = flate2::read::MultiGzDecoder::new(BufReader::with_capacity(READ_BUFFER, &mut counted));
        let input = BufReader::with_capacity(READ_BUFFER, decoder);
        if parallel {
            super::parallel::read_csv(contract, baseline, input, limits.threads, &mut state)
        } else {
            read_batch(contract, kind, input, |row| state.row(row))
        }
    } else {
        let input = BufReader::with_capacity(READ_BUFFER, &mut counted);
        if parallel {
            super::parallel::read_csv(contract, baseline, input, limits.threads, &mut state)
        } else {
            read_batch(contract, kind, input, |row| state.row(row))
        }
    };
    let rejection = match result {
        Ok(()) => None,
        Err(ReadError::Batch { reason, rows }) => Some((reason, rows)),
        Err(ReadError::Input(e)) => match source_error(&e) {
            Some(source_failure) => {
                let message = source_failure.to_string();
                state.abort();
                return Err(Error::Read { key: source.key.to_string(), message });
            }
            None if compressed => {
                let rows = state.counts.rows_read;
                Some((format!("the object is not valid gzip: {e} (after {rows} rows)"), rows))
            }
            None => Some((format!("the object could not be read: {e}"), state.counts.rows_read)),
        },
        Err(ReadError::Consumer(e)) => {
            state.abort();
            return Err(e);
        }
    };
    let (counts, curated, batch_error) = match rejection {
        None => {
            let counts = state.counts;
            (counts, state.commit()?, None)
        }
        Some((reason, rows)) => {
            let curated = state.reject(&reason, rows)?;
            (Counts { rows_read: rows, curated: 0, quarantined: rows }, curated, Some(reason))
        }
    };
    let manifest = BatchManifest {
        source: source.key.to_string(),
        source_etag: etag,
        dataset: contract.dataset.clone(),
        batch,
        contract_version: contract.version,
        format: kind,
        compressed,
        bytes: counted.bytes,
        counts,
        batch_error,
        started_at,
        duration_ms: clock.elapsed().as_secs_f64() * 1e3,
        curated,
        outputs: keys.clone(),
    };
    let json = serde_json::to_vec_pretty(&manifest).map_err(|e| Error::json("batch manifest", e))?;
    outputs.put(&keys.manifest, &json, JSON)?;
    Ok(manifest)
}

fn json_line(record: &QuarantineRecord) -> Result<Vec<u8>> {
    let mut line = serde_json::to_vec(record).map_err(|e| Error::json("quarantine record", e))?;
    line.push(b'\n');
    Ok(line)
}

impl super::parallel::Sink for State<'_> {
    fn take(&mut self, line: u64, raw: &[u8], outcome: std::result::Result<&[Value], Vec<Reason>>) -> Result<()> {
        self.file(line, raw, outcome)
    }

    fn merge_profile(&mut self, profile: &Profile) -> Result<()> {
        Ok(self.profile.merge(profile)?)
    }

    fn row(&mut self, row: Row<'_>) -> Result<()> {
        State::row(self, row)
    }
}

/// A curated file being written for one date.
struct Partition {
    writer: CuratedWriter<Box<dyn ObjectWriter>>,
    key: String,
}

/// The state of a batch being read: counts, profile, open outputs.
struct State<'a> {
    contract: &'a Contract,
    baseline: &'a Profile,
    source: &'a Source<'a>,
    batch: &'a str,
    outputs: &'a dyn Outputs,
    limits: &'a IngestLimits,
    event_time: Option<usize>,
    counts: Counts,
    profile: Profiler,
    quarantine: Option<Box<dyn ObjectWriter>>,
    keys: &'a BatchKeys,
    /// The curated files of the first `max_open_partitions` dates, open until the batch ends.
    open: BTreeMap<NaiveDate, Partition>,
    /// The rows of every further date, written to their files when the batch ends.
    spill: Spill,
}

impl<'a> State<'a> {
    fn new(
        contract: &'a Contract,
        baseline: &'a Profile,
        source: &'a Source<'a>,
        batch: &'a str,
        outputs: &'a dyn Outputs,
        limits: &'a IngestLimits,
        keys: &'a BatchKeys,
    ) -> Result<State<'a>> {
        let event_time = contract.event_time.as_ref().and_then(|e| contract.columns.iter().position(|c| &c.name == e));
        Ok(State {
            contract,
            baseline,
            source,
            batch,
            outputs,
            limits,
            event_time,
            counts: Counts::default(),
            profile: Profiler::new(contract, Profile::empty_like(contract, baseline)),
            quarantine: Some(outputs.create(&keys.quarantine, JSONL)?),
            keys,
            open: BTreeMap::new(),
            spill: Spill::new(limits.row_group_bytes.min(super::SPILL_BUFFER_BYTES)),
        })
    }

    fn row(&mut self, row: Row<'_>) -> Result<()> {
        match row.outcome {
            Ok(values) => {
                self.profile.observe(&values);
                self.file(row.line, row.raw, Ok(&values))
            }
            Err(reasons) => self.file(row.line, row.raw, Err(reasons)),
        }
    }

    /// Files a row whose values are profiled already: curated when valid, else quarantined.
    fn file(&mut self, line: u64, raw: &[u8], outcome: std::result::Result<&[Value], Vec<Reason>>) -> Result<()> {
        self.counts.rows_read += 1;
        match outcome {
            Ok(values) => {
                self.curate(values)?;
                self.counts.curated += 1;
            }
            Err(reasons) => {
                let record = QuarantineRecord {
                    source: self.source.key.to_string(),
                    line: Some(line),
                    raw: Some(String::from_utf8_lossy(raw).into_owned()),
                    batch_rows: None,
                    reasons,
                };
                let line = json_line(&record)?;
                if let Some(q) = self.quarantine.as_mut() {
                    q.write_all(&line).map_err(|e| Error::Write { key: self.keys.quarantine.clone(), source: e })?;
                }
                self.counts.quarantined += 1;
            }
        }
        Ok(())
    }

    /// The date a valid row is filed under: its event time's UTC date, else the batch date.
    fn date_of(&self, row: &[Value]) -> NaiveDate {
        self.event_time
            .and_then(|i| match &row[i] {
                Value::Text(t) => mlops_formats::curated::timestamp_micros(t),
                _ => None,
            })
            .and_then(chrono::DateTime::from_timestamp_micros)
            .map_or(self.source.dt, |t| t.date_naive())
    }

    fn curate(&mut self, row: &[Value]) -> Result<()> {
        let date = self.date_of(row);
        if !self.open.contains_key(&date) {
            if self.open.len() >= self.limits.max_open_partitions.max(1) {
                return self.spill.push(date, row).map_err(|e| self.spill_error(e));
            }
            self.open_partition(date)?;
        }
        let mut grew = false;
        if let Some(p) = self.open.get_mut(&date) {
            grew = p.writer.push(row)?;
        }
        // The open row groups only grow when a writer hands its buffered rows on.
        if grew && self.open.len() > 1 {
            self.keep_to_budget()?;
        }
        Ok(())
    }

    fn spill_error(&self, source: std::io::Error) -> Error {
        Error::Write { key: format!("the temporary file of {}'s rows of further dates", self.batch), source }
    }

    fn open_partition(&mut self, date: NaiveDate) -> Result<()> {
        let partition = self.create_partition(date)?;
        self.open.insert(date, partition);
        Ok(())
    }

    fn create_partition(&self, date: NaiveDate) -> Result<Partition> {
        let key = keys::curated_key(&self.contract.dataset, date, self.batch, 0);
        let sink = self.outputs.create(&key, PARQUET)?;
        // With parsing on worker threads, the Parquet encoding gets a thread of its own too.
        let writer = if self.limits.threads > 1 {
            CuratedWriter::with_encoder_thread(self.contract, sink, self.limits.row_group_bytes)?
        } else {
            CuratedWriter::to_sink(self.contract, sink, self.limits.row_group_bytes)?
        };
        Ok(Partition { writer, key })
    }

    /// Closes the largest open row group while those of all partitions together exceed
    /// the row-group budget.
    fn keep_to_budget(&mut self) -> Result<()> {
        let total: usize = self.open.values().map(|p| p.writer.buffered_bytes()).sum();
        if total > self.limits.row_group_bytes
            && let Some(p) = self.open.values_mut().max_by_key(|p| p.writer.buffered_bytes())
        {
            p.writer.flush_row_group()?;
        }
        Ok(())
    }

    /// Commits every output of a batch read to its end; returns the curated keys.
    fn commit(mut self) -> Result<Vec<String>> {
        if self.open.is_empty() && self.spill.rows() == 0 {
            self.open_partition(self.source.dt)?;
        }
        let mut committed = Vec::with_capacity(self.open.len());
        while let Some((_, p)) = self.open.pop_first() {
            match p.writer.finish() {
                Ok(sink) => sink.commit()?,
                Err(e) => {
                    self.abort();
                    return Err(e.into());
                }
            }
            committed.push(p.key);
        }
        if self.spill.rows() > 0 {
            tracing::info!(rows = self.spill.rows(), runs = self.spill.runs(), "rows of further dates spilled");
            let spill = std::mem::replace(&mut self.spill, Spill::new(1));
            if let Err(e) = self.write_spilled(spill, &mut committed) {
                self.abort();
                return Err(e);
            }
        }
        if let Some(q) = self.quarantine.take() {
            q.commit()?;
        }
        committed.sort();
        self.outputs.put(&self.keys.profile, &self.profile.finish().to_json(), JSON)?;
        Ok(committed)
    }

    /// Writes the spilled rows, one curated file per date, one file at a time.
    fn write_spilled(&self, spill: Spill, committed: &mut Vec<String>) -> Result<()> {
        let mut merge = spill.into_merge().map_err(|e| self.spill_error(e))?;
        let mut row = Vec::new();
        while let Some(date) = merge.next_date() {
            let mut p = self.create_partition(date)?;
            let mut written: Result<()> = Ok(());
            loop {
                match merge.next_row(&mut row) {
                    Ok(true) => {
                        if let Err(e) = p.writer.push(&row) {
                            written = Err(e.into());
                            break;
                        }
                    }
                    Ok(false) => break,
                    Err(e) => {
                        written = Err(self.spill_error(e));
                        break;
                    }
                }
            }
            // A failed file is finished only so that its sink can abort what it began.
            let finished = p.writer.finish();
            match (written, finished) {
                (Ok(()), Ok(sink)) => sink.commit()?,
                (Err(e), Ok(sink)) => {
                    sink.abort();
                    return Err(e);
                }
                (_, Err(e)) => return Err(e.into()),
            }
            committed.push(p.key);
        }
        Ok(())
    }

    /// Drops what was written and writes the outputs of a batch rejected whole: one quarantine
    /// record, an empty profile and an empty curated file at the batch date (so a rerun
    /// overwrites an earlier one). Returns the curated key.
    fn reject(mut self, reason: &str, rows: u64) -> Result<Vec<String>> {
        self.abort();
        let key = keys::curated_key(&self.contract.dataset, self.source.dt, self.batch, 0);
        let sink = self.outputs.create(&key, PARQUET)?;
        CuratedWriter::to_sink(self.contract, sink, self.limits.row_group_bytes)?.finish()?.commit()?;
        let record = QuarantineRecord {
            source: self.source.key.to_string(),
            line: None,
            raw: None,
            batch_rows: Some(rows),
            reasons: vec![Reason::row("batch", reason.to_string())],
        };
        self.outputs.put(&self.keys.quarantine, &json_line(&record)?, JSONL)?;
        self.outputs.put(&self.keys.profile, &Profile::empty_like(self.contract, self.baseline).to_json(), JSON)?;
        Ok(vec![key])
    }

    /// Drops every output still open.
    fn abort(&mut self) {
        while let Some((_, p)) = self.open.pop_first() {
            // The writer's sink is reached only through finishing the file; an unfinished
            // file is dropped with its buffers, and the sink aborts what it began.
            if let Ok(sink) = p.writer.finish() {
                sink.abort();
            }
        }
        if let Some(q) = self.quarantine.take() {
            q.abort();
        }
    }
}

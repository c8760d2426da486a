//! The ingest pipeline: a raw batch in; curated rows (Parquet), quarantined rows, a profile
//! and a manifest out.
//!
//! Every data row of the batch ends up either curated or quarantined with its reasons;
//! [`Counts`] records that `rows_read == curated + quarantined`.

use chrono::NaiveDate;
use serde::{Deserialize, Serialize};

use crate::contract::Contract;
use crate::curated::CuratedWriter;
use crate::error::{Error, Result};
use crate::lake::{self, BatchKeys};
use crate::profile::Profile;
use crate::reading::{FileKind, read_batch};
use crate::storage::Lake;
use crate::validate::{Reason, Value};

/// Row accounting of one batch.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Counts {
    pub rows_read: u64,
    pub curated: u64,
    pub quarantined: u64,
}

/// One quarantined row (or, for a batch-level problem, the whole batch).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct QuarantineRecord {
    pub source: String,
    /// The row's first line in the source file; absent when the whole batch is rejected.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub line: Option<u64>,
    /// The row's text, cut to a bounded length; absent when the whole batch is rejected.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub raw: Option<String>,
    /// For a batch-level rejection, how many data rows the batch held.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub batch_rows: Option<u64>,
    pub reasons: Vec<Reason>,
}

/// The outputs of one batch, ready to be written.
#[derive(Debug, Clone)]
pub struct BatchOutput {
    /// Curated Parquet files by row date; at least one (the default date), possibly empty.
    pub curated: Vec<(NaiveDate, Vec<u8>)>,
    pub quarantine_jsonl: Vec<u8>,
    pub profile: Profile,
    pub counts: Counts,
    /// Set when the whole batch was rejected.
    pub batch_error: Option<String>,
}

/// Curated writers by date: rows go to their event date (when the contract names an event
/// time column and the row has one), else to the default date.
struct Partitions<'a> {
    contract: &'a Contract,
    event_time: Option<usize>,
    default: NaiveDate,
    writers: std::collections::BTreeMap<NaiveDate, CuratedWriter>,
}

impl<'a> Partitions<'a> {
    fn new(contract: &'a Contract, default: NaiveDate) -> Partitions<'a> {
        let event_time = contract.event_time.as_ref().and_then(|e| contract.columns.iter().position(|c| &c.name == e));
        Partitions { contract, event_time, default, writers: Default::default() }
    }

    fn push(&mut self, row: &[Value]) -> Result<()> {
        let date = self
            .event_time
            .and_then(|i| match &row[i] {
                Value::Text(t) => crate::curated::timestamp_micros(t),
                _ => None,
            })
            .and_then(chrono::DateTime::from_timestamp_micros)
            .map_or(self.default, |t| t.date_naive());
        let writer = match self.writers.entry(date) {
            std::collections::btree_map::Entry::Occupied(e) => e.into_mut(),
            std::collections::btree_map::Entry::Vacant(e) => e.insert(CuratedWriter::new(self.contract)?),
        };
        writer.push(row)
    }

    /// The finished files; an empty one at the default date when no row was curated, so a
    /// rerun overwrites what an earlier run of the same batch wrote.
    fn finish(mut self) -> Result<Vec<(NaiveDate, Vec<u8>)>> {
        if self.writers.is_empty() {
            self.writers.insert(self.default, CuratedWriter::new(self.contract)?);
        }
        self.writers.into_iter().map(|(d, w)| Ok((d, w.finish()?))).collect()
    }
}

/// Validates a batch, splitting it into curated Parquet (by date), quarantine JSONL and a
/// profile on the baseline's bins. `dt` is the batch's date.
pub fn process_batch(
    contract: &Contract,
    baseline: &Profile,
    source: &str,
    kind: FileKind,
    bytes: &[u8],
    dt: NaiveDate,
) -> BatchOutput {
    let mut profile = Profile::empty_like(contract, baseline);
    let mut counts = Counts::default();
    let mut partitions = Partitions::new(contract, dt);
    let mut quarantine = Vec::new();
    let mut write_error = None;
    let result = read_batch(contract, kind, bytes, |row| {
        counts.rows_read += 1;
        match row.outcome {
            Ok(values) => {
                profile.observe(contract, &values);
                if let Err(e) = partitions.push(&values) {
                    write_error.get_or_insert(e.to_string());
                }
                counts.curated += 1;
            }
            Err(reasons) => {
                let record = QuarantineRecord {
                    source: source.to_string(),
                    line: Some(row.line),
                    raw: Some(row.raw),
                    batch_rows: None,
                    reasons,
                };
                push_json_line(&mut quarantine, &record);
                counts.quarantined += 1;
            }
        }
    });
    let curated = partitions.finish();
    let (mut curated, finish_error) = match curated {
        Ok(files) => (files, None),
        Err(e) => (Vec::new(), Some(e.to_string())),
    };
    let batch_error = match (result, write_error.or(finish_error)) {
        (Err(e), _) => Some(e.0),
        // Writing Parquet into memory does not fail on valid rows; if it ever did, no row
        // may be lost silently, so the batch is quarantined whole.
        (Ok(()), Some(e)) => Some(format!("curated rows could not be written: {e}")),
        (Ok(()), None) => None,
    };
    if let Some(reason) = &batch_error {
        let rows = data_lines(bytes, kind == FileKind::Csv && contract.csv.header);
        counts = Counts { rows_read: rows, curated: 0, quarantined: rows };
        profile = Profile::empty_like(contract, baseline);
        curated = empty_curated(contract, dt);
        quarantine.clear();
        let record = QuarantineRecord {
            source: source.to_string(),
            line: None,
            raw: None,
            batch_rows: Some(rows),
            reasons: vec![Reason::row("batch", reason.clone())],
        };
        push_json_line(&mut quarantine, &record);
    }
    BatchOutput { curated, quarantine_jsonl: quarantine, profile, counts, batch_error }
}

/// An empty curated file at `dt` (no rows, the contract's schema).
fn empty_curated(contract: &Contract, dt: NaiveDate) -> Vec<(NaiveDate, Vec<u8>)> {
    CuratedWriter::new(contract).and_then(CuratedWriter::finish).map(|bytes| vec![(dt, bytes)]).unwrap_or_default()
}

fn push_json_line(out: &mut Vec<u8>, record: &QuarantineRecord) {
    // A record of strings and integers always serialises.
    if serde_json::to_writer(&mut *out, record).is_ok() {
        out.push(b'\n');
    }
}

/// Data rows of a batch that could not be read: its non-blank lines, less a header line.
fn data_lines(bytes: &[u8], header: bool) -> u64 {
    let lines = bytes.split(|b| *b == b'\n').filter(|l| !l.iter().all(u8::is_ascii_whitespace)).count() as u64;
    lines.saturating_sub(u64::from(header))
}

/// Decompressed batches larger than this are refused rather than exhausting memory.
pub const MAX_DECOMPRESSED_BYTES: u64 = 1 << 30;

/// Undoes gzip compression, announced by a `.gz` suffix or `Content-Encoding: gzip`.
/// Returns the bytes and whether they were compressed.
pub fn decompress(name: &str, content_encoding: Option<&str>, bytes: Vec<u8>) -> Result<(Vec<u8>, bool), String> {
    let gzip = name.to_ascii_lowercase().ends_with(".gz")
        || content_encoding.is_some_and(|e| e.split(',').any(|p| p.trim().eq_ignore_ascii_case("gzip")));
    if !gzip {
        return Ok((bytes, false));
    }
    use std::io::Read;
    let mut out = Vec::new();
    flate2::read::MultiGzDecoder::new(&bytes[..])
        .take(MAX_DECOMPRESSED_BYTES + 1)
        .read_to_end(&mut out)
        .map_err(|e| format!("the object is not valid gzip: {e}"))?;
    if out.len() as u64 > MAX_DECOMPRESSED_BYTES {
        return Err(format!("the object decompresses to more than {MAX_DECOMPRESSED_BYTES} bytes"));
    }
    Ok((out, true))
}

/// The accounting of one batch, written beside its outputs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BatchManifest {
    pub source: String,
    pub source_etag: String,
    pub dataset: String,
    pub batch: String,
    pub contract_version: u32,
    pub format: FileKind,
    pub compressed: bool,
    /// Size of the source object as stored.
    pub bytes: u64,
    pub counts: Counts,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub batch_error: Option<String>,
    pub started_at: chrono::DateTime<chrono::Utc>,
    pub duration_ms: f64,
    /// Curated Parquet objects, one per row date.
    pub curated: Vec<String>,
    pub outputs: BatchKeys,
}

/// A batch's outputs, keyed as in the lake.
#[derive(Debug, Clone)]
pub struct BatchFiles {
    pub manifest: BatchManifest,
    /// (key, bytes, content type), the manifest last.
    pub objects: Vec<(String, Vec<u8>, &'static str)>,
}

/// Runs one source object through the pipeline and lays out the objects to write.
pub fn ingest_bytes(
    contract: &Contract,
    baseline: &Profile,
    source: &Source<'_>,
    content_encoding: Option<&str>,
    bytes: Vec<u8>,
) -> BatchFiles {
    let started_at = chrono::Utc::now();
    let clock = std::time::Instant::now();
    let size = bytes.len() as u64;
    let etag = source.etag.unwrap_or_default().trim_matches('"').to_string();
    let batch = lake::batch_id(source.key, &etag);
    let keys = BatchKeys::new(&contract.dataset, source.dt, &batch);
    let kind = FileKind::of(source.key);
    let (output, compressed) = match decompress(source.key, content_encoding, bytes) {
        Ok((plain, compressed)) => (process_batch(contract, baseline, source.key, kind, &plain, source.dt), compressed),
        Err(reason) => (unreadable(contract, baseline, source.key, reason, source.dt), true),
    };
    let curated: Vec<(String, Vec<u8>)> = output
        .curated
        .into_iter()
        .map(|(dt, bytes)| (lake::curated_key(&contract.dataset, dt, &batch), bytes))
        .collect();
    let manifest = BatchManifest {
        source: source.key.to_string(),
        source_etag: etag,
        dataset: contract.dataset.clone(),
        batch,
        contract_version: contract.version,
        format: kind,
        compressed,
        bytes: size,
        counts: output.counts,
        batch_error: output.batch_error.clone(),
        started_at,
        duration_ms: clock.elapsed().as_secs_f64() * 1e3,
        curated: curated.iter().map(|(k, _)| k.clone()).collect(),
        outputs: keys.clone(),
    };
    let manifest_json = serde_json::to_vec_pretty(&manifest).unwrap_or_default();
    let mut objects: Vec<(String, Vec<u8>, &'static str)> =
        curated.into_iter().map(|(k, b)| (k, b, "application/vnd.apache.parquet")).collect();
    objects.extend([
        (keys.quarantine.clone(), output.quarantine_jsonl, "application/x-ndjson"),
        (keys.profile.clone(), output.profile.to_json(), "application/json"),
        (keys.manifest.clone(), manifest_json, "application/json"),
    ]);
    BatchFiles { manifest, objects }
}

/// The outputs of a batch that cannot be decoded at all: no rows, one reason.
fn unreadable(contract: &Contract, baseline: &Profile, source: &str, reason: String, dt: NaiveDate) -> BatchOutput {
    let mut quarantine = Vec::new();
    let record = QuarantineRecord {
        source: source.to_string(),
        line: None,
        raw: None,
        batch_rows: Some(0),
        reasons: vec![Reason::row("batch", reason.clone())],
    };
    push_json_line(&mut quarantine, &record);
    BatchOutput {
        curated: empty_curated(contract, dt),
        quarantine_jsonl: quarantine,
        profile: Profile::empty_like(contract, baseline),
        counts: Counts::default(),
        batch_error: Some(reason),
    }
}

/// What happened to one source object.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum IngestOutcome {
    Ingested(IngestSummary),
    /// The object is not one ingest handles (outside `raw/`, or an unknown dataset).
    Skipped {
        key: String,
        reason: String,
    },
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct IngestSummary {
    pub source: String,
    pub dataset: String,
    pub batch: String,
    pub counts: Counts,
    /// Curated Parquet objects, one per row date.
    pub curated_keys: Vec<String>,
    pub quarantine_key: String,
    pub profile_key: String,
    pub manifest_key: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub batch_error: Option<String>,
}

/// A source object to ingest.
#[derive(Debug, Clone)]
pub struct Source<'a> {
    pub key: &'a str,
    /// The ETag from the event; when absent, the object's own ETag is used.
    pub etag: Option<&'a str>,
    /// The partition date (the object's creation date), so a redelivery lands in place.
    pub dt: NaiveDate,
}

/// Ingests one object of the lake's `raw/` zone, writing curated, quarantine and profile
/// objects whose keys derive from the source key and ETag.
pub async fn ingest_object(lake: &Lake, source: &Source<'_>) -> Result<IngestOutcome> {
    let skipped = |reason: String| Ok(IngestOutcome::Skipped { key: source.key.to_string(), reason });
    let Some(raw) = lake::parse_raw_key(source.key) else {
        return skipped(format!("not under {}<dataset>/", lake::RAW_PREFIX));
    };
    let contract_key = lake::dataset_contract(raw.dataset);
    let contract = match lake.get(&contract_key).await {
        Ok(o) => Contract::from_yaml(&String::from_utf8_lossy(&o.bytes), &contract_key)?,
        Err(Error::NotFound { .. }) => {
            return skipped(format!("unknown dataset {:?}: {contract_key} does not exist", raw.dataset));
        }
        Err(e) => return Err(e),
    };
    let baseline_key = lake::dataset_baseline(raw.dataset);
    let baseline = Profile::from_json(&lake.get(&baseline_key).await?.bytes, &baseline_key)?;
    let object = lake.get(source.key).await?;
    let etag = source.etag.map(str::to_string).or(object.etag).unwrap_or_default();
    let source = Source { etag: Some(&etag), ..source.clone() };
    let files = ingest_bytes(&contract, &baseline, &source, object.content_encoding.as_deref(), object.bytes);
    for (key, bytes, content_type) in files.objects {
        lake.put(&key, bytes, content_type).await?;
    }
    let m = files.manifest;
    Ok(IngestOutcome::Ingested(IngestSummary {
        source: m.source,
        dataset: m.dataset,
        batch: m.batch,
        counts: m.counts,
        curated_keys: m.curated,
        quarantine_key: m.outputs.quarantine,
        profile_key: m.outputs.profile,
        manifest_key: m.outputs.manifest,
        batch_error: m.batch_error,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::reading::RAW_TEXT_LIMIT;

    fn contract() -> Contract {
        Contract::from_yaml(
            "dataset: d\ncolumns:\n  - {name: x, type: float, min: 0}\n  - {name: k, type: category, allowed: [a, b]}\n",
            "t.yaml",
        )
        .expect("contract")
    }

    #[test]
    fn every_row_is_curated_or_quarantined() {
        let c = contract();
        let base = Profile::baseline(&c, &[]);
        let out = process_batch(&c, &base, "raw/d/b.csv", FileKind::Csv, b"x,k\n1,a\n-1,z\nabc,a\n2,b\n3\n", day());
        assert_eq!(out.counts, Counts { rows_read: 5, curated: 2, quarantined: 3 });
        assert_eq!(out.curated.len(), 1);
        let rows = crate::curated::read_rows(out.curated[0].1.clone()).expect("parquet");
        assert_eq!(rows, ["{x: 1.0, k: \"a\"}", "{x: 2.0, k: \"b\"}"]);
        let records: Vec<QuarantineRecord> = String::from_utf8_lossy(&out.quarantine_jsonl)
            .lines()
            .map(|l| serde_json::from_str(l).expect("json line"))
            .collect();
        assert_eq!(records.len(), 3);
        assert_eq!(records[0].line, Some(3));
        assert_eq!(records[0].raw.as_deref(), Some("-1,z"));
        let rules: Vec<&str> = records[0].reasons.iter().map(|r| r.rule.as_str()).collect();
        assert_eq!(rules, ["min", "allowed"], "every broken rule is reported");
        assert_eq!(out.profile.rows, 2);
    }

    #[test]
    fn a_batch_without_a_required_column_is_quarantined_whole() {
        let c = contract();
        let base = Profile::baseline(&c, &[]);
        let out = process_batch(&c, &base, "raw/d/b.csv", FileKind::Csv, b"x,other\n1,a\n2,b\n\n", day());
        assert_eq!(out.counts, Counts { rows_read: 2, curated: 0, quarantined: 2 });
        let rows = crate::curated::read_rows(out.curated[0].1.clone()).expect("an empty Parquet file");
        assert!(rows.is_empty());
        let record: QuarantineRecord =
            serde_json::from_slice(out.quarantine_jsonl.trim_ascii_end()).expect("one record");
        assert_eq!(record.batch_rows, Some(2));
        assert_eq!(record.reasons[0].message, "the header lacks column \"k\" required by the contract");
    }

    fn day() -> NaiveDate {
        NaiveDate::from_ymd_opt(2026, 5, 1).expect("date")
    }

    #[test]
    fn rows_are_partitioned_by_event_date() {
        let c = Contract::from_yaml(
            "dataset: d\nevent_time: t\ncolumns:\n  - {name: t, type: timestamp, nullable: true}\n  - {name: x, type: float}\n",
            "t.yaml",
        )
        .expect("contract");
        let base = Profile::baseline(&c, &[]);
        let csv = b"t,x\n2026-04-30T23:59:59Z,1\n2026-04-29,2\n,3\n2026-04-30T00:00:00+02:00,4\n";
        let out = process_batch(&c, &base, "raw/d/b.csv", FileKind::Csv, csv, day());
        let dates: Vec<(String, usize)> = out
            .curated
            .iter()
            .map(|(d, b)| (d.to_string(), crate::curated::read_rows(b.clone()).expect("parquet").len()))
            .collect();
        // 2026-04-30T00:00:00+02:00 is 2026-04-29 in UTC; the row without a time goes to the batch date.
        assert_eq!(
            dates,
            [("2026-04-29".to_string(), 2), ("2026-04-30".to_string(), 1), ("2026-05-01".to_string(), 1)]
        );
    }

    #[test]
    fn raw_text_is_bounded() {
        let c = contract();
        let base = Profile::baseline(&c, &[]);
        let long = format!("x,k\n{},a\n", "q".repeat(3 * RAW_TEXT_LIMIT));
        let out = process_batch(&c, &base, "raw/d/b.csv", FileKind::Csv, long.as_bytes(), day());
        assert_eq!(out.counts, Counts { rows_read: 1, curated: 0, quarantined: 1 });
        let record: QuarantineRecord =
            serde_json::from_slice(out.quarantine_jsonl.trim_ascii_end()).expect("one record");
        assert_eq!(record.raw.map(|r| r.len()), Some(RAW_TEXT_LIMIT));
        assert_eq!(record.reasons[0].rule, "type");
    }
}

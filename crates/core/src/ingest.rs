//! The ingest pipeline: a raw batch in, curated rows, quarantined rows and a profile out.
//!
//! Every data row of the batch ends up either curated or quarantined with its reasons;
//! [`Counts`] records that `rows_read == curated + quarantined`.

use chrono::NaiveDate;
use serde::{Deserialize, Serialize};

use crate::contract::Contract;
use crate::error::{Error, Result};
use crate::lake::{self, BatchKeys};
use crate::profile::Profile;
use crate::reading::read_csv;
use crate::storage::Lake;
use crate::validate::Reason;

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
    pub curated_csv: Vec<u8>,
    pub quarantine_jsonl: Vec<u8>,
    pub profile: Profile,
    pub counts: Counts,
    /// Set when the whole batch was rejected.
    pub batch_error: Option<String>,
}

/// Validates a CSV batch, splitting it into curated CSV, quarantine JSONL and a profile on
/// the baseline's bins.
pub fn process_csv(contract: &Contract, baseline: &Profile, source: &str, bytes: &[u8]) -> BatchOutput {
    let mut profile = Profile::empty_like(contract, baseline);
    let mut counts = Counts::default();
    let mut curated = csv::Writer::from_writer(Vec::new());
    let mut quarantine = Vec::new();
    let mut write_error = None;
    let header: Vec<&str> = contract.columns.iter().map(|c| c.name.as_str()).collect();
    if let Err(e) = curated.write_record(&header) {
        write_error = Some(e.to_string());
    }
    let result = read_csv(contract, bytes, |row| {
        counts.rows_read += 1;
        match row.outcome {
            Ok(values) => {
                profile.observe(contract, &values);
                if let Err(e) = curated.write_record(values.iter().map(|v| v.to_text())) {
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
    let mut curated_csv = curated.into_inner().unwrap_or_default();
    let batch_error = match (result, write_error) {
        (Err(e), _) => Some(e.0),
        // Writing CSV into memory cannot fail; if it ever did, no row may be lost silently.
        (Ok(()), Some(e)) => Some(format!("curated rows could not be written: {e}")),
        (Ok(()), None) => None,
    };
    if let Some(reason) = &batch_error {
        let rows = data_lines(bytes);
        counts = Counts { rows_read: rows, curated: 0, quarantined: rows };
        profile = Profile::empty_like(contract, baseline);
        curated_csv.clear();
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
    BatchOutput { curated_csv, quarantine_jsonl: quarantine, profile, counts, batch_error }
}

fn push_json_line(out: &mut Vec<u8>, record: &QuarantineRecord) {
    // A record of strings and integers always serialises.
    if serde_json::to_writer(&mut *out, record).is_ok() {
        out.push(b'\n');
    }
}

/// Data rows of a batch whose header could not be used: non-blank lines after the first.
fn data_lines(bytes: &[u8]) -> u64 {
    bytes.split(|b| *b == b'\n').skip(1).filter(|l| !l.iter().all(u8::is_ascii_whitespace)).count() as u64
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
    pub curated_key: String,
    pub quarantine_key: String,
    pub profile_key: String,
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
    let batch = lake::batch_id(source.key, &etag);
    let keys = BatchKeys::new(raw.dataset, source.dt, &batch);
    let output = process_csv(&contract, &baseline, source.key, &object.bytes);
    lake.put(&keys.curated, output.curated_csv, "text/csv").await?;
    lake.put(&keys.quarantine, output.quarantine_jsonl, "application/x-ndjson").await?;
    lake.put(&keys.profile, output.profile.to_json(), "application/json").await?;
    Ok(IngestOutcome::Ingested(IngestSummary {
        source: source.key.to_string(),
        dataset: raw.dataset.to_string(),
        batch,
        counts: output.counts,
        curated_key: keys.curated,
        quarantine_key: keys.quarantine,
        profile_key: keys.profile,
        batch_error: output.batch_error,
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
        let out = process_csv(&c, &base, "raw/d/b.csv", b"x,k\n1,a\n-1,z\nabc,a\n2,b\n3\n");
        assert_eq!(out.counts, Counts { rows_read: 5, curated: 2, quarantined: 3 });
        assert_eq!(String::from_utf8_lossy(&out.curated_csv), "x,k\n1,a\n2,b\n");
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
        let out = process_csv(&c, &base, "raw/d/b.csv", b"x,other\n1,a\n2,b\n\n");
        assert_eq!(out.counts, Counts { rows_read: 2, curated: 0, quarantined: 2 });
        assert!(out.curated_csv.is_empty());
        let record: QuarantineRecord =
            serde_json::from_slice(out.quarantine_jsonl.trim_ascii_end()).expect("one record");
        assert_eq!(record.batch_rows, Some(2));
        assert_eq!(record.reasons[0].message, "the header lacks column \"k\" required by the contract");
    }

    #[test]
    fn raw_text_is_bounded() {
        let c = contract();
        let base = Profile::baseline(&c, &[]);
        let long = format!("x,k\n{},a\n", "q".repeat(3 * RAW_TEXT_LIMIT));
        let out = process_csv(&c, &base, "raw/d/b.csv", long.as_bytes());
        assert_eq!(out.counts, Counts { rows_read: 1, curated: 0, quarantined: 1 });
        let record: QuarantineRecord =
            serde_json::from_slice(out.quarantine_jsonl.trim_ascii_end()).expect("one record");
        assert_eq!(record.raw.map(|r| r.len()), Some(RAW_TEXT_LIMIT));
        assert_eq!(record.reasons[0].rule, "type");
    }
}

//! The ingest pipeline: a raw batch in; curated rows (Parquet), quarantined rows, a profile
//! and a manifest out.
//!
//! Every data row of the batch ends up either curated or quarantined with its reasons;
//! [`Counts`] records that `rows_read == curated + quarantined`.

mod parallel;
mod pipeline;
mod spill;

use chrono::NaiveDate;
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use mlops_contract::Contract;
use mlops_contract::validate::Reason;
use mlops_drift::profile::Profile;
use mlops_formats::rows::FileKind;
use mlops_lake::Lake;
use mlops_lake::keys::{self, BatchKeys};
use mlops_lake::outputs::{MemoryObject, MemoryOutputs};

pub use pipeline::ingest_stream;

/// Rows of dates beyond the open curated files held in memory before they are sorted and
/// written to a temporary file.
pub const SPILL_BUFFER_BYTES: usize = 16 << 20;

/// What bounds the memory ingest uses, whatever the size of the batch.
///
/// Peak memory is about the process itself, plus `row_group_bytes` for the open Parquet row
/// groups, plus [`SPILL_BUFFER_BYTES`] (or `row_group_bytes`, when smaller) for the rows of
/// further dates before they go to a temporary file (and at most as much again of read
/// buffers when they are read back, whatever the number of runs), plus two upload parts per open output (`max_open_partitions` curated files and the
/// quarantine file), plus the longest row ([`mlops_formats::rows::MAX_ROW_BYTES`] at most).
///
/// Whatever the limits and the order of the rows, a batch writes one curated file per date it
/// touches: the first `max_open_partitions` dates are written as the rows arrive, and the
/// rows of further dates are spilled in date-sorted runs to the temporary directory (`/tmp`
/// on Lambda) and written date by date when the batch ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IngestLimits {
    /// Encoded Parquet data held in memory across all open curated files before the largest
    /// row group is closed; also the size at which any one row group closes.
    pub row_group_bytes: usize,
    /// Upload part size for outputs written to S3.
    pub part_bytes: usize,
    /// Curated files (one per event date) written while the batch is read; the rows of
    /// further dates wait in temporary files.
    pub max_open_partitions: usize,
    /// Threads that parse, validate and profile a CSV batch, in chunks of half a megabyte,
    /// beside the one that reads it and writes its outputs; 1 reads it on that thread alone.
    /// Each thread adds two chunks and their rows (about 7 MiB) to the memory bound. With more
    /// than 1, each open curated file is also encoded on a thread of its own, which holds one
    /// Arrow batch (at most 4 MiB of values) besides the one being filled.
    pub threads: usize,
}

impl Default for IngestLimits {
    fn default() -> Self {
        IngestLimits {
            row_group_bytes: mlops_formats::curated::ROW_GROUP_BYTES,
            part_bytes: mlops_lake::multipart::DEFAULT_PART_BYTES,
            max_open_partitions: 4,
            threads: 1,
        }
    }
}

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
    /// (key, bytes, content type) in the order they were committed, the manifest last.
    pub objects: Vec<MemoryObject>,
}

/// Runs one source object held in memory through the pipeline, with outputs in memory.
pub fn ingest_bytes(
    contract: &Contract,
    baseline: &Profile,
    source: &Source<'_>,
    content_encoding: Option<&str>,
    bytes: &[u8],
) -> Result<BatchFiles> {
    let outputs = MemoryOutputs::default();
    let limits = IngestLimits::default();
    let manifest = ingest_stream(contract, baseline, source, content_encoding, bytes, &outputs, &limits)?;
    Ok(BatchFiles { manifest, objects: outputs.into_objects() })
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

/// Ingests one object of the lake's `raw/` zone, writing curated, quarantine, profile and
/// manifest objects whose keys derive from the source key and ETag.
///
/// The object is read as a stream and the outputs written with multipart uploads, on a
/// blocking thread of the current Tokio runtime, within the memory `limits` set.
pub async fn ingest_object(lake: &Lake, source: &Source<'_>, limits: &IngestLimits) -> Result<IngestOutcome> {
    let skipped = |reason: String| Ok(IngestOutcome::Skipped { key: source.key.to_string(), reason });
    if !keys::is_contained(source.key) {
        return skipped("the key is absolute or has an empty, '.' or '..' segment; refused".into());
    }
    let Some(raw) = keys::parse_raw_key(source.key) else {
        return skipped(format!("not under {}<dataset>/", keys::RAW_PREFIX));
    };
    let contract_key = keys::dataset_contract(raw.dataset);
    let contract = match lake.get(&contract_key).await {
        Ok(o) => Contract::from_yaml(&String::from_utf8_lossy(&o.bytes), &contract_key)?,
        Err(mlops_lake::Error::NotFound { .. }) => {
            return skipped(format!("unknown dataset {:?}: {contract_key} does not exist", raw.dataset));
        }
        Err(e) => return Err(e.into()),
    };
    let baseline_key = keys::dataset_baseline(raw.dataset);
    let baseline = Profile::from_json(&lake.get(&baseline_key).await?.bytes, &baseline_key)?;
    let object = lake.open(source.key).await?;
    let etag = source.etag.map(str::to_string).or(object.etag.clone()).unwrap_or_default();
    let handle = tokio::runtime::Handle::current();
    let outputs = mlops_lake::multipart::S3Outputs::new(lake.clone(), handle.clone(), limits.part_bytes);
    let body = tokio_util::io::SyncIoBridge::new_with_handle(object.body.into_async_read(), handle);
    let (key, dt, limits) = (source.key.to_string(), source.dt, *limits);
    let encoding = object.content_encoding;
    let manifest = tokio::task::spawn_blocking(move || {
        let source = Source { key: &key, etag: Some(&etag), dt };
        ingest_stream(&contract, &baseline, &source, encoding.as_deref(), body, &outputs, &limits)
    })
    .await
    .map_err(|e| Error::Task { key: source.key.to_string(), message: e.to_string() })??;
    let m = manifest;
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
    use mlops_drift::profile::ColumnProfile;
    use mlops_formats::rows::RAW_TEXT_LIMIT;

    fn contract() -> Contract {
        Contract::from_yaml(
            "dataset: d\ncolumns:\n  - {name: x, type: float, min: 0}\n  - {name: k, type: category, allowed: [a, b]}\n",
            "t.yaml",
        )
        .expect("contract")
    }

    fn day() -> NaiveDate {
        NaiveDate::from_ymd_opt(2026, 5, 1).expect("date")
    }

    fn run(c: &Contract, key: &str, bytes: &[u8]) -> BatchFiles {
        let base = Profile::baseline(c, &[]);
        ingest_bytes(c, &base, &Source { key, etag: Some("e"), dt: day() }, None, bytes).expect("in memory")
    }

    fn object<'a>(files: &'a BatchFiles, prefix: &str) -> Vec<&'a MemoryObject> {
        files.objects.iter().filter(|(k, _, _)| k.starts_with(prefix)).collect()
    }

    fn quarantine(files: &BatchFiles) -> Vec<QuarantineRecord> {
        let (_, bytes, _) = object(files, "quarantine/")[0];
        String::from_utf8_lossy(bytes).lines().map(|l| serde_json::from_str(l).expect("json line")).collect()
    }

    #[test]
    fn every_row_is_curated_or_quarantined() {
        let c = contract();
        let out = run(&c, "raw/d/b.csv", b"x,k\n1,a\n-1,z\nabc,a\n2,b\n3\n");
        assert_eq!(out.manifest.counts, Counts { rows_read: 5, curated: 2, quarantined: 3 });
        let curated = object(&out, "curated/");
        assert_eq!(curated.len(), 1);
        let rows = mlops_formats::curated::read_rows(curated[0].1.clone()).expect("parquet");
        assert_eq!(rows, ["{x: 1.0, k: \"a\"}", "{x: 2.0, k: \"b\"}"]);
        let records = quarantine(&out);
        assert_eq!(records.len(), 3);
        assert_eq!(records[0].line, Some(3));
        assert_eq!(records[0].raw.as_deref(), Some("-1,z"));
        let rules: Vec<&str> = records[0].reasons.iter().map(|r| r.rule.as_str()).collect();
        assert_eq!(rules, ["min", "allowed"], "every broken rule is reported");
        let (key, profile, _) = object(&out, "profiles/")[0];
        assert_eq!(Profile::from_json(profile, key).expect("profile").rows, 2);
        assert_eq!(out.objects.last().map(|o| o.0.as_str()), Some(out.manifest.outputs.manifest.as_str()));
    }

    #[test]
    fn a_batch_without_a_required_column_is_quarantined_whole() {
        let c = contract();
        let out = run(&c, "raw/d/b.csv", b"x,other\n1,a\n2,b\n\n");
        assert_eq!(out.manifest.counts, Counts { rows_read: 2, curated: 0, quarantined: 2 });
        let rows =
            mlops_formats::curated::read_rows(object(&out, "curated/")[0].1.clone()).expect("an empty Parquet file");
        assert!(rows.is_empty());
        let records = quarantine(&out);
        assert_eq!(records.len(), 1);
        assert_eq!(records[0].batch_rows, Some(2));
        assert_eq!(records[0].reasons[0].message, "the header lacks column \"k\" required by the contract");
    }

    #[test]
    fn rows_are_partitioned_by_event_date() {
        let c = Contract::from_yaml(
            "dataset: d\nevent_time: t\ncolumns:\n  - {name: t, type: timestamp, nullable: true}\n  - {name: x, type: float}\n",
            "t.yaml",
        )
        .expect("contract");
        let csv = b"t,x\n2026-04-30T23:59:59Z,1\n2026-04-29,2\n,3\n2026-04-30T00:00:00+02:00,4\n";
        let out = run(&c, "raw/d/b.csv", csv);
        let dates: Vec<(String, usize)> = object(&out, "curated/")
            .iter()
            .map(|(k, b, _)| {
                let dt = k.split("dt=").nth(1).unwrap_or_default()[..10].to_string();
                (dt, mlops_formats::curated::read_rows(b.clone()).expect("parquet").len())
            })
            .collect();
        // 2026-04-30T00:00:00+02:00 is 2026-04-29 in UTC; the row without a time goes to the batch date.
        let mut dates = dates;
        dates.sort();
        assert_eq!(
            dates,
            [("2026-04-29".to_string(), 2), ("2026-04-30".to_string(), 1), ("2026-05-01".to_string(), 1)]
        );
        assert_eq!(out.manifest.curated.len(), 3);
    }

    /// A batch of several megabytes with what splits a CSV file wrongly if done naively:
    /// quoted commas and line breaks, CRLF and lone CR line ends, blank lines, invalid rows,
    /// an unclosed quote at the end, and a field longer than a chunk can grow to.
    fn awkward_csv(long_field: bool) -> Vec<u8> {
        let mut csv = b"t,x,k,note\r\n".to_vec();
        for i in 0..150_000u32 {
            let day = 1 + (i / 7000) % 4;
            let row = match i % 97 {
                0 => format!("2026-04-{day:02},{i},a,\"two\nlines, and a comma\"\r\n"),
                1 => format!("2026-04-{day:02},-{i},a,below the minimum\n"),
                2 => format!("2026-04-{day:02},{i},zz,not an allowed value\r"),
                3 => "\n\n".to_string(),
                4 => format!("2026-04-{day:02},{i},b\n"),
                5 => format!("2026-04-{day:02},{i}.5,b,\"\"\"quoted\"\" quotes\"\n"),
                _ => format!("2026-04-{day:02},{i},{},plain text {i}\n", if i % 2 == 0 { "a" } else { "b" }),
            };
            csv.extend_from_slice(row.as_bytes());
            if long_field && i == 120_000 {
                csv.extend_from_slice(b"2026-04-02,1,a,\"");
                csv.extend(std::iter::repeat_n(b'q', 3 << 20));
                csv.extend_from_slice(b"\"\n");
            }
        }
        csv.extend_from_slice(b"2026-04-03,5,a,\"never closed\n7,b\n");
        csv
    }

    /// Everything a batch's outputs say, but the KLL sketches, whose compaction is random.
    fn outcome(
        c: &Contract,
        csv: &[u8],
        threads: usize,
    ) -> (Counts, Vec<(String, Vec<String>)>, String, serde_json::Value) {
        let base = Profile::baseline(c, &[]);
        let outputs = MemoryOutputs::default();
        let limits = IngestLimits { threads, ..IngestLimits::default() };
        let source = Source { key: "raw/d/b.csv", etag: Some("e"), dt: day() };
        let m = ingest_stream(c, &base, &source, None, csv, &outputs, &limits).expect("in memory");
        let objects = outputs.into_objects();
        let mut curated: Vec<(String, Vec<String>)> = objects
            .iter()
            .filter(|(k, _, _)| k.starts_with("curated/"))
            .map(|(k, b, _)| (k.clone(), mlops_formats::curated::read_rows(b.clone()).expect("parquet")))
            .collect();
        curated.sort();
        let quarantine = objects.iter().find(|(k, _, _)| k.starts_with("quarantine/")).expect("quarantine");
        let mut profile: serde_json::Value =
            serde_json::from_slice(&objects.iter().find(|(k, _, _)| k.starts_with("profiles/")).expect("profile").1)
                .expect("profile JSON");
        // A HyperLogLog sketch merged from chunks holds the same registers in another layout:
        // its estimate is compared instead of its bytes.
        let parsed = Profile::from_json(&serde_json::to_vec(&profile).expect("JSON"), "batch").expect("profile");
        let estimate = |name: &str| match (parsed.columns.get(name), parsed.text.get(name)) {
            (Some(ColumnProfile::Numeric(n)), _) => n.distinct.estimate(),
            (Some(ColumnProfile::Categorical(c)), _) => c.distinct.estimate(),
            (None, Some(t)) => t.distinct.estimate(),
            (None, None) => f64::NAN,
        };
        for section in ["columns", "text"] {
            for (name, column) in profile[section].as_object_mut().expect("columns").iter_mut() {
                if let Some(c) = column.as_object_mut() {
                    c.insert("distinct".into(), format!("{:.6e}", estimate(name)).into());
                }
            }
        }
        for column in profile["columns"].as_object_mut().expect("columns").values_mut() {
            if let Some(c) = column.as_object_mut() {
                c.remove("sketch");
                // Sums in another order differ in their last bits.
                for moment in ["mean", "m2"] {
                    if let Some(v) = c.get(moment).and_then(serde_json::Value::as_f64) {
                        c.insert(moment.into(), format!("{v:.6e}").into());
                    }
                }
            }
        }
        (m.counts, curated, String::from_utf8_lossy(&quarantine.1).into_owned(), profile)
    }

    #[test]
    fn a_batch_read_on_several_threads_gives_what_one_thread_gives() {
        let c = Contract::from_yaml(
            "dataset: d\nevent_time: t\ncolumns:\n  - {name: t, type: timestamp}\n  - {name: x, type: float, min: 0}\n  - {name: k, type: category, allowed: [a, b]}\n  - {name: note, type: string, nullable: true}\n",
            "t.yaml",
        )
        .expect("contract");
        for long_field in [false, true] {
            let csv = awkward_csv(long_field);
            assert!(csv.len() > 8 * parallel::CHUNK_BYTES, "{} bytes", csv.len());
            let one = outcome(&c, &csv, 1);
            assert!(one.0.quarantined > 1000 && one.0.curated > 100_000, "{:?}", one.0);
            assert!(one.2.contains("never closed"), "the unclosed quote is quarantined as such");
            for threads in [2, 3] {
                let many = outcome(&c, &csv, threads);
                assert_eq!(many.0, one.0, "counts, {threads} threads");
                assert!(many.1 == one.1, "curated files and rows differ with {threads} threads");
                let first_difference = many.2.lines().zip(one.2.lines()).find(|(a, b)| a != b);
                assert!(
                    many.2 == one.2,
                    "quarantine records, lines included, {threads} threads: first difference {first_difference:?}"
                );
                assert_eq!(many.3, one.3, "profile, {threads} threads");
            }
        }
    }

    #[test]
    fn more_dates_than_open_files_still_give_one_file_per_date_and_lose_no_row() {
        let c = Contract::from_yaml(
            "dataset: d\nevent_time: t\ncolumns:\n  - {name: t, type: timestamp}\n  - {name: x, type: float}\n",
            "t.yaml",
        )
        .expect("contract");
        let mut csv = String::from("t,x\n");
        for i in 0..4000 {
            csv.push_str(&format!("2026-04-{:02},{i}\n", 1 + (i * 7) % 5));
        }
        let base = Profile::baseline(&c, &[]);
        // With two threads, each open file is also encoded on a thread of its own.
        for (open, row_group_bytes, threads) in
            [(1, 1 << 10, 1), (2, 4 << 10, 1), (4, 1 << 20, 1), (5, 1 << 20, 1), (2, 4 << 10, 2), (5, 1 << 20, 2)]
        {
            let outputs = MemoryOutputs::default();
            let limits =
                IngestLimits { max_open_partitions: open, row_group_bytes, threads, ..IngestLimits::default() };
            let source = Source { key: "raw/d/b.csv", etag: Some("e"), dt: day() };
            let m = ingest_stream(&c, &base, &source, None, csv.as_bytes(), &outputs, &limits).expect("in memory");
            assert_eq!(m.counts.curated, 4000);
            assert_eq!(m.curated.len(), 5, "one file per date with {open} open: {:?}", m.curated);
            let objects = outputs.into_objects();
            for (key, bytes, _) in objects.iter().filter(|(k, _, _)| k.starts_with("curated/")) {
                let day: u32 = key[key.find("dt=2026-04-").expect("dt") + 11..][..2].parse().expect("day");
                let xs: Vec<f64> = mlops_formats::curated::read_rows(bytes.clone())
                    .expect("parquet")
                    .iter()
                    .map(|r| r[r.rfind("x: ").expect("x") + 3..].trim_end_matches('}').parse().expect("x"))
                    .collect();
                let expected: Vec<f64> = (0..4000).filter(|i| 1 + (i * 7) % 5 == day).map(|i| i as f64).collect();
                assert_eq!(xs, expected, "{key}: the date's rows, in order, with {open} open, {threads} threads");
            }
        }
    }

    #[test]
    fn gzip_broken_part_way_quarantines_the_batch_with_the_rows_read() {
        use std::io::Write as _;
        let c = contract();
        let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        let mut text = String::from("x,k\n");
        for i in 0..5000 {
            text.push_str(&format!("{i},a\n"));
        }
        encoder.write_all(text.as_bytes()).expect("compress");
        let mut bytes = encoder.finish().expect("gzip");
        let cut = bytes.len() / 2;
        bytes[cut..].iter_mut().for_each(|b| *b = !*b);
        let out = run(&c, "raw/d/b.csv.gz", &bytes);
        let m = &out.manifest;
        let reason = m.batch_error.clone().expect("a batch error");
        assert!(reason.starts_with("the object is not valid gzip"), "{reason}");
        assert_eq!(m.counts.rows_read, m.counts.quarantined);
        assert_eq!(m.counts.curated, 0);
        let curated = object(&out, "curated/");
        assert_eq!(curated.len(), 1);
        assert!(mlops_formats::curated::read_rows(curated[0].1.clone()).expect("parquet").is_empty());
        assert_eq!(quarantine(&out).len(), 1);
    }

    #[test]
    fn raw_text_is_bounded() {
        let c = contract();
        let long = format!("x,k\n{},a\n", "q".repeat(3 * RAW_TEXT_LIMIT));
        let out = run(&c, "raw/d/b.csv", long.as_bytes());
        assert_eq!(out.manifest.counts, Counts { rows_read: 1, curated: 0, quarantined: 1 });
        let record = &quarantine(&out)[0];
        assert_eq!(record.raw.as_ref().map(|r| r.len()), Some(RAW_TEXT_LIMIT));
        assert_eq!(record.reasons[0].rule, "type");
    }
}

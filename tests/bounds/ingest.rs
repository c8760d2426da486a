//! Ingest's memory per row, per field, per label and per JSON value: each case at sizes
//! several times apart, through the streaming pipeline Lambda runs, with generated input
//! and outputs that are dropped (the small JSON ones kept) rather than stored.

use std::io::{Read, Write};
use std::sync::{Arc, Mutex};

use mlops_flows::ingest::{BatchManifest, IngestLimits, Source, ingest_stream};
use mlops_formats::rows::MAX_ROW_BYTES;
use mlops_lake::outputs::{ObjectWriter, Outputs};

use crate::{MIB, contract, letters, mb, peak_of, serial};

/// An input produced chunk by chunk, never held whole.
struct Generated<I, T> {
    chunks: I,
    current: Option<T>,
    at: usize,
}

impl<I: Iterator<Item = T>, T: AsRef<[u8]>> Read for Generated<I, T> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        loop {
            let current = self.current.as_ref().map_or(&[][..], AsRef::as_ref);
            if self.at < current.len() {
                let n = buf.len().min(current.len() - self.at);
                buf[..n].copy_from_slice(&current[self.at..self.at + n]);
                self.at += n;
                return Ok(n);
            }
            match self.chunks.next() {
                Some(next) => (self.current, self.at) = (Some(next), 0),
                None => return Ok(0),
            }
        }
    }
}

fn generated<T: AsRef<[u8]>>(chunks: impl Iterator<Item = T>) -> impl Read {
    Generated { chunks, current: None, at: 0 }
}

/// The objects kept, by key.
type Kept = Arc<Mutex<Vec<(String, Vec<u8>)>>>;

/// Outputs that drop the bytes of curated files and keep the small JSON ones.
#[derive(Default)]
struct Captured {
    kept: Kept,
}

struct Sink {
    key: String,
    keep: bool,
    bytes: Vec<u8>,
    kept: Kept,
}

impl Write for Sink {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        if self.keep {
            self.bytes.extend_from_slice(buf);
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl ObjectWriter for Sink {
    fn commit(self: Box<Self>) -> mlops_lake::Result<()> {
        let sink = *self;
        sink.kept.lock().expect("outputs").push((sink.key, sink.bytes));
        Ok(())
    }

    fn abort(self: Box<Self>) {}
}

impl Outputs for Captured {
    fn create(&self, key: &str, content_type: &'static str) -> mlops_lake::Result<Box<dyn ObjectWriter>> {
        let keep = content_type != "application/vnd.apache.parquet";
        Ok(Box::new(Sink { key: key.to_string(), keep, bytes: Vec::new(), kept: Arc::clone(&self.kept) }))
    }
}

impl Captured {
    fn object(&self, part: &str) -> Vec<u8> {
        let kept = self.kept.lock().expect("outputs");
        kept.iter().find(|(k, _)| k.contains(part)).map(|(_, b)| b.clone()).unwrap_or_default()
    }
}

/// Limits as the memory test of the Lambda binary sets them: 8 MiB of open row groups.
const LIMITS: IngestLimits =
    IngestLimits { row_group_bytes: 8 * MIB, part_bytes: 5 * MIB, max_open_partitions: 4, threads: 1 };

/// Ingests a generated object; returns its manifest, its outputs and the peak heap.
fn ingest(key: &str, input: impl Read) -> (BatchManifest, Captured, usize) {
    ingest_with(&contract(), key, input)
}

/// As [`ingest`], under another contract.
fn ingest_with(contract: &mlops_contract::Contract, key: &str, input: impl Read) -> (BatchManifest, Captured, usize) {
    let baseline = mlops_drift::Profile::baseline(contract, &[]);
    let outputs = Captured::default();
    let dt = chrono::NaiveDate::from_ymd_opt(2026, 5, 1).expect("date");
    let source = Source { key, etag: Some("e"), dt };
    let (manifest, peak) =
        peak_of(|| ingest_stream(contract, &baseline, &source, None, input, &outputs, &LIMITS).expect("ingested"));
    let counts = manifest.counts;
    assert_eq!(counts.rows_read, counts.curated + counts.quarantined, "every row curated or quarantined");
    (manifest, outputs, peak)
}

/// The reasons of the quarantined rows of a batch.
fn reasons(outputs: &Captured) -> Vec<String> {
    let quarantine = outputs.object("quarantine");
    quarantine
        .split(|b| *b == b'\n')
        .filter(|l| !l.is_empty())
        .flat_map(|line| {
            let record: serde_json::Value = serde_json::from_slice(line).expect("quarantine record");
            let reasons = record["reasons"].as_array().cloned().unwrap_or_default();
            reasons.into_iter().map(|r| r["message"].as_str().unwrap_or_default().to_string())
        })
        .collect()
}

fn header() -> Vec<u8> {
    b"id,note,label\n".to_vec()
}

/// The bound for one row: the row limit twice (a buffer and the one it grows into), plus
/// read buffers and the pipeline's small state.
const ROW_BOUND: usize = 2 * MAX_ROW_BYTES + 8 * MIB;

#[test]
fn a_compressed_line_of_commas_is_bounded_by_the_row_limit() {
    let _serial = serial();
    let mut peaks = Vec::new();
    for commas in [2 * MAX_ROW_BYTES, 8 * MAX_ROW_BYTES] {
        // The object is compressed before it is measured: 128 MiB of commas are half a
        // megabyte of gzip.
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        gz.write_all(&header()).expect("gzip");
        let block = vec![b','; MIB];
        for _ in 0..commas / MIB {
            gz.write_all(&block).expect("gzip");
        }
        gz.write_all(b"\n7,fine,a\n").expect("gzip");
        let object = gz.finish().expect("gzip");
        let (manifest, outputs, peak) = ingest("raw/bounds/commas.csv.gz", object.as_slice());
        assert_eq!((manifest.counts.curated, manifest.counts.quarantined), (1, 1), "{:?}", manifest.counts);
        let reasons = reasons(&outputs);
        assert!(reasons[0].contains("over the limit of 16777216 bytes"), "{reasons:?}");
        assert!(reasons.iter().all(|r| r.chars().count() < 1000));
        println!("{} commas in one line ({} of gzip): peak {}", commas, object.len(), mb(peak));
        peaks.push(peak);
    }
    for peak in peaks {
        assert!(peak < ROW_BOUND, "peak {} over the bound {}", mb(peak), mb(ROW_BOUND));
    }
}

/// The bound for batches of long fields: the open row groups (8 MiB here) and the Arrow batch
/// that takes them over it ([`mlops_formats::curated::ARROW_BATCH_BYTES`], 4 MiB), the next
/// batch in builders that grow by doubling (8 MiB), and 8 MiB for the page being encoded,
/// the longest row and the read buffers.
const FIELD_BOUND: usize = 8 * MIB + 4 * MIB + 8 * MIB + 8 * MIB;

#[test]
fn rows_of_megabyte_strings_are_handed_on_a_few_at_a_time() {
    let _serial = serial();
    let text = letters(MIB, 1);
    for rows in [300u64, 1200] {
        let text = text.clone();
        let chunks = std::iter::once(header()).chain((0..rows).map(move |i| {
            let mut row = format!("{i},{i:08}").into_bytes();
            row.extend_from_slice(&text);
            row.extend_from_slice(b",a\n");
            row
        }));
        let (manifest, _, peak) = ingest("raw/bounds/strings.csv", generated(chunks));
        assert_eq!(manifest.counts.curated, rows);
        println!("{rows} rows of 1 MiB strings: peak {}", mb(peak));
        assert!(peak < FIELD_BOUND, "{rows} rows: peak {} over the bound {}", mb(peak), mb(FIELD_BOUND));
    }
}

/// The bound for long labels: as for long fields; the profile holds stand-ins of at most
/// [`mlops_drift::profile::LABEL_BYTES`] bytes for at most 1,000 labels.
const LABEL_BOUND: usize = FIELD_BOUND;

#[test]
fn distinct_long_labels_are_profiled_by_bounded_stand_ins() {
    let _serial = serial();
    for (labels, label_bytes) in [(1000u64, 256 << 10), (4000, 64 << 10)] {
        let text = letters(label_bytes, 2);
        let chunks = std::iter::once(header()).chain((0..labels).map(move |i| {
            let mut row = format!("{i},n,{i:08}").into_bytes();
            row.extend_from_slice(&text[8..]);
            row.push(b'\n');
            row
        }));
        let (manifest, outputs, peak) = ingest("raw/bounds/labels.csv", generated(chunks));
        assert_eq!(manifest.counts.curated, labels);
        let profile = outputs.object("profiles/");
        let json: serde_json::Value = serde_json::from_slice(&profile).expect("profile");
        let label = &json["columns"]["label"];
        assert_eq!(label["count"], labels);
        println!("{labels} labels of {label_bytes} bytes: peak {}, profile {} bytes", mb(peak), profile.len());
        assert!(profile.len() < 512 << 10, "profile of {} bytes", profile.len());
        assert!(peak < LABEL_BOUND, "peak {} over the bound {}", mb(peak), mb(LABEL_BOUND));
    }
    // Below the spill to a sketch, the labels are counted exactly under their stand-ins.
    let text = letters(256 << 10, 3);
    let chunks = std::iter::once(header()).chain((0..10u64).map(move |i| {
        let mut row = format!("{i},n,{}", i % 2).into_bytes();
        row.extend_from_slice(&text);
        row.push(b'\n');
        row
    }));
    let (_, outputs, _) = ingest("raw/bounds/labels.csv", generated(chunks));
    let json: serde_json::Value = serde_json::from_slice(&outputs.object("profiles/")).expect("profile");
    let counts = json["columns"]["label"]["counts"].as_object().expect("exact counts").clone();
    assert_eq!(counts.len(), 2);
    for (label, n) in counts {
        assert!(label.len() < 256 && label.contains("[262145 bytes, sha256 "), "{label}");
        assert_eq!(n, 5);
    }
}

/// The bound for a JSON value: the line held twice (a buffer and the one it grows into), and
/// the contract's fields; unknown keys are counted, not kept.
const JSON_BOUND: usize = 2 * MAX_ROW_BYTES + 8 * MIB;

#[test]
fn json_lines_rows_of_a_million_unknown_keys_are_bounded_by_the_row_limit() {
    let _serial = serial();
    // One line just under the row limit: the fields, then short unknown keys.
    let mut line = br#"{"id": 1, "note": "n", "label": "a""#.to_vec();
    let mut keys = 0u64;
    while line.len() < MAX_ROW_BYTES - 64 {
        write!(line, ",\"k{keys}\":0").expect("in memory");
        keys += 1;
    }
    line.extend_from_slice(b"}\n");
    // Shared, so that the generator copies nothing.
    let line: Arc<[u8]> = line.into();
    let last: Arc<[u8]> = b"{\"id\": 2}\n".as_slice().into();
    for rows in [1usize, 4] {
        let chunks = std::iter::repeat_n(Arc::clone(&line), rows).chain(std::iter::once(Arc::clone(&last)));
        let (manifest, outputs, peak) = ingest("raw/bounds/keys.jsonl", generated(chunks));
        assert_eq!((manifest.counts.curated, manifest.counts.quarantined), (rows as u64, 1));
        let reasons = reasons(&outputs);
        assert!(reasons[0].starts_with("note: ") || reasons[0].starts_with("label: "), "{reasons:?}");
        println!("{rows} JSON rows of {} bytes with {keys} keys: peak {}", line.len(), mb(peak));
        assert!(peak < JSON_BOUND, "peak {} over the bound {}", mb(peak), mb(JSON_BOUND));
    }
}

#[test]
fn a_header_of_700_000_names_is_checked_in_bounded_memory() {
    let _serial = serial();
    // Just under the row limit, which counts 16 bytes of offsets per field: the contract's
    // columns, then distinct names of 6 bytes (about 730,000 of them).
    let mut header = b"id,note,label".to_vec();
    let mut names = 0u64;
    while header.len() + 16 * (names as usize + 4) < MAX_ROW_BYTES - 64 {
        write!(header, ",c{names:05x}").expect("in memory");
        names += 1;
    }
    header.push(b'\n');
    let mut row = b"1,n,a".to_vec();
    row.extend(std::iter::repeat_n(b",0".as_slice(), names as usize).flatten());
    row.push(b'\n');
    let (header, row): (Arc<[u8]>, Arc<[u8]>) = (header.into(), row.into());
    let chunks = [Arc::clone(&header), Arc::clone(&row)].into_iter();
    let (manifest, _, peak) = ingest("raw/bounds/wide.csv", generated(chunks));
    assert_eq!((manifest.counts.curated, manifest.batch_error), (1, None));
    println!("a header of {} names in {} bytes: peak {}", names + 3, header.len(), mb(peak));
    // The record's buffers (its bytes and field offsets) and 4 bytes per name.
    assert!(peak < ROW_BOUND + 4 * names as usize, "peak {} over the bound", mb(peak));
}

/// The bound for a batch spread over many dates: the open row groups and the rows of further
/// dates waiting for the temporary file (8 MiB each under these limits), the runs' read
/// buffers (as much again at most), and the writers' and profile's state.
const DATES_BOUND: usize = 40 * MIB;

#[test]
fn rows_of_many_dates_in_no_order_spill_in_bounded_memory() {
    let _serial = serial();
    let contract = mlops_contract::Contract::from_yaml(
        "dataset: bounds\nevent_time: at\ncolumns:\n  - {name: at, type: timestamp}\n  - {name: id, type: int}\n  \
         - {name: note, type: string}\n",
        "dates.yaml",
    )
    .expect("contract");
    for rows in [400_000u64, 1_600_000] {
        // Each row on another of 60 dates than the one before it: four are written as they
        // come, the other 56 wait in runs.
        let chunks = std::iter::once(b"at,id,note\n".to_vec()).chain((0..rows).map(|i| {
            let day = 1 + (i * 7) % 60;
            let date = chrono::NaiveDate::from_ymd_opt(2026, 1, 1).expect("date") + chrono::Days::new(day);
            format!("{date},{i},row {i:012} of a batch over many dates\n").into_bytes()
        }));
        let (manifest, _, peak) = ingest_with(&contract, "raw/bounds/dates.csv", generated(chunks));
        assert_eq!(manifest.counts.curated, rows);
        assert_eq!(manifest.curated.len(), 60, "one file per date");
        println!("{rows} rows over 60 dates: peak {}", mb(peak));
        assert!(peak < DATES_BOUND, "{rows} rows: peak {} over the bound {}", mb(peak), mb(DATES_BOUND));
    }
}

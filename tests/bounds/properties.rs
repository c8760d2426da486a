//! The rows reader under random bytes and random mutations of valid CSV and JSON Lines: it
//! never panics, every row it reads is curated or quarantined, and its memory is bounded by
//! the longest record, never by the number of rows.

use proptest::prelude::*;
use proptest::test_runner::Config;

use mlops_flows::ingest::{Source, ingest_bytes};
use mlops_formats::rows::records::{CsvRecords, Lines, Record};
use mlops_formats::rows::{FileKind, LIMITS, ReadError, read_batch};

use crate::{contract, peak_of, serial};

/// Bytes that break formats: quotes, delimiters, line ends, NUL, invalid UTF-8, braces.
const NASTY: &[u8] = b"\",\r\n\0\xff\xc3{}[]: \\ab1";

#[derive(Debug, Clone)]
enum Mutation {
    Insert(usize, Vec<u8>),
    Delete(usize, usize),
    /// Repeats a range of the input many times: inputs of many rows.
    Repeat(usize, usize, usize),
    Truncate(usize),
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        (any::<usize>(), prop::collection::vec(prop::sample::select(NASTY), 1..8))
            .prop_map(|(at, bytes)| Mutation::Insert(at, bytes)),
        (any::<usize>(), 1usize..64).prop_map(|(at, n)| Mutation::Delete(at, n)),
        (any::<usize>(), 1usize..256, 2usize..400).prop_map(|(at, n, times)| Mutation::Repeat(at, n, times)),
        any::<usize>().prop_map(Mutation::Truncate),
    ]
}

fn apply(mut input: Vec<u8>, mutations: &[Mutation]) -> Vec<u8> {
    for m in mutations {
        let len = input.len();
        let at = |i: usize| if len == 0 { 0 } else { i % (len + 1) };
        match m {
            Mutation::Insert(i, bytes) => {
                let i = at(*i);
                input.splice(i..i, bytes.iter().copied());
            }
            Mutation::Delete(i, n) => {
                let i = at(*i);
                input.drain(i..(i + n).min(len));
            }
            Mutation::Repeat(i, n, times) => {
                let i = at(*i);
                let piece = input[i..(i + n).min(len)].to_vec();
                for _ in 1..*times {
                    input.splice(i..i, piece.iter().copied());
                }
            }
            Mutation::Truncate(i) => input.truncate(at(*i)),
        }
    }
    input
}

/// A valid row's values: id, note, label.
fn row() -> impl Strategy<Value = (i32, Vec<u8>, bool)> {
    (any::<i32>(), prop::collection::vec(prop::sample::select(&b"abc xyz,\"'"[..]), 0..12), any::<bool>())
}

fn csv(rows: &[(i32, Vec<u8>, bool)]) -> Vec<u8> {
    let mut text = b"id,note,label\n".to_vec();
    for (id, note, label) in rows {
        let note = String::from_utf8_lossy(note).replace('"', "\"\"");
        text.extend_from_slice(format!("{id},\"{note}\",{}\n", if *label { "a" } else { "b" }).as_bytes());
    }
    text
}

fn jsonl(rows: &[(i32, Vec<u8>, bool)]) -> Vec<u8> {
    let mut text = Vec::new();
    for (id, note, label) in rows {
        let line = serde_json::json!({"id": id, "note": String::from_utf8_lossy(note), "label": if *label { "a" } else { "b" }});
        text.extend_from_slice(line.to_string().as_bytes());
        text.push(b'\n');
    }
    text
}

/// The longest record the records reader finds in `input`, in bytes.
fn longest_record(kind: FileKind, input: &[u8]) -> u64 {
    let mut record = Record::default();
    let mut longest = 0;
    match kind {
        FileKind::Jsonl => {
            let mut lines = Lines::new(input, LIMITS);
            while lines.next_into(&mut record).expect("in memory") {
                longest = longest.max(record.len);
            }
        }
        _ => {
            let mut records = CsvRecords::new(input, b',', LIMITS);
            while records.next_into(&mut record).expect("in memory") {
                longest = longest.max(record.len);
            }
        }
    }
    longest
}

/// Checks the invariants on one input read as `kind`.
fn check(kind: FileKind, input: &[u8]) -> Result<(), TestCaseError> {
    let contract = contract();
    // The reader alone: every row handed on is valid or rejected, and its memory is bounded
    // by its longest record (its field and offset buffers, the raw text kept, the reasons),
    // whatever the number of rows.
    let ((valid, rejected, result), peak) = peak_of(|| {
        let (mut valid, mut rejected) = (0u64, 0u64);
        let result = read_batch(&contract, kind, input, |row| {
            match row.outcome {
                Ok(_) => valid += 1,
                Err(_) => rejected += 1,
            }
            Ok::<(), std::convert::Infallible>(())
        });
        (valid, rejected, result)
    });
    // Every byte of a record may end a field, whose offset takes 8 bytes in a buffer that
    // grows by doubling: 16 bytes per byte at most, plus the field buffer and the raw text.
    let bound = 64 * 1024 + 24 * longest_record(kind, input) as usize;
    prop_assert!(peak <= bound, "peak {peak} bytes over {bound} for {} input bytes", input.len());
    if let Err(e) = &result {
        prop_assert!(matches!(e, ReadError::Batch { .. }), "{e:?}");
        prop_assert!(e.to_string().chars().count() < 1000);
    }

    // The pipeline: rows read = curated + quarantined, with or without a batch error.
    let baseline = mlops_drift::Profile::baseline(&contract, &[]);
    let key = match kind {
        FileKind::Jsonl => "raw/bounds/b.jsonl",
        _ => "raw/bounds/b.csv",
    };
    let dt = chrono::NaiveDate::from_ymd_opt(2026, 5, 1).expect("date");
    let source = Source { key, etag: Some("e"), dt };
    let files = ingest_bytes(&contract, &baseline, &source, None, input).expect("content problems are not errors");
    let counts = files.manifest.counts;
    prop_assert_eq!(counts.rows_read, counts.curated + counts.quarantined);
    match &result {
        Ok(()) => {
            prop_assert_eq!(files.manifest.batch_error.as_deref(), None);
            prop_assert_eq!((counts.curated, counts.quarantined), (valid, rejected));
        }
        Err(ReadError::Batch { reason, rows }) => {
            prop_assert_eq!(files.manifest.batch_error.as_deref(), Some(reason.as_str()));
            prop_assert_eq!((counts.curated, counts.quarantined), (0, *rows));
        }
        Err(e) => prop_assert!(false, "{e:?}"),
    }
    let quarantine = files.objects.iter().find(|(k, _, _)| k.starts_with("quarantine/")).map(|(_, b, _)| b.as_slice());
    for line in quarantine.unwrap_or_default().split(|b| *b == b'\n').filter(|l| !l.is_empty()) {
        let record: serde_json::Value = serde_json::from_slice(line).expect("a quarantine record");
        for reason in record["reasons"].as_array().into_iter().flatten() {
            prop_assert!(reason["message"].as_str().is_some_and(|m| m.chars().count() < 1000));
        }
    }
    Ok(())
}

fn config() -> Config {
    Config { cases: 256, failure_persistence: None, ..Config::default() }
}

#[test]
fn random_bytes_never_break_the_reader() {
    let _serial = serial();
    proptest!(config(), |(input in prop::collection::vec(any::<u8>(), 0..2048), jsonl in any::<bool>())| {
        check(if jsonl { FileKind::Jsonl } else { FileKind::Csv }, &input)?;
    });
}

#[test]
fn mutated_csv_keeps_the_invariants() {
    let _serial = serial();
    proptest!(config(), |(rows in prop::collection::vec(row(), 0..20), mutations in prop::collection::vec(mutation(), 0..6))| {
        check(FileKind::Csv, &apply(csv(&rows), &mutations))?;
    });
}

#[test]
fn mutated_json_lines_keep_the_invariants() {
    let _serial = serial();
    proptest!(config(), |(rows in prop::collection::vec(row(), 0..20), mutations in prop::collection::vec(mutation(), 0..6))| {
        check(FileKind::Jsonl, &apply(jsonl(&rows), &mutations))?;
    });
}

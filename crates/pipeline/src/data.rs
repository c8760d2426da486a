//! Rows for training and evaluation from row files (curated Parquet, CSV, JSON Lines), with
//! the snapshot that records where they came from.

use mlops_contract::Contract;
use mlops_contract::validate::Value;
use mlops_formats::rows::{FileKind, ReadError, is_gzip, read_batch};
use mlops_train::{DataSnapshot, InputFile};
use sha2::{Digest, Sha256};

use crate::error::{Error, Result};

/// Valid rows of the contract (in contract column order) and the snapshot of their inputs.
#[derive(Debug, Default)]
pub struct Rows {
    pub rows: Vec<Vec<Value>>,
    pub snapshot: DataSnapshot,
}

impl Rows {
    /// Adds an object held in memory: curated `.parquet`, or `.csv`, `.jsonl`, `.ndjson`
    /// (optionally `.gz`), by name. Returns the rows it added and the rows the contract rejected.
    pub fn add_bytes(&mut self, contract: &Contract, name: &str, bytes: Vec<u8>) -> Result<(u64, u64)> {
        let sha256 = hex::encode(Sha256::digest(&bytes));
        let size = bytes.len() as u64;
        let (valid, rejected) = if name.ends_with(".parquet") {
            let rows = mlops_formats::curated::read_values(bytes.into(), contract)
                .map_err(|e| Error::Input(format!("reading {name}: {e}")))?;
            let n = rows.len() as u64;
            self.rows.extend(rows);
            (n, 0)
        } else if is_gzip(name, None) {
            let input = std::io::BufReader::new(flate2::read::MultiGzDecoder::new(std::io::Cursor::new(bytes)));
            self.collect(contract, name, input)?
        } else {
            self.collect(contract, name, std::io::Cursor::new(bytes))?
        };
        self.push(name, size, valid, rejected, sha256);
        Ok((valid, rejected))
    }

    /// Adds rows read from a stream whose size and SHA-256 the caller knows; returns as
    /// [`add_bytes`](Rows::add_bytes) does.
    pub fn add_reader(
        &mut self,
        contract: &Contract,
        name: &str,
        input: impl std::io::BufRead,
        size: u64,
        sha256: String,
    ) -> Result<(u64, u64)> {
        let (valid, rejected) = self.collect(contract, name, input)?;
        self.push(name, size, valid, rejected, sha256);
        Ok((valid, rejected))
    }

    /// Seals the snapshot: its digest over every input's key and SHA-256.
    pub fn finish(mut self) -> Rows {
        self.snapshot.sha256 = DataSnapshot::digest(&self.snapshot.inputs);
        self
    }

    fn collect(&mut self, contract: &Contract, name: &str, input: impl std::io::BufRead) -> Result<(u64, u64)> {
        let (mut valid, mut rejected) = (0u64, 0u64);
        let rows = &mut self.rows;
        let result = read_batch(contract, FileKind::of(name), input, |row| {
            match row.outcome {
                Ok(values) => {
                    rows.push(values);
                    valid += 1;
                }
                Err(_) => rejected += 1,
            }
            Ok::<(), std::convert::Infallible>(())
        });
        match result {
            Ok(()) => Ok((valid, rejected)),
            Err(ReadError::Batch { reason, .. }) => Err(Error::Input(format!("{name}: {reason}"))),
            Err(e) => Err(Error::Input(format!("reading {name}: {e}"))),
        }
    }

    fn push(&mut self, name: &str, bytes: u64, valid: u64, rejected: u64, sha256: String) {
        self.snapshot.rows += valid;
        self.snapshot.rejected += rejected;
        self.snapshot.inputs.push(InputFile { key: name.to_string(), bytes, rows: valid + rejected, sha256 });
    }
}

/// Whether a key names rows: curated Parquet, or CSV and JSON Lines (optionally gzip).
pub fn readable(key: &str) -> bool {
    let rows = key.strip_suffix(".gz").unwrap_or(key);
    key.ends_with(".parquet") || [".csv", ".jsonl", ".ndjson"].iter().any(|s| rows.ends_with(s))
}

/// Splits rows into training rows and a holdout: every fifth row (the 5th, 10th, …) is held
/// out, so that the split is the same on every run over the same snapshot and follows the
/// snapshot's order (days, batches) evenly.
pub fn split_holdout(rows: Vec<Vec<Value>>) -> (Vec<Vec<Value>>, Vec<Vec<Value>>) {
    let mut train = Vec::with_capacity(rows.len());
    let mut holdout = Vec::with_capacity(rows.len() / 5 + 1);
    for (i, row) in rows.into_iter().enumerate() {
        if i % 5 == 4 { holdout.push(row) } else { train.push(row) }
    }
    (train, holdout)
}

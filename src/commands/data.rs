//! Rows for training and evaluation, from local files or the lake, with the snapshot that
//! records where they came from.

use std::io::Read as _;
use std::path::Path;

use anyhow::{Context as _, bail};
use mlops_contract::Contract;
use mlops_contract::validate::Value;
use mlops_formats::rows::{FileKind, ReadError, is_gzip, open_file, read_batch};
use mlops_lake::Lake;
use mlops_train::{DataSnapshot, InputFile};
use sha2::{Digest, Sha256};

/// Valid rows of the contract (in contract column order) and the snapshot of their inputs.
#[derive(Debug)]
pub struct Rows {
    pub rows: Vec<Vec<Value>>,
    pub snapshot: DataSnapshot,
}

/// Whether an input names the lake: `s3://bucket/key` (an object, or a prefix ending in `/`).
fn s3_uri(input: &str) -> Option<(&str, &str)> {
    input.strip_prefix("s3://").and_then(|rest| rest.split_once('/'))
}

/// Reads every input: local files (`.csv`, `.jsonl`, `.ndjson`, optionally `.gz`, or the
/// curated `.parquet` ingest writes) and lake objects or prefixes (`s3://bucket/prefix/`).
/// Rows the contract rejects are counted and left out.
pub async fn read(contract: &Contract, inputs: &[String]) -> anyhow::Result<Rows> {
    let mut out = Rows { rows: Vec::new(), snapshot: DataSnapshot::default() };
    for input in inputs {
        match s3_uri(input) {
            Some((bucket, key)) => {
                let lake = Lake::new(mlops_lake::client::client_from_env().await, bucket);
                let keys = if key.is_empty() || key.ends_with('/') {
                    let listed = lake.list(key).await.with_context(|| format!("listing {input}"))?;
                    let keys: Vec<String> = listed.into_iter().filter(|k| !k.ends_with('/') && readable(k)).collect();
                    if keys.is_empty() {
                        bail!("{input} holds no .parquet, .csv or .jsonl object");
                    }
                    keys
                } else {
                    vec![key.to_string()]
                };
                for key in keys {
                    let object = lake.get(&key).await.with_context(|| format!("reading s3://{bucket}/{key}"))?;
                    let name = format!("s3://{bucket}/{key}");
                    add(&mut out, contract, &name, object.bytes.to_vec())?;
                }
            }
            None => {
                let path = Path::new(input);
                if path.is_dir() {
                    bail!("{input} is a directory; name the files (or an s3:// prefix)");
                }
                if input.ends_with(".parquet") {
                    let bytes = std::fs::read(path).with_context(|| format!("reading {input}"))?;
                    add(&mut out, contract, input, bytes)?;
                } else {
                    add_file(&mut out, contract, input, path)?;
                }
            }
        }
    }
    out.snapshot.sha256 = DataSnapshot::digest(&out.snapshot.inputs);
    Ok(out)
}

/// Whether a listed key holds rows: curated Parquet, or CSV and JSON Lines (optionally gzip).
fn readable(key: &str) -> bool {
    let rows = key.strip_suffix(".gz").unwrap_or(key);
    key.ends_with(".parquet") || [".csv", ".jsonl", ".ndjson"].iter().any(|s| rows.ends_with(s))
}

/// Adds an object held in memory.
fn add(out: &mut Rows, contract: &Contract, name: &str, bytes: Vec<u8>) -> anyhow::Result<()> {
    let sha256 = hex::encode(Sha256::digest(&bytes));
    let size = bytes.len() as u64;
    let (rows, rejected) = if name.ends_with(".parquet") {
        let rows =
            mlops_formats::curated::read_values(bytes.into(), contract).with_context(|| format!("reading {name}"))?;
        let n = rows.len();
        out.rows.extend(rows);
        (n as u64, 0)
    } else {
        let input: Box<dyn std::io::BufRead> = if is_gzip(name, None) {
            Box::new(std::io::BufReader::new(flate2::read::MultiGzDecoder::new(std::io::Cursor::new(bytes))))
        } else {
            Box::new(std::io::Cursor::new(bytes))
        };
        collect(out, contract, name, input)?
    };
    push(out, name, size, rows, rejected, sha256);
    Ok(())
}

/// Adds a local row file, read as a stream and digested as it is.
fn add_file(out: &mut Rows, contract: &Contract, name: &str, path: &Path) -> anyhow::Result<()> {
    let mut digest = Sha256::new();
    let mut file = std::fs::File::open(path).with_context(|| format!("reading {name}"))?;
    let mut buffer = vec![0; 1 << 16];
    let mut size = 0u64;
    loop {
        let n = file.read(&mut buffer).with_context(|| format!("reading {name}"))?;
        if n == 0 {
            break;
        }
        size += n as u64;
        digest.update(&buffer[..n]);
    }
    let input = open_file(path).with_context(|| format!("reading {name}"))?;
    let (rows, rejected) = collect(out, contract, name, input)?;
    push(out, name, size, rows, rejected, hex::encode(digest.finalize()));
    Ok(())
}

fn collect(
    out: &mut Rows,
    contract: &Contract,
    name: &str,
    input: impl std::io::BufRead,
) -> anyhow::Result<(u64, u64)> {
    let (mut valid, mut rejected) = (0u64, 0u64);
    let result = read_batch(contract, FileKind::of(name), input, |row| {
        match row.outcome {
            Ok(values) => {
                out.rows.push(values);
                valid += 1;
            }
            Err(_) => rejected += 1,
        }
        Ok::<(), std::convert::Infallible>(())
    });
    match result {
        Ok(()) => Ok((valid, rejected)),
        Err(ReadError::Batch { reason, .. }) => bail!("{name}: {reason}"),
        Err(e) => bail!("reading {name}: {e}"),
    }
}

fn push(out: &mut Rows, name: &str, bytes: u64, valid: u64, rejected: u64, sha256: String) {
    eprintln!(
        "read {name}: {valid} rows{}",
        if rejected > 0 { format!(" ({rejected} rejected by the contract)") } else { String::new() }
    );
    out.snapshot.rows += valid;
    out.snapshot.rejected += rejected;
    out.snapshot.inputs.push(InputFile { key: name.to_string(), bytes, rows: valid + rejected, sha256 });
}

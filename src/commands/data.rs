//! Rows for training and evaluation, from local files or the lake, with the snapshot that
//! records where they came from.

use std::io::Read as _;
use std::path::Path;

use anyhow::{Context as _, bail};
use mlops_contract::Contract;
use mlops_formats::rows::open_file;
use mlops_lake::Lake;
use mlops_pipeline::data::readable;
use sha2::{Digest, Sha256};

pub use mlops_pipeline::data::Rows;

/// Whether an input names the lake: `s3://bucket/key` (an object, or a prefix ending in `/`).
fn s3_uri(input: &str) -> Option<(&str, &str)> {
    input.strip_prefix("s3://").and_then(|rest| rest.split_once('/'))
}

/// Reads every input: local files (`.csv`, `.jsonl`, `.ndjson`, optionally `.gz`, or the
/// curated `.parquet` ingest writes) and lake objects or prefixes (`s3://bucket/prefix/`).
/// Rows the contract rejects are counted and left out.
pub async fn read(contract: &Contract, inputs: &[String]) -> anyhow::Result<Rows> {
    let mut out = Rows::default();
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
                    report(&name, out.add_bytes(contract, &name, object.bytes.to_vec())?);
                }
            }
            None => {
                let path = Path::new(input);
                if path.is_dir() {
                    bail!("{input} is a directory; name the files (or an s3:// prefix)");
                }
                if input.ends_with(".parquet") {
                    let bytes = std::fs::read(path).with_context(|| format!("reading {input}"))?;
                    report(input, out.add_bytes(contract, input, bytes)?);
                } else {
                    add_file(&mut out, contract, input, path)?;
                }
            }
        }
    }
    Ok(out.finish())
}

/// Says what an input gave.
fn report(name: &str, (valid, rejected): (u64, u64)) {
    eprintln!(
        "read {name}: {valid} rows{}",
        if rejected > 0 { format!(" ({rejected} rejected by the contract)") } else { String::new() }
    );
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
    report(name, out.add_reader(contract, name, input, size, hex::encode(digest.finalize()))?);
    Ok(())
}

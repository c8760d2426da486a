//! `mlops ingest`: the ingest pipeline on local files, for trying a contract before
//! deploying it. Outputs land under a directory with the lake's key layout.

use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::Context as _;
use mlops_core::ingest::{BatchManifest, QuarantineRecord, Source, ingest_bytes};
use mlops_core::{Contract, Profile};
use sha2::{Digest, Sha256};

/// What to ingest.
#[derive(Debug, Clone)]
pub struct LocalIngest {
    pub contract: PathBuf,
    /// A baseline profile whose histogram bins the batch profiles use; without one, numeric
    /// histograms have a single bin.
    pub baseline: Option<PathBuf>,
    pub files: Vec<PathBuf>,
    pub out: PathBuf,
}

/// Ingests every file and reports each batch to `report`; returns the batch manifests.
pub fn ingest_files(args: &LocalIngest, report: &mut impl Write) -> anyhow::Result<Vec<BatchManifest>> {
    let contract = Contract::load(&args.contract)?;
    let baseline = match &args.baseline {
        Some(path) => {
            let bytes = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
            Profile::from_json(&bytes, &path.display().to_string())?
        }
        None => Profile::baseline(&contract, &[]),
    };
    let today = chrono::Utc::now().date_naive();
    writeln!(report, "{:<28} {:>8} {:>8} {:>12}", "file", "rows", "curated", "quarantined")?;
    let mut manifests = Vec::new();
    for file in &args.files {
        let bytes = std::fs::read(file).with_context(|| format!("reading {}", file.display()))?;
        let name = file.file_name().and_then(|n| n.to_str()).unwrap_or("batch");
        let key = format!("raw/{}/{name}", contract.dataset);
        // A digest of the content stands in for the ETag: the same file maps to the same batch.
        let etag = hex::encode(Sha256::digest(&bytes));
        let source = Source { key: &key, etag: Some(&etag), dt: today };
        let files = ingest_bytes(&contract, &baseline, &source, None, bytes);
        for (key, bytes, _) in &files.objects {
            write_under(&args.out, key, bytes)?;
        }
        let m = files.manifest;
        let c = m.counts;
        writeln!(report, "{name:<28} {:>8} {:>8} {:>12}", c.rows_read, c.curated, c.quarantined)?;
        if let Some(reason) = &m.batch_error {
            writeln!(report, "    whole batch quarantined: {reason}")?;
        } else if c.quarantined > 0 {
            let quarantine = std::fs::read_to_string(args.out.join(&m.outputs.quarantine))?;
            for line in quarantine.lines().take(5) {
                let record: QuarantineRecord = serde_json::from_str(line)?;
                let reasons: Vec<String> = record.reasons.into_iter().map(|r| r.message).collect();
                writeln!(report, "    line {:>6}: {}", record.line.unwrap_or_default(), reasons.join("; "))?;
            }
            if c.quarantined > 5 {
                writeln!(
                    report,
                    "    … {} more in {}",
                    c.quarantined - 5,
                    args.out.join(&m.outputs.quarantine).display()
                )?;
            }
        }
        manifests.push(m);
    }
    writeln!(report, "outputs under {}", args.out.display())?;
    Ok(manifests)
}

fn write_under(root: &Path, key: &str, bytes: &[u8]) -> anyhow::Result<()> {
    let path = root.join(key);
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).with_context(|| format!("creating {}", parent.display()))?;
    }
    std::fs::write(&path, bytes).with_context(|| format!("writing {}", path.display()))
}

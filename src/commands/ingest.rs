//! `mlops ingest`: the ingest pipeline on local files, for trying a contract before
//! deploying it. Outputs land under a directory with the lake's key layout.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::PathBuf;

use anyhow::Context as _;
use clap::Args;
use mlops_contract::Contract;
use mlops_drift::Profile;
use mlops_flows::baseline::read_profile;
use mlops_flows::ingest::{BatchManifest, IngestLimits, QuarantineRecord, Source, ingest_stream};
use mlops_lake::outputs::{ObjectWriter, Outputs};
use sha2::{Digest, Sha256};

/// Run the ingest pipeline on local files, to try a contract before deploying it.
///
/// CSV or JSON Lines files (optionally .gz) give curated rows,
/// quarantined rows with reasons, a profile and a manifest per file, written under --out with
/// the lake's key layout. For trying a contract before deploying it. Every file is ingested
/// even when another fails; the exit status is non-zero if any failed.
#[derive(Debug, Clone, Args)]
pub struct IngestArgs {
    /// The data contract (YAML).
    #[arg(long)]
    pub contract: PathBuf,
    /// A baseline profile (e.g. a model version's baseline.json) for the histogram bins;
    /// without one, numeric histograms have a single bin.
    #[arg(long)]
    pub baseline: Option<PathBuf>,
    /// Directory for the outputs.
    #[arg(long)]
    pub out: PathBuf,
    /// Threads that parse, validate and profile a CSV file in chunks, beside the one that
    /// writes its outputs (INGEST_THREADS on Lambda). 1 reads it on one thread.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u16).range(1..=64))]
    pub threads: u16,
    /// Encoded Parquet held in memory before a row group is closed, in MiB
    /// (INGEST_ROW_GROUP_MB on Lambda).
    #[arg(long, value_name = "MIB", default_value_t = (IngestLimits::default().row_group_bytes >> 20) as u32,
          value_parser = clap::value_parser!(u32).range(1..=4096))]
    pub row_group_mb: u32,
    /// Curated files (event dates) written as rows arrive; the rows of further dates wait in
    /// the temporary directory, so that each date still gets one file (INGEST_OPEN_PARTITIONS
    /// on Lambda).
    #[arg(long, default_value_t = IngestLimits::default().max_open_partitions as u32,
          value_parser = clap::value_parser!(u32).range(1..=1024))]
    pub open_partitions: u32,
    /// Batch files to ingest.
    #[arg(required = true)]
    pub files: Vec<PathBuf>,
}

impl IngestArgs {
    /// The limits the flags set.
    pub fn limits(&self) -> IngestLimits {
        IngestLimits {
            row_group_bytes: (self.row_group_mb as usize) << 20,
            max_open_partitions: self.open_partitions as usize,
            threads: self.threads as usize,
            ..IngestLimits::default()
        }
    }

    pub fn run(self) -> anyhow::Result<()> {
        let ingested = ingest_files(&self, &mut std::io::stdout())?;
        if !ingested.failed.is_empty() {
            anyhow::bail!("{} of {} files could not be ingested", ingested.failed.len(), self.files.len());
        }
        Ok(())
    }
}

/// What `ingest_files` did: the manifests of the batches ingested, and the files that failed
/// with why.
#[derive(Debug)]
pub struct Ingested {
    pub manifests: Vec<BatchManifest>,
    pub failed: Vec<(PathBuf, String)>,
}

/// Ingests every file, reporting each batch (or its failure) to `report`.
pub fn ingest_files(args: &IngestArgs, report: &mut impl Write) -> anyhow::Result<Ingested> {
    let contract = Contract::load(&args.contract)?;
    let baseline = match &args.baseline {
        Some(path) => read_profile(path)?,
        None => Profile::baseline(&contract, &[]),
    };
    let outputs = DirOutputs { root: args.out.clone() };
    let limits = args.limits();
    writeln!(report, "{:<28} {:>8} {:>8} {:>12}", "file", "rows", "curated", "quarantined")?;
    let mut manifests = Vec::new();
    let mut failed = Vec::new();
    for file in &args.files {
        match ingest_file(&contract, &baseline, file, &outputs, &limits, &args.out, report) {
            Ok(m) => manifests.push(m),
            Err(e) => {
                let message = format!("{e:#}");
                writeln!(report, "{:<28} failed: {message}", file.display())?;
                failed.push((file.clone(), message));
            }
        }
    }
    writeln!(report, "outputs under {}", args.out.display())?;
    Ok(Ingested { manifests, failed })
}

fn ingest_file(
    contract: &Contract,
    baseline: &Profile,
    file: &std::path::Path,
    outputs: &DirOutputs,
    limits: &IngestLimits,
    out: &std::path::Path,
    report: &mut impl Write,
) -> anyhow::Result<BatchManifest> {
    let today = chrono::Utc::now().date_naive();
    {
        if file.is_dir() {
            anyhow::bail!("reading {}: it is a directory, not a file", file.display());
        }
        let input = File::open(file).with_context(|| format!("reading {}", file.display()))?;
        let meta = input.metadata().with_context(|| format!("reading {}", file.display()))?;
        let name = file.file_name().and_then(|n| n.to_str()).unwrap_or("batch");
        let key = format!("raw/{}/{name}", contract.dataset);
        // Path, size and modification time stand in for the ETag: the same unchanged file maps
        // to the same batch (and overwrites its earlier outputs).
        let modified = meta.modified().ok().and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok());
        let stamp = format!("{}\0{}\0{:?}", file.display(), meta.len(), modified);
        let etag = hex::encode(Sha256::digest(stamp.as_bytes()));
        let source = Source { key: &key, etag: Some(&etag), dt: today };
        let progress = indicatif::ProgressBar::new(meta.len()).with_style(
            indicatif::ProgressStyle::with_template(
                "{msg} {bar:30} {binary_bytes}/{binary_total_bytes} {binary_bytes_per_sec} eta {eta}",
            )
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
        );
        progress.set_message(name.to_string());
        let clock = std::time::Instant::now();
        let m = ingest_stream(contract, baseline, &source, None, progress.wrap_read(input), outputs, limits)
            .with_context(|| format!("ingesting {}", file.display()))?;
        progress.finish_and_clear();
        let seconds = clock.elapsed().as_secs_f64();
        let c = m.counts;
        writeln!(report, "{name:<28} {:>8} {:>8} {:>12}", c.rows_read, c.curated, c.quarantined)?;
        writeln!(
            report,
            "    {:.1} MB in {seconds:.2} s: {:.1} MB/s, {:.0} rows/s",
            m.bytes as f64 / 1e6,
            m.bytes as f64 / 1e6 / seconds.max(1e-9),
            c.rows_read as f64 / seconds.max(1e-9)
        )?;
        if let Some(reason) = &m.batch_error {
            writeln!(report, "    whole batch quarantined: {reason}")?;
        } else if c.quarantined > 0 {
            let quarantine = std::fs::read_to_string(out.join(&m.outputs.quarantine))?;
            for line in quarantine.lines().take(5) {
                let record: QuarantineRecord = serde_json::from_str(line)?;
                let reasons: Vec<String> = record.reasons.into_iter().map(|r| r.message).collect();
                writeln!(report, "    line {:>6}: {}", record.line.unwrap_or_default(), reasons.join("; "))?;
            }
            if c.quarantined > 5 {
                writeln!(report, "    … {} more in {}", c.quarantined - 5, out.join(&m.outputs.quarantine).display())?;
            }
        }
        Ok(m)
    }
}

/// Outputs as files under a directory, keyed as in the lake. A file is written beside its
/// final name and renamed into place on commit.
#[derive(Debug)]
struct DirOutputs {
    root: PathBuf,
}

impl Outputs for DirOutputs {
    fn create(&self, key: &str, _content_type: &'static str) -> mlops_lake::Result<Box<dyn ObjectWriter>> {
        let path = self.root.join(key);
        let partial = path.with_extension("partial");
        let io = |e: std::io::Error| mlops_lake::Error::Output { key: key.to_string(), message: e.to_string() };
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).map_err(io)?;
        }
        let file = File::create(&partial).map_err(io)?;
        Ok(Box::new(FileWriter { path, partial, file: BufWriter::with_capacity(1 << 20, file) }))
    }
}

#[derive(Debug)]
struct FileWriter {
    path: PathBuf,
    partial: PathBuf,
    file: BufWriter<File>,
}

impl Write for FileWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.file.write(buf)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.file.flush()
    }
}

impl ObjectWriter for FileWriter {
    fn commit(mut self: Box<Self>) -> mlops_lake::Result<()> {
        let failed = |e: std::io::Error| mlops_lake::Error::Output {
            key: self.path.display().to_string(),
            message: e.to_string(),
        };
        self.file.flush().map_err(failed)?;
        std::fs::rename(&self.partial, &self.path).map_err(failed)
    }

    fn abort(self: Box<Self>) {
        drop(self.file);
        // A partial file left behind is harmless; it is overwritten by the next run.
        let _ = std::fs::remove_file(&self.partial);
    }
}

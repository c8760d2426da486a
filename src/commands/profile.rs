//! `mlops profile`: rows into a mergeable profile.

use std::path::PathBuf;

use anyhow::Context as _;
use clap::Args;
use mlops_contract::Contract;
use mlops_flows::baseline::{profile_files, read_profile};

/// Profile rows into a mergeable profile (JSON).
///
/// Per numeric column: count, nulls, min, max,
/// mean, variance, a KLL sketch and a histogram; per categorical column counts per label (a
/// frequent-items sketch beyond 1000 labels). Without --baseline the profile is a baseline:
/// its histogram edges are the deciles of its own values.
#[derive(Debug, Args)]
pub struct ProfileArgs {
    /// The data contract (YAML).
    #[arg(long)]
    pub contract: PathBuf,
    /// Cut histograms at this profile's edges (e.g. a model version's baseline.json), so that
    /// the result merges with ingest's profiles.
    #[arg(long)]
    pub baseline: Option<PathBuf>,
    /// Where to write the profile.
    #[arg(long, short)]
    pub out: PathBuf,
    /// Rows: .csv, .jsonl or .ndjson, optionally .gz; taken together.
    #[arg(required = true, num_args = 1..)]
    pub files: Vec<PathBuf>,
}

impl ProfileArgs {
    pub fn run(self) -> anyhow::Result<()> {
        let contract = Contract::load(&self.contract)?;
        let baseline = self.baseline.as_deref().map(read_profile).transpose()?;
        let clock = std::time::Instant::now();
        let profiled = profile_files(&contract, &self.files, baseline.as_ref())?;
        let profile = &profiled.profile;
        std::fs::write(&self.out, profile.to_json()).with_context(|| format!("writing {}", self.out.display()))?;
        println!(
            "profile: {} rows of {} ({} rejected by the contract), {} columns, baseline {}, {:.2} s → {}",
            profile.rows,
            contract.dataset,
            profiled.rejected,
            profile.columns.len(),
            profile.cut_on(),
            clock.elapsed().as_secs_f64(),
            self.out.display()
        );
        Ok(())
    }
}

//! `mlops contract`: contracts written for the person who edits them.

use std::path::PathBuf;

use clap::{Args, Subcommand};
use mlops_formats::infer::{InferConfig, infer_csv};

#[derive(Debug, Subcommand)]
pub enum ContractCommand {
    Infer(InferArgs),
}

impl ContractCommand {
    pub fn run(self) -> anyhow::Result<()> {
        match self {
            ContractCommand::Infer(args) => args.run(&mut std::io::stdout()),
        }
    }
}

/// Infer a starting contract from CSV files (optionally gzip): the delimiter, each column's
/// type, nullability and range, the allowed values of columns with few distinct labels, the
/// event-time column, and the null spellings (NA, NaN, null, ...) and whole-number floats
/// (4.0 for an int) that pandas writes.
///
/// Ranges are the observed ones widened by --margin of their span on each side (never below
/// zero for a column with no negative value). The files are read whole unless --sample is
/// given, so every row of them is curated under the contract printed; with --sample, rows
/// beyond those read may fall outside it. Review it (names, ranges, labels, the features and
/// target a model needs) before publishing it. Example:
///
///   mlops contract infer --dataset orders data/*.csv > contract.yaml
#[derive(Debug, Args)]
pub struct InferArgs {
    /// The dataset's name (default: the first file's name up to its first dot).
    #[arg(long)]
    pub dataset: Option<String>,
    /// Rows read per file at most (default: every row).
    #[arg(long, value_name = "ROWS")]
    pub sample: Option<u64>,
    /// Share of each numeric range's span added on both sides.
    #[arg(long, default_value_t = 0.1, value_parser = parse_margin)]
    pub margin: f64,
    /// Text columns with at most this many distinct values become categories.
    #[arg(long, default_value_t = 20)]
    pub max_categories: usize,
    /// Write the contract here instead of printing it.
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// CSV files of the dataset, all with the same header.
    #[arg(required = true)]
    pub files: Vec<PathBuf>,
}

fn parse_margin(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(m) if (0.0..=10.0).contains(&m) => Ok(m),
        _ => Err(format!("{s:?} is not a share between 0 and 10 (0.1 widens each range by 10%)")),
    }
}

impl InferArgs {
    pub fn run(self, out: &mut dyn std::io::Write) -> anyhow::Result<()> {
        let dataset = match &self.dataset {
            Some(d) => d.clone(),
            None => {
                let file = self.files[0].file_name().map(|f| f.to_string_lossy().into_owned()).unwrap_or_default();
                let stem: String = file
                    .split('.')
                    .next()
                    .unwrap_or_default()
                    .chars()
                    .map(|c| if c.is_ascii_alphanumeric() || c == '-' || c == '_' { c } else { '_' })
                    .collect();
                if stem.is_empty() { "dataset".to_string() } else { stem }
            }
        };
        let config =
            InferConfig { dataset, sample: self.sample, margin: self.margin, max_categories: self.max_categories };
        let mut sources = Vec::with_capacity(self.files.len());
        for path in &self.files {
            let input =
                mlops_formats::rows::open_file(path).map_err(|e| anyhow::anyhow!("reading {}: {e}", path.display()))?;
            sources.push((path.display().to_string(), input));
        }
        let inferred = infer_csv(sources, &config, |name, rows| eprintln!("{name}: {rows} rows read"))
            .map_err(|e| anyhow::anyhow!("inferring a contract: {e}"))?;
        let names: Vec<String> = self.files.iter().map(|p| p.display().to_string()).collect();
        let yaml = inferred.to_yaml(&names, &config);
        match &self.out {
            Some(path) => {
                std::fs::write(path, &yaml).map_err(|e| anyhow::anyhow!("writing {}: {e}", path.display()))?;
                eprintln!("contract for {} written to {}", config.dataset, path.display());
            }
            None => out.write_all(yaml.as_bytes())?,
        }
        Ok(())
    }
}

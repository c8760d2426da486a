//! `mlops report`: find the drift and quality reports in the lake by date, without knowing
//! their keys.

use std::path::PathBuf;

use anyhow::{Context as _, bail};
use clap::{Args, Subcommand, ValueEnum};
use mlops_lake::Lake;

use super::{LakeArgs, lake_hint};

#[derive(Debug, Subcommand)]
pub enum ReportCommand {
    List(ListArgs),
    Open(OpenArgs),
}

impl ReportCommand {
    pub async fn run(self) -> anyhow::Result<()> {
        match self {
            ReportCommand::List(args) => args.run().await,
            ReportCommand::Open(args) => args.run().await,
        }
    }
}

/// The kinds of report.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Kind {
    /// drift-check's reports, per dataset: `reports/drift/<dataset>/`.
    Drift,
    /// The model-quality reports, per model: `reports/quality/<model>/`.
    Quality,
}

impl Kind {
    fn prefix(self) -> &'static str {
        match self {
            Kind::Drift => "reports/drift/",
            Kind::Quality => "reports/quality/",
        }
    }
}

/// One report: its kind, what it is of, its time and its keys.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Listed {
    pub kind: Kind,
    /// The dataset (drift) or model (quality).
    pub of: String,
    /// `YYYY-MM-DDTHH-MM-SSZ`, as in the key.
    pub at: String,
    pub json: String,
    pub html: Option<String>,
}

/// Every report of `kind` (both kinds when `None`) of `of` (every dataset or model when
/// `None`), oldest first.
pub async fn list(lake: &Lake, kind: Option<Kind>, of: Option<&str>) -> anyhow::Result<Vec<Listed>> {
    let mut out = Vec::new();
    for kind in [Kind::Drift, Kind::Quality].into_iter().filter(|k| kind.is_none_or(|want| want == *k)) {
        let prefix = match of {
            Some(name) => format!("{}{name}/", kind.prefix()),
            None => kind.prefix().to_string(),
        };
        let keys: Vec<String> = lake.list_objects(&prefix).await?.into_iter().map(|o| o.key).collect();
        for key in &keys {
            let Some(rest) = key.strip_prefix(kind.prefix()) else { continue };
            let Some((name, file)) = rest.split_once('/') else { continue };
            let Some(at) = file.strip_suffix(".json").filter(|f| !f.contains('/')) else { continue };
            let html = format!("{}{name}/{at}.html", kind.prefix());
            out.push(Listed {
                kind,
                of: name.to_string(),
                at: at.to_string(),
                json: key.clone(),
                html: keys.contains(&html).then_some(html),
            });
        }
    }
    out.sort_by(|a, b| (&a.at, &a.of).cmp(&(&b.at, &b.of)));
    Ok(out)
}

/// List the drift and quality reports in the lake, oldest first.
///
/// Each line gives the report's time, its kind, the dataset or model it is of, and the
/// s3:// keys of its JSON and (for drift) HTML page.
#[derive(Debug, Args)]
pub struct ListArgs {
    /// Only reports of this kind.
    #[arg(long, value_enum)]
    pub kind: Option<Kind>,
    /// Only reports of this dataset (drift) or model (quality).
    #[arg(long)]
    pub of: Option<String>,
    /// Only reports of this day (YYYY-MM-DD).
    #[arg(long)]
    pub date: Option<String>,
    #[command(flatten)]
    pub lake: LakeArgs,
}

impl ListArgs {
    pub async fn run(self) -> anyhow::Result<()> {
        let lake = self.lake.connect().await?;
        let reports = list(&lake, self.kind, self.of.as_deref()).await.map_err(lake_hint)?;
        let reports: Vec<&Listed> =
            reports.iter().filter(|r| self.date.as_deref().is_none_or(|d| r.at.starts_with(d))).collect();
        if reports.is_empty() {
            println!("no report in s3://{} matches", lake.bucket());
        }
        for r in reports {
            let kind = match r.kind {
                Kind::Drift => "drift",
                Kind::Quality => "quality",
            };
            let html = r.html.as_ref().map_or(String::new(), |h| format!("  {}", lake.uri(h)));
            println!("{}  {kind:<7}  {:<20}  {}{html}", r.at, r.of, lake.uri(&r.json));
        }
        Ok(())
    }
}

/// Fetch a drift report's HTML page (the latest, or the last of a day) and open it.
///
/// Writes the page to --out (a temporary file by default), prints its path, and opens it with
/// the desktop's browser (`xdg-open`, or `open` on macOS) unless --no-browser is given.
#[derive(Debug, Args)]
pub struct OpenArgs {
    /// The dataset whose drift report to open.
    #[arg(long)]
    pub dataset: String,
    /// The day (YYYY-MM-DD) whose last report to open; the latest report when not given.
    #[arg(long)]
    pub date: Option<String>,
    /// Where to write the page.
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Only write the page and print its path.
    #[arg(long)]
    pub no_browser: bool,
    #[command(flatten)]
    pub lake: LakeArgs,
}

impl OpenArgs {
    pub async fn run(self) -> anyhow::Result<()> {
        let lake = self.lake.connect().await?;
        let reports = list(&lake, Some(Kind::Drift), Some(&self.dataset)).await.map_err(lake_hint)?;
        let chosen =
            reports.iter().rfind(|r| r.html.is_some() && self.date.as_deref().is_none_or(|d| r.at.starts_with(d)));
        let Some(report) = chosen else {
            let when = self.date.as_deref().map_or(String::new(), |d| format!(" of {d}"));
            bail!(
                "no drift report{when} of dataset {} in s3://{}; `mlops report list` shows what there is",
                self.dataset,
                lake.bucket()
            );
        };
        let key = report.html.as_deref().unwrap_or_default();
        let page = lake.get(key).await.map_err(|e| lake_hint(e.into()))?.bytes;
        let path = match &self.out {
            Some(path) => path.clone(),
            None => std::env::temp_dir().join(format!("drift-{}-{}.html", self.dataset, report.at)),
        };
        std::fs::write(&path, &page).with_context(|| format!("writing {}", path.display()))?;
        println!("{} ({}) → {}", lake.uri(key), report.at, path.display());
        if !self.no_browser {
            let opener = if cfg!(target_os = "macos") { "open" } else { "xdg-open" };
            if std::process::Command::new(opener).arg(&path).status().map(|s| !s.success()).unwrap_or(true) {
                eprintln!("{opener} could not open it; open {} in a browser", path.display());
            }
        }
        Ok(())
    }
}

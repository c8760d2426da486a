//! The subcommands of `mlops`, one module each: an `Args` struct and its `run`.

pub mod ab;
pub mod cold_start;
pub mod contract;
pub mod data;
pub mod demo;
pub mod drift;
pub mod evaluate;
pub mod ingest;
pub mod invoke;
pub mod lake;
pub mod model;
pub mod pipeline;
pub mod profile;
pub mod quality;
pub mod report;
pub mod score;
pub mod serve;
pub mod train;

use clap::Args;
use mlops_lake::Lake;

/// The lake bucket, for the commands that use the lake.
#[derive(Debug, Clone, Args)]
pub struct LakeArgs {
    /// The lake bucket.
    #[arg(long, env = "LAKE_BUCKET", default_value = crate::DEFAULT_BUCKET)]
    pub bucket: String,
}

impl LakeArgs {
    /// A client of the lake that the environment points to: `AWS_ENDPOINT_URL_S3` (as `mlops
    /// lake serve` prints it) or AWS itself. With neither an endpoint nor a region set there is
    /// no lake to talk to, and the error says how to name one instead of letting the SDK probe
    /// instance metadata.
    pub async fn connect(&self) -> anyhow::Result<Lake> {
        let set = |name: &str| std::env::var_os(name).is_some_and(|v| !v.is_empty());
        let endpoint = ["AWS_ENDPOINT_URL_S3", "AWS_ENDPOINT_URL"].iter().any(|n| set(n));
        let region = ["AWS_REGION", "AWS_DEFAULT_REGION", "AWS_PROFILE"].iter().any(|n| set(n));
        if !endpoint && !region {
            anyhow::bail!(
                "no lake is configured: start one with `mlops lake serve --dir lake` (or `mlops serve`) and export \
                 the AWS_ENDPOINT_URL_S3 and credentials it prints, or set AWS_REGION and credentials for S3"
            );
        }
        Ok(Lake::new(mlops_lake::client::client_from_env().await, &self.bucket))
    }
}

/// Adds a hint to a lake error when the endpoint is local: the usual cause is that the lake
/// is not running.
pub fn lake_hint(e: anyhow::Error) -> anyhow::Error {
    match std::env::var("AWS_ENDPOINT_URL_S3").ok().filter(|v| !v.is_empty()) {
        Some(endpoint) if e.chain().any(|c| c.to_string().contains("dispatch failure")) => {
            e.context(format!("is the lake running? AWS_ENDPOINT_URL_S3={endpoint}"))
        }
        _ => e,
    }
}

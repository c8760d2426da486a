//! `mlops lake`: the embedded S3 lake on its own.

use std::path::PathBuf;

use clap::{Args, Subcommand};
use mlops_devkit::lake_server::{EmbeddedLake, LakeCredentials, ensure_bucket};

use super::LakeArgs;

#[derive(Debug, Subcommand)]
pub enum LakeCommand {
    /// Serve a directory as an S3-compatible endpoint on 127.0.0.1 until interrupted.
    Serve(ServeArgs),
}

impl LakeCommand {
    pub async fn run(self) -> anyhow::Result<()> {
        match self {
            LakeCommand::Serve(args) => args.run().await,
        }
    }
}

#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Directory holding the buckets (created if missing).
    #[arg(long)]
    pub dir: PathBuf,
    /// Port to listen on; 0 picks a free one.
    #[arg(long, default_value_t = 9000)]
    pub port: u16,
    #[command(flatten)]
    pub lake: LakeArgs,
}

impl ServeArgs {
    pub async fn run(self) -> anyhow::Result<()> {
        let bucket = &self.lake.bucket;
        let server = EmbeddedLake::start_with(&self.dir, self.port, LakeCredentials::from_env()).await?;
        ensure_bucket(&server.client(), bucket).await?;
        println!("Embedded S3 lake serving {} at {}", self.dir.display(), server.endpoint());
        println!("Bucket: {bucket}. Point the AWS SDKs, the CLI and the functions at it with:\n");
        for (name, value) in server.env_vars() {
            println!("  export {name}={value}");
        }
        println!("  export LAKE_BUCKET={bucket}");
        println!("\nPress Ctrl-C to stop.");
        tokio::signal::ctrl_c().await?;
        Ok(())
    }
}

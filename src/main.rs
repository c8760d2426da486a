//! The `mlops` command line: a short enum over the subcommands of `mlops::commands`.

use clap::{Parser, Subcommand};
use mlops::commands::{
    ab, cold_start, contract, demo, drift, evaluate, ingest, invoke, lake, model, pipeline, profile, quality, report,
    score, serve, train,
};

/// Serverless MLOps, locally: an embedded S3 lake, the model registry, and the Lambda
/// handlers run in-process.
#[derive(Debug, Parser)]
#[command(name = "mlops", version, about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Work with the embedded lake.
    #[command(subcommand)]
    Lake(lake::LakeCommand),
    /// Work with the model registry (in the lake that AWS_ENDPOINT_URL_S3 or AWS points to).
    #[command(subcommand)]
    Model(model::ModelCommand),
    /// The retraining state machine: run it locally, start a deployed run, read the records.
    #[command(subcommand)]
    Pipeline(pipeline::PipelineCommand),
    /// The A/B test between the champion and the challenger: compare them on outcomes.
    #[command(subcommand)]
    Ab(ab::AbCommand),
    /// Find the drift and quality reports in the lake by date, and open one.
    #[command(subcommand)]
    Report(report::ReportCommand),
    /// Contracts: infer one from CSV files.
    #[command(subcommand)]
    Contract(contract::ContractCommand),
    Serve(serve::ServeArgs),
    ColdStart(cold_start::ColdStartArgs),
    Invoke(invoke::InvokeArgs),
    Ingest(ingest::IngestArgs),
    Drift(drift::DriftArgs),
    Profile(profile::ProfileArgs),
    Score(score::ScoreArgs),
    Train(train::TrainArgs),
    Evaluate(evaluate::EvaluateArgs),
    Quality(quality::QualityArgs),
    Demo(demo::DemoArgs),
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    // Warnings of our own; the AWS SDK's chatter (credential and region probing) stays quiet
    // unless RUST_LOG asks for it.
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| "warn,aws_config=error,aws_smithy_runtime=error,aws_sdk_s3=error".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    match Cli::parse().command {
        Command::Lake(command) => command.run().await,
        Command::Model(command) => command.run().await,
        Command::Pipeline(command) => command.run().await,
        Command::Report(command) => command.run().await,
        Command::Contract(command) => command.run(),
        Command::Ab(command) => command.run().await,
        Command::Serve(args) => args.run().await,
        Command::ColdStart(args) => args.run().await,
        Command::Invoke(args) => args.run().await,
        Command::Ingest(args) => args.run(),
        Command::Drift(args) => args.run(),
        Command::Profile(args) => args.run(),
        Command::Score(args) => args.run().await,
        Command::Train(args) => args.run().await,
        Command::Evaluate(args) => args.run().await,
        Command::Quality(args) => args.run().await,
        Command::Demo(args) => args.run().await,
    }
}

//! The score Lambda: wires configuration and the S3 client, then runs the handler on batches
//! of the batch-score Distributed Map and on SQS records.

#![recursion_limit = "256"]

use lambda_runtime::{LambdaEvent, service_fn};
use mlops_lake::Lake;
use mlops_lake::client::client_from_env;
use mlops_lambda::process_env;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    lambda_runtime::tracing::init_default_subscriber();
    let config = mlops_lambda::init::checked(score::Config::from_env(&process_env())).await?;
    let lake = Lake::new(client_from_env().await, &config.bucket);
    let scorers = score::Scorers::default();
    let (lake, scorers, config) = (&lake, &scorers, &config);
    lambda_runtime::run(service_fn(move |event: LambdaEvent<serde_json::Value>| async move {
        score::handle(lake, scorers, config, event.payload).await
    }))
    .await
    .map_err(|e| anyhow::anyhow!(e))
}

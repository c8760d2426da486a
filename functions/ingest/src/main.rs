//! The ingest Lambda: wires configuration and the S3 client, then runs the handler.

use aws_lambda_events::event::s3::S3Event;
use lambda_runtime::{LambdaEvent, service_fn};
use mlops_lake::Lake;
use mlops_lake::client::client_from_env;
use mlops_lambda::process_env;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    lambda_runtime::tracing::init_default_subscriber();
    let config = mlops_lambda::init::checked(ingest::Config::from_env(&process_env())).await?;
    let lake = Lake::new(client_from_env().await, &config.bucket);
    let (lake, limits) = (&lake, &config.limits);
    lambda_runtime::run(service_fn(move |event: LambdaEvent<S3Event>| async move {
        ingest::handle(lake, limits, event.payload).await
    }))
    .await
    .map_err(|e| anyhow::anyhow!(e))
}

//! The drift-check Lambda: wires configuration, the S3 and EventBridge clients, then runs the
//! handler.

#![recursion_limit = "256"]

use aws_lambda_events::event::cloudwatch_events::CloudWatchEvent;
use lambda_runtime::{LambdaEvent, service_fn};
use mlops_lake::Lake;
use mlops_lake::client::client_from_env;
use mlops_lambda::process_env;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    lambda_runtime::tracing::init_default_subscriber();
    let config = mlops_lambda::init::checked(drift_check::Config::from_env(&process_env())).await?;
    let aws = aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await;
    let lake = Lake::new(client_from_env().await, &config.bucket);
    let events = aws_sdk_eventbridge::Client::new(&aws);
    let (lake, events, config) = (&lake, &events, &config);
    lambda_runtime::run(service_fn(move |event: LambdaEvent<CloudWatchEvent>| async move {
        drift_check::handle(lake, events, config, event.payload).await
    }))
    .await
    .map_err(|e| anyhow::anyhow!(e))
}

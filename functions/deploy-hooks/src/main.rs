//! The deploy-hooks Lambda: wires configuration and the S3, Lambda and CodeDeploy clients, then
//! runs the hook on each lifecycle event.

use lambda_runtime::{LambdaEvent, service_fn};
use mlops_lake::Lake;
use mlops_lake::client::client_from_env;
use mlops_lambda::process_env;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    lambda_runtime::tracing::init_default_subscriber();
    let config = mlops_lambda::init::checked(deploy_hooks::Config::from_env(&process_env())).await?;
    let aws = aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await;
    let lake = Lake::new(client_from_env().await, &config.bucket);
    let (lambda, codedeploy) = (aws_sdk_lambda::Client::new(&aws), aws_sdk_codedeploy::Client::new(&aws));
    let (lake, lambda, codedeploy, config) = (&lake, &lambda, &codedeploy, &config);
    lambda_runtime::run(service_fn(move |event: LambdaEvent<serde_json::Value>| async move {
        deploy_hooks::handle(lake, lambda, codedeploy, config, event.payload).await
    }))
    .await
    .map_err(|e| anyhow::anyhow!(e))
}

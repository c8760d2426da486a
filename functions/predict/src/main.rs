//! The predict Lambda: wires configuration, the S3 client and the router, then runs.
//!
//! Off Lambda (no `AWS_LAMBDA_RUNTIME_API`), it serves the same router on 127.0.0.1:`PORT`.

use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;

use mlops_core::config::{ModelConfig, process_env};
use mlops_core::storage::{Lake, client_from_env};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    lambda_http::tracing::init_default_subscriber();
    let env = process_env();
    let config = ModelConfig::from_env(&env)?;
    let limits = predict::Limits::from_env(&env)?;
    let lake = Lake::new(client_from_env().await, &config.bucket);
    let app = predict::App::load(&lake, &config, limits).await?;
    let router = predict::router(Arc::new(app));
    if std::env::var_os("AWS_LAMBDA_RUNTIME_API").is_some() {
        lambda_http::run(router).await.map_err(|e| anyhow::anyhow!(e))
    } else {
        let port = env.parsed("PORT", 8080u16)?;
        predict::serve_local(router, SocketAddr::from((Ipv4Addr::LOCALHOST, port))).await?;
        Ok(())
    }
}

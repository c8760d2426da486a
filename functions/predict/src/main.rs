//! The predict Lambda: wires configuration, the S3 client and the router, then runs.
//!
//! Off Lambda (no `AWS_LAMBDA_RUNTIME_API`), it serves the same router on `HOST`:`PORT`
//! (127.0.0.1:8080 unless set; a container sets `HOST=0.0.0.0`).

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use mlops_lake::Lake;
use mlops_lake::client::client_from_env;
use mlops_lambda::{Env, process_env};

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> anyhow::Result<()> {
    let workers = predict::worker_threads(&process_env());
    // With one worker (one core, or TOKIO_WORKER_THREADS=1), a runtime of one thread: the
    // multi-threaded scheduler would only add its hand-offs between that worker and the I/O
    // driver (5% of the single-row requests a core answers).
    let mut builder = match workers {
        Ok(n) if n > 1 => {
            let mut builder = tokio::runtime::Builder::new_multi_thread();
            builder.worker_threads(n);
            builder
        }
        _ => tokio::runtime::Builder::new_current_thread(),
    };
    builder.enable_all().build()?.block_on(run(workers))
}

async fn run(workers: Result<usize, mlops_lambda::ConfigError>) -> anyhow::Result<()> {
    let started = (Instant::now(), SystemTime::now());
    lambda_http::tracing::init_default_subscriber();
    let env = process_env();
    let loaded = match workers {
        Ok(_) => init(&env, started).await,
        Err(e) => Err(e.into()),
    };
    let app = match loaded {
        Ok(app) => app,
        Err(e) => {
            mlops_lambda::init::report(&format!("Init.{}", e.kind()), &e.to_string()).await;
            return Err(e.into());
        }
    };
    let router = predict::router(Arc::new(app));
    if std::env::var_os("AWS_LAMBDA_RUNTIME_API").is_some() {
        lambda_http::run(router).await.map_err(|e| anyhow::anyhow!(e))
    } else {
        let host = env.parsed("HOST", IpAddr::V4(Ipv4Addr::LOCALHOST))?;
        let port = env.parsed("PORT", 8080u16)?;
        predict::serve_local(router, SocketAddr::from((host, port))).await?;
        Ok(())
    }
}

/// Reads the configuration and loads the model version (and its shadow and A/B challenger,
/// concurrently) from the lake, then logs where the time went (`predict::init`, INFO).
async fn init<F: Fn(&str) -> Option<String>>(
    env: &Env<F>,
    (started, started_at): (Instant, SystemTime),
) -> Result<predict::App, predict::Error> {
    let ms = |d: Duration| d.as_secs_f64() * 1e3;
    let config = predict::Config::from_env(env)?;
    let configured = started.elapsed();
    let lake = Lake::new(client_from_env().await, &config.model.bucket);
    let client = started.elapsed();
    let mut app = predict::App::load_with(&lake, &config.model, config.limits, config.ab.as_ref()).await?;
    let loaded = started.elapsed();
    if let Some(capture) = &config.capture {
        let firehose = aws_sdk_firehose::Client::new(&aws_config::load_from_env().await);
        app.capture = Some(std::sync::Arc::new(predict::Capture::start(firehose, capture)));
    }
    let timings = app.champion.timings;
    tracing::info!(
        target: "predict::init",
        main_at_unix_us = started_at.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_micros() as u64),
        config_ms = ms(configured),
        client_ms = ms(client - configured),
        load_ms = ms(loaded - client),
        read_ms = ms(timings.read),
        build_ms = ms(timings.build),
        capture_ms = ms(started.elapsed() - loaded),
        init_ms = ms(started.elapsed()),
        "initialised"
    );
    Ok(app)
}

//! The embedded lake: an S3-compatible server (s3s over s3s-fs) on 127.0.0.1.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use anyhow::Context as _;
use aws_config::{BehaviorVersion, Region, SdkConfig};
use aws_sdk_s3::config::{Credentials, SharedCredentialsProvider};
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto::Builder as ConnBuilder;
use s3s::auth::SimpleAuth;
use s3s::service::S3ServiceBuilder;
use tokio::net::TcpListener;
use tokio::sync::watch;

/// Credentials the embedded server accepts. They protect nothing (the server listens on
/// loopback only); they exist because S3 clients sign every request.
pub const ACCESS_KEY_ID: &str = "mlops-local";
pub const SECRET_ACCESS_KEY: &str = "mlops-local-secret";
pub const REGION: &str = "us-east-1";

/// A running embedded lake. Dropping it stops the server.
#[derive(Debug)]
pub struct EmbeddedLake {
    addr: SocketAddr,
    root: PathBuf,
    stop: watch::Sender<bool>,
}

impl EmbeddedLake {
    /// Serves the directory `root` (one sub-directory per bucket) on 127.0.0.1:`port`
    /// (0 picks a free port).
    pub async fn start(root: &Path, port: u16) -> anyhow::Result<EmbeddedLake> {
        std::fs::create_dir_all(root).with_context(|| format!("creating {}", root.display()))?;
        let fs = s3s_fs::FileSystem::new(root)
            .map_err(|e| anyhow::anyhow!("opening {} as a lake: {e:?}", root.display()))?;
        let service = {
            let mut builder = S3ServiceBuilder::new(fs);
            builder.set_auth(SimpleAuth::from_single(ACCESS_KEY_ID, SECRET_ACCESS_KEY));
            builder.build()
        };
        let listener =
            TcpListener::bind(("127.0.0.1", port)).await.with_context(|| format!("binding 127.0.0.1:{port}"))?;
        let addr = listener.local_addr()?;
        let (stop, mut stopped) = watch::channel(false);
        tokio::spawn(async move {
            let http = ConnBuilder::new(TokioExecutor::new());
            loop {
                let socket = tokio::select! {
                    accepted = listener.accept() => match accepted {
                        Ok((socket, _)) => socket,
                        Err(e) => {
                            tracing::warn!(error = %e, "embedded lake: accept failed");
                            continue;
                        }
                    },
                    _ = stopped.changed() => break,
                };
                let conn = http.serve_connection(TokioIo::new(socket), service.clone()).into_owned();
                tokio::spawn(async move {
                    if let Err(e) = conn.await {
                        tracing::debug!(error = %e, "embedded lake: connection ended with an error");
                    }
                });
            }
        });
        Ok(EmbeddedLake { addr, root: root.to_path_buf(), stop })
    }

    /// The endpoint URL clients use, e.g. `http://127.0.0.1:9000`.
    pub fn endpoint(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    /// An SDK configuration that points every client at this server, as setting
    /// `AWS_ENDPOINT_URL_S3` and the credentials in the environment would.
    pub fn sdk_config(&self) -> SdkConfig {
        SdkConfig::builder()
            .behavior_version(BehaviorVersion::latest())
            .region(Region::new(REGION))
            .endpoint_url(self.endpoint())
            .credentials_provider(SharedCredentialsProvider::new(Credentials::new(
                ACCESS_KEY_ID,
                SECRET_ACCESS_KEY,
                None,
                None,
                "embedded-lake",
            )))
            .build()
    }

    /// An S3 client for this server.
    pub fn client(&self) -> aws_sdk_s3::Client {
        mlops_core::storage::client(&self.sdk_config(), true)
    }

    /// The environment variables that point aws-config (and so every function) at this server.
    pub fn env_vars(&self) -> Vec<(&'static str, String)> {
        vec![
            ("AWS_ENDPOINT_URL_S3", self.endpoint()),
            ("AWS_ACCESS_KEY_ID", ACCESS_KEY_ID.to_string()),
            ("AWS_SECRET_ACCESS_KEY", SECRET_ACCESS_KEY.to_string()),
            ("AWS_REGION", REGION.to_string()),
        ]
    }
}

impl Drop for EmbeddedLake {
    fn drop(&mut self) {
        let _ = self.stop.send(true);
    }
}

/// Creates `bucket` unless it exists.
pub async fn ensure_bucket(client: &aws_sdk_s3::Client, bucket: &str) -> anyhow::Result<()> {
    if client.head_bucket().bucket(bucket).send().await.is_ok() {
        return Ok(());
    }
    client
        .create_bucket()
        .bucket(bucket)
        .send()
        .await
        .map_err(|e| anyhow::anyhow!("creating bucket {bucket}: {}", aws_sdk_s3::error::DisplayErrorContext(e)))?;
    Ok(())
}

//! The embedded lake: an S3-compatible server (s3s over s3s-fs) on 127.0.0.1.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use aws_config::{BehaviorVersion, Region, SdkConfig};
use aws_sdk_s3::config::{Credentials, SharedCredentialsProvider};
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto::Builder as ConnBuilder;
use s3s::auth::SimpleAuth;
use s3s::service::S3ServiceBuilder;
use s3s::{S3, S3Request, S3Response, S3Result};
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
    pub async fn start(root: &Path, port: u16) -> crate::Result<EmbeddedLake> {
        let directory = |message: String| crate::Error::Directory { path: root.display().to_string(), message };
        std::fs::create_dir_all(root).map_err(|e| directory(e.to_string()))?;
        let fs = s3s_fs::FileSystem::new(root).map_err(|e| directory(format!("{e:?}")))?;
        let service = {
            let mut builder = S3ServiceBuilder::new(AtomicConditions { fs, conditional: tokio::sync::Mutex::new(()) });
            builder.set_auth(SimpleAuth::from_single(ACCESS_KEY_ID, SECRET_ACCESS_KEY));
            builder.build()
        };
        let listener = TcpListener::bind(("127.0.0.1", port)).await.map_err(|source| crate::Error::Bind {
            what: "the lake",
            port,
            source,
        })?;
        let addr = listener.local_addr().map_err(|source| crate::Error::Bind { what: "the lake", port, source })?;
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
        mlops_lake::client::client(&self.sdk_config(), true)
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
pub async fn ensure_bucket(client: &aws_sdk_s3::Client, bucket: &str) -> crate::Result<()> {
    if client.head_bucket().bucket(bucket).send().await.is_ok() {
        return Ok(());
    }
    client.create_bucket().bucket(bucket).send().await.map_err(|e| crate::Error::Bucket {
        bucket: bucket.to_string(),
        message: aws_sdk_s3::error::DisplayErrorContext(e).to_string(),
    })?;
    Ok(())
}

/// s3s-fs with its conditional writes made atomic: s3s-fs checks `If-None-Match: *` and then
/// writes, so two concurrent conditional writes of one key could both pass the check. Here
/// they take turns, as S3 guarantees ("if multiple conditional writes occur for the same
/// object name, the first write operation to finish succeeds").
struct AtomicConditions {
    fs: s3s_fs::FileSystem,
    conditional: tokio::sync::Mutex<()>,
}

impl std::fmt::Debug for AtomicConditions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("AtomicConditions")
    }
}

#[async_trait::async_trait]
impl S3 for AtomicConditions {
    async fn create_bucket(
        &self,
        req: S3Request<s3s::dto::CreateBucketInput>,
    ) -> S3Result<S3Response<s3s::dto::CreateBucketOutput>> {
        self.fs.create_bucket(req).await
    }

    async fn copy_object(
        &self,
        req: S3Request<s3s::dto::CopyObjectInput>,
    ) -> S3Result<S3Response<s3s::dto::CopyObjectOutput>> {
        contained(&req.input.key)?;
        self.fs.copy_object(req).await
    }

    async fn delete_bucket(
        &self,
        req: S3Request<s3s::dto::DeleteBucketInput>,
    ) -> S3Result<S3Response<s3s::dto::DeleteBucketOutput>> {
        self.fs.delete_bucket(req).await
    }

    async fn delete_object(
        &self,
        req: S3Request<s3s::dto::DeleteObjectInput>,
    ) -> S3Result<S3Response<s3s::dto::DeleteObjectOutput>> {
        contained(&req.input.key)?;
        self.fs.delete_object(req).await
    }

    async fn delete_objects(
        &self,
        req: S3Request<s3s::dto::DeleteObjectsInput>,
    ) -> S3Result<S3Response<s3s::dto::DeleteObjectsOutput>> {
        self.fs.delete_objects(req).await
    }

    async fn get_bucket_location(
        &self,
        req: S3Request<s3s::dto::GetBucketLocationInput>,
    ) -> S3Result<S3Response<s3s::dto::GetBucketLocationOutput>> {
        self.fs.get_bucket_location(req).await
    }

    async fn get_object(
        &self,
        req: S3Request<s3s::dto::GetObjectInput>,
    ) -> S3Result<S3Response<s3s::dto::GetObjectOutput>> {
        contained(&req.input.key)?;
        self.fs.get_object(req).await
    }

    async fn head_bucket(
        &self,
        req: S3Request<s3s::dto::HeadBucketInput>,
    ) -> S3Result<S3Response<s3s::dto::HeadBucketOutput>> {
        self.fs.head_bucket(req).await
    }

    async fn head_object(
        &self,
        req: S3Request<s3s::dto::HeadObjectInput>,
    ) -> S3Result<S3Response<s3s::dto::HeadObjectOutput>> {
        contained(&req.input.key)?;
        self.fs.head_object(req).await
    }

    async fn list_buckets(
        &self,
        req: S3Request<s3s::dto::ListBucketsInput>,
    ) -> S3Result<S3Response<s3s::dto::ListBucketsOutput>> {
        self.fs.list_buckets(req).await
    }

    async fn list_objects(
        &self,
        req: S3Request<s3s::dto::ListObjectsInput>,
    ) -> S3Result<S3Response<s3s::dto::ListObjectsOutput>> {
        self.fs.list_objects(req).await
    }

    async fn list_objects_v2(
        &self,
        req: S3Request<s3s::dto::ListObjectsV2Input>,
    ) -> S3Result<S3Response<s3s::dto::ListObjectsV2Output>> {
        self.fs.list_objects_v2(req).await
    }

    async fn create_multipart_upload(
        &self,
        req: S3Request<s3s::dto::CreateMultipartUploadInput>,
    ) -> S3Result<S3Response<s3s::dto::CreateMultipartUploadOutput>> {
        contained(&req.input.key)?;
        self.fs.create_multipart_upload(req).await
    }

    async fn upload_part(
        &self,
        req: S3Request<s3s::dto::UploadPartInput>,
    ) -> S3Result<S3Response<s3s::dto::UploadPartOutput>> {
        contained(&req.input.key)?;
        self.fs.upload_part(req).await
    }

    async fn upload_part_copy(
        &self,
        req: S3Request<s3s::dto::UploadPartCopyInput>,
    ) -> S3Result<S3Response<s3s::dto::UploadPartCopyOutput>> {
        self.fs.upload_part_copy(req).await
    }

    async fn list_parts(
        &self,
        req: S3Request<s3s::dto::ListPartsInput>,
    ) -> S3Result<S3Response<s3s::dto::ListPartsOutput>> {
        self.fs.list_parts(req).await
    }

    async fn abort_multipart_upload(
        &self,
        req: S3Request<s3s::dto::AbortMultipartUploadInput>,
    ) -> S3Result<S3Response<s3s::dto::AbortMultipartUploadOutput>> {
        self.fs.abort_multipart_upload(req).await
    }

    async fn put_object(
        &self,
        req: S3Request<s3s::dto::PutObjectInput>,
    ) -> S3Result<S3Response<s3s::dto::PutObjectOutput>> {
        contained(&req.input.key)?;
        if req.input.if_none_match.is_some() || req.input.if_match.is_some() {
            let _turn = self.conditional.lock().await;
            self.fs.put_object(req).await
        } else {
            self.fs.put_object(req).await
        }
    }

    async fn complete_multipart_upload(
        &self,
        req: S3Request<s3s::dto::CompleteMultipartUploadInput>,
    ) -> S3Result<S3Response<s3s::dto::CompleteMultipartUploadOutput>> {
        contained(&req.input.key)?;
        if req.input.if_none_match.is_some() || req.input.if_match.is_some() {
            let _turn = self.conditional.lock().await;
            self.fs.complete_multipart_upload(req).await
        } else {
            self.fs.complete_multipart_upload(req).await
        }
    }
}

/// Refuses keys that would leave their prefix on a file system: absolute, or with an empty, `.`
/// or `..` segment (S3 would store them literally; s3s-fs would resolve them).
fn contained(key: &str) -> S3Result<()> {
    if mlops_lake::keys::is_contained(key) {
        Ok(())
    } else {
        Err(s3s::s3_error!(InvalidArgument, "the key is absolute or has an empty, '.' or '..' segment"))
    }
}

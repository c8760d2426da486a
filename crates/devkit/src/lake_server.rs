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

/// The credentials the embedded server accepts unless others are given: S3 clients sign every
/// request. The server listens on loopback only and answers only requests addressed to a
/// loopback host name; set your own credentials ([`LakeCredentials::from_env`]) where other
/// local users could reach the port.
pub const ACCESS_KEY_ID: &str = "mlops-local";
pub const SECRET_ACCESS_KEY: &str = "mlops-local-secret";
pub const REGION: &str = "us-east-1";

/// The access key pair the embedded lake accepts.
#[derive(Clone, PartialEq, Eq)]
pub struct LakeCredentials {
    pub access_key_id: String,
    pub secret_access_key: String,
}

impl std::fmt::Debug for LakeCredentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LakeCredentials").field("access_key_id", &self.access_key_id).finish_non_exhaustive()
    }
}

impl Default for LakeCredentials {
    fn default() -> Self {
        LakeCredentials { access_key_id: ACCESS_KEY_ID.into(), secret_access_key: SECRET_ACCESS_KEY.into() }
    }
}

impl LakeCredentials {
    /// `MLOPS_LAKE_ACCESS_KEY_ID` and `MLOPS_LAKE_SECRET_ACCESS_KEY` when both are set, the
    /// defaults otherwise.
    pub fn from_env() -> LakeCredentials {
        match (std::env::var("MLOPS_LAKE_ACCESS_KEY_ID"), std::env::var("MLOPS_LAKE_SECRET_ACCESS_KEY")) {
            (Ok(id), Ok(secret)) if !id.is_empty() && !secret.is_empty() => {
                LakeCredentials { access_key_id: id, secret_access_key: secret }
            }
            _ => LakeCredentials::default(),
        }
    }
}

/// A running embedded lake. Dropping it stops the server.
#[derive(Debug)]
pub struct EmbeddedLake {
    addr: SocketAddr,
    root: PathBuf,
    credentials: LakeCredentials,
    stop: watch::Sender<bool>,
}

/// Whether a request is addressed to this machine by a loopback name (`127.0.0.1`, `[::1]`,
/// `localhost`, with any port). A page in a browser that rebinds a public name to 127.0.0.1
/// still sends its own name, and is refused.
fn loopback_host(headers: &http::HeaderMap) -> bool {
    let Some(host) = headers.get(http::header::HOST).and_then(|h| h.to_str().ok()) else { return false };
    let name = match host.strip_prefix('[') {
        Some(rest) => rest.split(']').next().unwrap_or_default(),
        None => host
            .rsplit_once(':')
            .map_or(host, |(name, port)| if port.chars().all(|c| c.is_ascii_digit()) { name } else { host }),
    };
    name.eq_ignore_ascii_case("localhost") || name.parse::<std::net::IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

impl EmbeddedLake {
    /// Serves the directory `root` (one sub-directory per bucket) on 127.0.0.1:`port`
    /// (0 picks a free port), with the default credentials.
    pub async fn start(root: &Path, port: u16) -> crate::Result<EmbeddedLake> {
        EmbeddedLake::start_with(root, port, LakeCredentials::default()).await
    }

    /// [`EmbeddedLake::start`] with the credentials given.
    pub async fn start_with(root: &Path, port: u16, credentials: LakeCredentials) -> crate::Result<EmbeddedLake> {
        let directory = |message: String| crate::Error::Directory { path: root.display().to_string(), message };
        std::fs::create_dir_all(root).map_err(|e| directory(e.to_string()))?;
        let fs = s3s_fs::FileSystem::new(root).map_err(|e| directory(format!("{e:?}")))?;
        let service = {
            let mut builder = S3ServiceBuilder::new(AtomicConditions { fs, conditional: tokio::sync::Mutex::new(()) });
            builder.set_auth(SimpleAuth::from_single(
                credentials.access_key_id.as_str(),
                credentials.secret_access_key.as_str(),
            ));
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
                        Ok((mut socket, _)) => {
                            crate::listen::no_delay(&mut socket);
                            socket
                        }
                        Err(e) => {
                            tracing::warn!(error = %e, "embedded lake: accept failed");
                            continue;
                        }
                    },
                    _ = stopped.changed() => break,
                };
                let s3 = service.clone();
                let guarded = hyper::service::service_fn(move |request: http::Request<hyper::body::Incoming>| {
                    let s3 = s3.clone();
                    async move {
                        if !loopback_host(request.headers()) {
                            let mut refused = http::Response::new(s3s::Body::from(
                                "the embedded lake answers only requests addressed to 127.0.0.1, [::1] or localhost"
                                    .to_string(),
                            ));
                            *refused.status_mut() = http::StatusCode::FORBIDDEN;
                            return Ok(refused);
                        }
                        hyper::service::Service::call(&s3, request).await
                    }
                });
                let conn = http.serve_connection(TokioIo::new(socket), guarded).into_owned();
                tokio::spawn(async move {
                    if let Err(e) = conn.await {
                        tracing::debug!(error = %e, "embedded lake: connection ended with an error");
                    }
                });
            }
        });
        Ok(EmbeddedLake { addr, root: root.to_path_buf(), credentials, stop })
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
                self.credentials.access_key_id.clone(),
                self.credentials.secret_access_key.clone(),
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
            ("AWS_ACCESS_KEY_ID", self.credentials.access_key_id.clone()),
            ("AWS_SECRET_ACCESS_KEY", self.credentials.secret_access_key.clone()),
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_loopback_host_names_are_answered() {
        let host = |value: &str| {
            let mut headers = http::HeaderMap::new();
            headers.insert(http::header::HOST, value.parse().expect("header"));
            loopback_host(&headers)
        };
        for ok in ["127.0.0.1:9000", "127.0.0.1", "localhost:9000", "LOCALHOST", "[::1]:9000", "127.8.9.10:1"] {
            assert!(host(ok), "{ok}");
        }
        for refused in ["evil.example:9000", "192.168.1.5:9000", "localhost.evil.example", "[2001:db8::1]:9000"] {
            assert!(!host(refused), "{refused}");
        }
        assert!(!loopback_host(&http::HeaderMap::new()), "no Host header");
    }
}

//! The lake bucket behind aws-sdk-s3.
//!
//! Clients are built from aws-config, so `AWS_ENDPOINT_URL_S3` (or `AWS_ENDPOINT_URL`)
//! points them at any S3-compatible endpoint; path-style addressing is used whenever an
//! endpoint is set. Nothing here knows whether that endpoint is AWS or a local server.

use aws_sdk_s3::Client;
use aws_sdk_s3::primitives::ByteStream;

use crate::error::{Error, Result};

/// Loads the AWS configuration from the environment and builds an S3 client for it.
pub async fn client_from_env() -> Client {
    let sdk = aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await;
    let endpoint_set =
        ["AWS_ENDPOINT_URL_S3", "AWS_ENDPOINT_URL"].iter().any(|v| std::env::var_os(v).is_some_and(|s| !s.is_empty()));
    client(&sdk, endpoint_set)
}

/// Builds an S3 client from an SDK configuration; `path_style` is needed by endpoints that
/// are not AWS (they do not resolve `<bucket>.<host>` names).
pub fn client(sdk: &aws_config::SdkConfig, path_style: bool) -> Client {
    let config =
        aws_sdk_s3::config::Builder::from(sdk).force_path_style(path_style || sdk.endpoint_url().is_some()).build();
    Client::from_conf(config)
}

/// An object read from the lake.
#[derive(Debug, Clone)]
pub struct Object {
    pub bytes: Vec<u8>,
    pub etag: Option<String>,
    /// The object's `Content-Encoding`, e.g. `gzip`.
    pub content_encoding: Option<String>,
}

/// An object as a listing shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Listed {
    pub key: String,
    pub size: i64,
    pub etag: Option<String>,
    /// Milliseconds since the epoch.
    pub last_modified: Option<i64>,
}

/// An object being read.
#[derive(Debug)]
pub struct ObjectStream {
    pub body: ByteStream,
    pub etag: Option<String>,
    pub content_encoding: Option<String>,
}

/// One bucket of the lake.
#[derive(Debug, Clone)]
pub struct Lake {
    client: Client,
    bucket: String,
}

impl Lake {
    pub fn new(client: Client, bucket: impl Into<String>) -> Lake {
        Lake { client, bucket: bucket.into() }
    }

    /// The `s3://` URI of a key of this bucket.
    pub fn uri(&self, key: &str) -> String {
        format!("s3://{}/{key}", self.bucket())
    }

    pub fn bucket(&self) -> &str {
        &self.bucket
    }

    /// The same S3 client on another bucket.
    pub fn with_bucket(&self, bucket: &str) -> Lake {
        Lake { client: self.client.clone(), bucket: bucket.to_string() }
    }

    pub(crate) fn client(&self) -> &Client {
        &self.client
    }

    pub(crate) fn failed(&self, operation: &'static str, key: &str, e: impl std::error::Error) -> Error {
        Error::Storage { operation, bucket: self.bucket.clone(), key: key.to_string(), message: causes(&e) }
    }

    /// Opens an object for reading as a stream.
    pub async fn open(&self, key: &str) -> Result<ObjectStream> {
        let out = self.client.get_object().bucket(&self.bucket).key(key).send().await.map_err(|e| {
            if e.as_service_error().is_some_and(|s| s.is_no_such_key()) {
                Error::NotFound { bucket: self.bucket.clone(), key: key.to_string() }
            } else {
                self.failed("GetObject", key, e)
            }
        })?;
        Ok(ObjectStream { body: out.body, etag: out.e_tag, content_encoding: out.content_encoding })
    }

    /// Reads a whole object (for small ones: contracts, profiles, models).
    pub async fn get(&self, key: &str) -> Result<Object> {
        let stream = self.open(key).await?;
        let bytes = stream.body.collect().await.map_err(|e| self.failed("GetObject", key, e))?.to_vec();
        Ok(Object { bytes, etag: stream.etag, content_encoding: stream.content_encoding })
    }

    /// Writes a whole object and returns its ETag.
    pub async fn put(&self, key: &str, bytes: Vec<u8>, content_type: &str) -> Result<Option<String>> {
        self.put_object(key, bytes, content_type, None).await
    }

    /// Writes a whole object only if its key is free (`If-None-Match: *`, which S3 and the
    /// embedded lake honour atomically). A taken key gives [`Error::Exists`].
    pub async fn put_if_absent(&self, key: &str, bytes: Vec<u8>, content_type: &str) -> Result<Option<String>> {
        self.put_object(key, bytes, content_type, Some(Condition::Absent)).await
    }

    /// Replaces an object only if it is still the one with `etag` (`If-Match`); a changed or
    /// missing object gives [`Error::Exists`].
    pub async fn put_if_match(
        &self,
        key: &str,
        bytes: Vec<u8>,
        content_type: &str,
        etag: &str,
    ) -> Result<Option<String>> {
        self.put_object(key, bytes, content_type, Some(Condition::Match(etag))).await
    }

    /// Deletes an object (a missing one is no error, as in S3).
    pub async fn delete(&self, key: &str) -> Result<()> {
        self.client
            .delete_object()
            .bucket(&self.bucket)
            .key(key)
            .send()
            .await
            .map_err(|e| self.failed("DeleteObject", key, e))?;
        Ok(())
    }

    async fn put_object(
        &self,
        key: &str,
        bytes: Vec<u8>,
        content_type: &str,
        condition: Option<Condition<'_>>,
    ) -> Result<Option<String>> {
        let mut request = self
            .client
            .put_object()
            .bucket(&self.bucket)
            .key(key)
            .content_type(content_type)
            .body(ByteStream::from(bytes));
        match condition {
            Some(Condition::Absent) => request = request.if_none_match("*"),
            Some(Condition::Match(etag)) => request = request.if_match(etag),
            None => {}
        }
        let out = request.send().await.map_err(|e| {
            let status = e.raw_response().map(|r| r.status().as_u16());
            // 412 Precondition Failed: the key exists (or, with If-Match, changed); 409
            // Conflict: a concurrent conditional write to the same key is in progress; 404: an
            // If-Match on a key that is gone.
            if condition.is_some() && matches!(status, Some(412 | 409 | 404)) {
                Error::Exists { bucket: self.bucket.clone(), key: key.to_string() }
            } else {
                self.failed("PutObject", key, e)
            }
        })?;
        Ok(out.e_tag)
    }

    /// Whether an object exists.
    pub async fn exists(&self, key: &str) -> Result<bool> {
        match self.client.head_object().bucket(&self.bucket).key(key).send().await {
            Ok(_) => Ok(true),
            Err(e) if e.as_service_error().is_some_and(|s| s.is_not_found()) => Ok(false),
            Err(e) => Err(self.failed("HeadObject", key, e)),
        }
    }

    /// Every object under `prefix` with its size and ETag, in key order.
    pub async fn list_objects(&self, prefix: &str) -> Result<Vec<Listed>> {
        let mut objects = Vec::new();
        let mut pages = self.client.list_objects_v2().bucket(&self.bucket).prefix(prefix).into_paginator().send();
        while let Some(page) = pages.next().await {
            let page = page.map_err(|e| self.failed("ListObjectsV2", prefix, e))?;
            objects.extend(page.contents().iter().filter_map(|o| {
                Some(Listed {
                    key: o.key()?.to_string(),
                    size: o.size().unwrap_or_default(),
                    etag: o.e_tag().map(|e| e.trim_matches('"').to_string()),
                    last_modified: o.last_modified().and_then(|t| t.to_millis().ok()),
                })
            }));
        }
        objects.sort_by(|a, b| a.key.cmp(&b.key));
        Ok(objects)
    }

    /// Every key under `prefix`, in key order.
    pub async fn list(&self, prefix: &str) -> Result<Vec<String>> {
        Ok(self.list_objects(prefix).await?.into_iter().map(|o| o.key).collect())
    }
}

/// The precondition of a conditional write.
#[derive(Debug, Clone, Copy)]
enum Condition<'a> {
    Absent,
    Match(&'a str),
}

/// An error and its causes, each once, as one line: the SDK's own `Display` of each level,
/// without its debug dump.
fn causes(e: &dyn std::error::Error) -> String {
    const MAX: usize = 500;
    let mut parts: Vec<String> = Vec::new();
    let mut next = Some(e);
    while let Some(err) = next {
        let text = err.to_string();
        if !text.is_empty() && !parts.iter().any(|p| p.contains(&text)) {
            parts.push(text);
        }
        next = err.source();
    }
    let mut line = parts.join(": ");
    if line.len() > MAX {
        let cut = (0..=MAX).rev().find(|&i| line.is_char_boundary(i)).unwrap_or(0);
        line.truncate(cut);
        line.push('…');
    }
    line
}

//! Streaming writes into the lake: objects of any size in multipart uploads, with at most
//! two parts per object in memory (the one being filled and the one being sent).
//!
//! The writers are synchronous (`std::io::Write`), for the ingest pipeline that runs on a
//! blocking thread; each S3 call is driven on the Tokio runtime given by its handle.

use std::io::Write;

use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::{CompletedMultipartUpload, CompletedPart};
use tokio::runtime::Handle;
use tokio::task::JoinHandle;

use crate::client::Lake;
use crate::error::{Error, Result};
use crate::outputs::{ObjectWriter, Outputs};

/// S3's smallest part (except the last one).
pub const MIN_PART_BYTES: usize = 5 << 20;

/// The part size used unless configured otherwise.
pub const DEFAULT_PART_BYTES: usize = 8 << 20;

/// Objects written to a lake bucket. An object smaller than one part is sent with a single
/// `PutObject`; a larger one with a multipart upload that is completed on commit and aborted
/// on abort or failure, so a key never shows a partial object.
#[derive(Debug, Clone)]
pub struct S3Outputs {
    lake: Lake,
    handle: Handle,
    part_bytes: usize,
}

impl S3Outputs {
    /// Outputs into `lake`, driven on `handle`; parts are `part_bytes` long (at least
    /// [`MIN_PART_BYTES`]).
    pub fn new(lake: Lake, handle: Handle, part_bytes: usize) -> S3Outputs {
        S3Outputs { lake, handle, part_bytes: part_bytes.max(MIN_PART_BYTES) }
    }
}

impl Outputs for S3Outputs {
    fn create(&self, key: &str, content_type: &'static str) -> Result<Box<dyn ObjectWriter>> {
        Ok(Box::new(MultipartWriter {
            lake: self.lake.clone(),
            handle: self.handle.clone(),
            key: key.to_string(),
            content_type,
            part_bytes: self.part_bytes,
            buffer: Vec::new(),
            upload_id: None,
            parts: Vec::new(),
            sending: None,
        }))
    }
}

type PartUpload = JoinHandle<Result<CompletedPart>>;

struct MultipartWriter {
    lake: Lake,
    handle: Handle,
    key: String,
    content_type: &'static str,
    part_bytes: usize,
    buffer: Vec<u8>,
    upload_id: Option<String>,
    parts: Vec<CompletedPart>,
    sending: Option<PartUpload>,
}

impl std::fmt::Debug for MultipartWriter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MultipartWriter").field("key", &self.key).field("parts", &self.parts.len()).finish()
    }
}

impl MultipartWriter {
    fn failed(&self, operation: &'static str, e: impl std::error::Error) -> Error {
        self.lake.failed(operation, &self.key, e)
    }

    fn upload_id(&mut self) -> Result<String> {
        if let Some(id) = &self.upload_id {
            return Ok(id.clone());
        }
        let request = self
            .lake
            .client()
            .create_multipart_upload()
            .bucket(self.lake.bucket())
            .key(&self.key)
            .content_type(self.content_type);
        let out = self.handle.block_on(request.send()).map_err(|e| self.failed("CreateMultipartUpload", e))?;
        let id = out.upload_id.ok_or_else(|| Error::Output {
            key: self.key.clone(),
            message: "CreateMultipartUpload returned no upload id".into(),
        })?;
        self.upload_id = Some(id.clone());
        Ok(id)
    }

    /// Waits for the part being sent, if any.
    fn wait(&mut self) -> Result<()> {
        if let Some(sending) = self.sending.take() {
            let part = self
                .handle
                .block_on(sending)
                .map_err(|e| Error::Output { key: self.key.clone(), message: e.to_string() })??;
            self.parts.push(part);
        }
        Ok(())
    }

    /// Starts sending the buffer as the next part, after the previous part has arrived.
    fn send_part(&mut self) -> Result<()> {
        let upload_id = self.upload_id()?;
        self.wait()?;
        let number = i32::try_from(self.parts.len() + 1).unwrap_or(i32::MAX);
        let body = std::mem::take(&mut self.buffer);
        let request = self
            .lake
            .client()
            .upload_part()
            .bucket(self.lake.bucket())
            .key(&self.key)
            .upload_id(upload_id)
            .part_number(number)
            .body(ByteStream::from(body));
        let (lake, key) = (self.lake.clone(), self.key.clone());
        self.sending = Some(self.handle.spawn(async move {
            let out = request.send().await.map_err(|e| lake.failed("UploadPart", &key, e))?;
            Ok(CompletedPart::builder().part_number(number).set_e_tag(out.e_tag).build())
        }));
        Ok(())
    }

    fn complete(&mut self) -> Result<()> {
        let Some(upload_id) = self.upload_id.clone() else {
            let body = ByteStream::from(std::mem::take(&mut self.buffer));
            let request = self
                .lake
                .client()
                .put_object()
                .bucket(self.lake.bucket())
                .key(&self.key)
                .content_type(self.content_type)
                .body(body);
            self.handle.block_on(request.send()).map_err(|e| self.failed("PutObject", e))?;
            return Ok(());
        };
        if !self.buffer.is_empty() {
            self.send_part()?;
        }
        self.wait()?;
        let parts = CompletedMultipartUpload::builder().set_parts(Some(std::mem::take(&mut self.parts))).build();
        let request = self
            .lake
            .client()
            .complete_multipart_upload()
            .bucket(self.lake.bucket())
            .key(&self.key)
            .upload_id(upload_id)
            .multipart_upload(parts);
        self.handle.block_on(request.send()).map_err(|e| self.failed("CompleteMultipartUpload", e))?;
        Ok(())
    }

    fn cancel(&mut self) {
        if let Some(sending) = self.sending.take() {
            // The part's outcome no longer matters; only that it is not in flight.
            let _ = self.handle.block_on(sending);
        }
        if let Some(upload_id) = self.upload_id.take() {
            let request = self
                .lake
                .client()
                .abort_multipart_upload()
                .bucket(self.lake.bucket())
                .key(&self.key)
                .upload_id(upload_id);
            if let Err(e) = self.handle.block_on(request.send()) {
                let e = self.failed("AbortMultipartUpload", e);
                tracing::warn!(error = %e, "multipart upload left to the bucket's lifecycle rule");
            }
        }
    }
}

impl Write for MultipartWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let room = self.part_bytes.saturating_sub(self.buffer.len()).max(1);
        let n = buf.len().min(room);
        if self.buffer.capacity() == 0 {
            self.buffer.reserve_exact(self.part_bytes.min(1 << 20));
        }
        self.buffer.extend_from_slice(&buf[..n]);
        if self.buffer.len() >= self.part_bytes {
            self.send_part().map_err(std::io::Error::other)?;
        }
        Ok(n)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl ObjectWriter for MultipartWriter {
    fn commit(mut self: Box<Self>) -> Result<()> {
        let result = self.complete();
        if result.is_err() {
            self.cancel();
        }
        result
    }

    fn abort(mut self: Box<Self>) {
        self.cancel();
    }
}

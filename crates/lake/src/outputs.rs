//! Where a batch's outputs go: objects written as streams, then committed or aborted whole.
//!
//! The ingest pipeline writes through [`Outputs`]; the lake implements it with multipart
//! uploads ([`crate::multipart::S3Outputs`]), `mlops ingest` with files, and tests in memory.

use std::io::Write;
use std::sync::{Arc, Mutex};

use crate::error::Result;

/// One object being written. Nothing is visible under its key before [`commit`].
///
/// [`commit`]: ObjectWriter::commit
pub trait ObjectWriter: Write + Send {
    /// Finishes the object and makes it visible under its key.
    fn commit(self: Box<Self>) -> Result<()>;
    /// Drops what was written; the key keeps whatever it held before.
    fn abort(self: Box<Self>);
}

/// A place objects are written to, by key.
pub trait Outputs {
    fn create(&self, key: &str, content_type: &'static str) -> Result<Box<dyn ObjectWriter>>;

    /// Writes a whole small object.
    fn put(&self, key: &str, bytes: &[u8], content_type: &'static str) -> Result<()> {
        let mut writer = self.create(key, content_type)?;
        match writer.write_all(bytes) {
            Ok(()) => writer.commit(),
            Err(e) => {
                writer.abort();
                Err(crate::Error::Output { key: key.to_string(), message: e.to_string() })
            }
        }
    }
}

/// An object as written to memory: key, bytes and content type.
pub type MemoryObject = (String, Vec<u8>, &'static str);

/// Outputs kept in memory, in the order they were committed.
#[derive(Debug, Clone, Default)]
pub struct MemoryOutputs {
    objects: Arc<Mutex<Vec<MemoryObject>>>,
}

impl MemoryOutputs {
    /// The committed objects; a key written twice appears once, with its last content.
    pub fn into_objects(self) -> Vec<MemoryObject> {
        match Arc::try_unwrap(self.objects) {
            Ok(m) => m.into_inner().unwrap_or_else(std::sync::PoisonError::into_inner),
            Err(shared) => shared.lock().unwrap_or_else(std::sync::PoisonError::into_inner).clone(),
        }
    }
}

impl Outputs for MemoryOutputs {
    fn create(&self, key: &str, content_type: &'static str) -> Result<Box<dyn ObjectWriter>> {
        Ok(Box::new(MemoryObjectWriter {
            key: key.to_string(),
            content_type,
            bytes: Vec::new(),
            objects: Arc::clone(&self.objects),
        }))
    }
}

#[derive(Debug)]
struct MemoryObjectWriter {
    key: String,
    content_type: &'static str,
    bytes: Vec<u8>,
    objects: Arc<Mutex<Vec<MemoryObject>>>,
}

impl Write for MemoryObjectWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.bytes.extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl ObjectWriter for MemoryObjectWriter {
    fn commit(self: Box<Self>) -> Result<()> {
        let mut objects = self.objects.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        objects.retain(|(k, _, _)| *k != self.key);
        objects.push((self.key, self.bytes, self.content_type));
        Ok(())
    }

    fn abort(self: Box<Self>) {}
}

//! The error type of mlops-lake.

/// A lake or registry operation that failed.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// An object the caller asked for does not exist.
    #[error("s3://{bucket}/{key} does not exist")]
    NotFound { bucket: String, key: String },

    /// A conditional write found the key taken.
    #[error("s3://{bucket}/{key} already exists")]
    Exists { bucket: String, key: String },

    /// An S3 call failed.
    #[error("S3 {operation} s3://{bucket}/{key} failed: {message}")]
    Storage { operation: &'static str, bucket: String, key: String, message: String },

    /// An output object could not be written.
    #[error("writing {key}: {message}")]
    Output { key: String, message: String },

    /// A model version could not be registered or read.
    #[error("registry: {0}")]
    Registry(String),

    /// A model reference (`NAME@VERSION`) is malformed.
    #[error("model reference {text:?}: {reason}")]
    ModelRef { text: String, reason: String },

    /// A stored contract could not be read.
    #[error(transparent)]
    Contract(#[from] mlops_contract::Error),

    /// A stored JSON document (a manifest) could not be read or written.
    #[error("{what}: {source}")]
    Json { what: String, source: serde_json::Error },
}

impl Error {
    pub(crate) fn json(what: impl Into<String>, source: serde_json::Error) -> Self {
        Error::Json { what: what.into(), source }
    }
}

/// The result type of mlops-lake.
pub type Result<T, E = Error> = std::result::Result<T, E>;

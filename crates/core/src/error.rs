//! The error type of mlops-core.

/// Everything that can go wrong in the domain library.
///
/// Messages name the object, file, column or rule at fault, so that the text alone tells a
/// person what to fix.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A data contract could not be read or is inconsistent.
    #[error("contract {file}: {message}")]
    Contract { file: String, message: String },

    /// An ONNX model could not be loaded or run.
    #[error("model: {0}")]
    Model(String),

    /// A model version could not be registered or read.
    #[error("registry: {0}")]
    Registry(String),

    /// An object the caller asked for does not exist.
    #[error("s3://{bucket}/{key} does not exist")]
    NotFound { bucket: String, key: String },

    /// An S3 call failed.
    #[error("S3 {operation} s3://{bucket}/{key} failed: {message}")]
    Storage { operation: &'static str, bucket: String, key: String, message: String },

    /// A JSON document (manifest, profile, report) could not be read or written.
    #[error("{what}: {source}")]
    Json { what: String, source: serde_json::Error },

    /// Curated rows could not be written as Parquet.
    #[error("curated Parquet: {0}")]
    Curated(String),

    /// An output object could not be written.
    #[error("writing {key}: {message}")]
    Output { key: String, message: String },

    /// Two profiles cannot be merged or compared.
    #[error("profile: {0}")]
    Profile(String),

    /// Configuration from the environment is missing or malformed.
    #[error("configuration: {0}")]
    Config(String),

    /// A local file could not be read or written.
    #[error("{path}: {source}")]
    Io { path: String, source: std::io::Error },
}

impl Error {
    /// A stable name for the kind of error, e.g. for the error types reported to Lambda.
    pub fn kind(&self) -> &'static str {
        match self {
            Error::Contract { .. } => "Contract",
            Error::Model(_) => "Model",
            Error::Registry(_) => "Registry",
            Error::NotFound { .. } => "NotFound",
            Error::Storage { .. } => "Storage",
            Error::Json { .. } => "Json",
            Error::Curated(_) => "Curated",
            Error::Output { .. } => "Output",
            Error::Profile(_) => "Profile",
            Error::Config(_) => "Config",
            Error::Io { .. } => "Io",
        }
    }

    pub(crate) fn json(what: impl Into<String>, source: serde_json::Error) -> Self {
        Error::Json { what: what.into(), source }
    }

    pub(crate) fn io(path: impl AsRef<std::path::Path>, source: std::io::Error) -> Self {
        Error::Io { path: path.as_ref().display().to_string(), source }
    }
}

/// The result type of mlops-core.
pub type Result<T, E = Error> = std::result::Result<T, E>;

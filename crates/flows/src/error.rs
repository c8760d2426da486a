//! The error type of mlops-flows.

/// What can stop an ingest, a drift check or a baseline build.
///
/// The crates below each have their own error type; it is carried whole, so its message and
/// its `source` reach the caller.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Contract(#[from] mlops_contract::Error),

    #[error(transparent)]
    Drift(#[from] mlops_drift::Error),

    #[error(transparent)]
    Formats(#[from] mlops_formats::Error),

    #[error(transparent)]
    Lake(#[from] mlops_lake::Error),

    /// A source object or file could not be read (a transport error, not bad content).
    #[error("reading {key}: {message}")]
    Read { key: String, message: String },

    /// A local file could not be read.
    #[error("reading {path}: {source}")]
    ReadFile { path: String, source: std::io::Error },

    /// An output could not be written.
    #[error("writing {key}: {source}")]
    Write { key: String, source: std::io::Error },

    /// A JSON document (manifest, report) could not be written.
    #[error("{what}: {source}")]
    Json { what: String, source: serde_json::Error },

    /// A batch of rows could not be read as a whole.
    #[error("{name}: {reason}")]
    Rows { name: String, reason: String },

    /// The blocking task that ran an ingest failed.
    #[error("ingesting {key}: the ingest task failed: {message}")]
    Task { key: String, message: String },
}

impl Error {
    pub(crate) fn json(what: impl Into<String>, source: serde_json::Error) -> Self {
        Error::Json { what: what.into(), source }
    }

    /// A stable name for the kind of error, e.g. for the error types reported to Lambda.
    pub fn kind(&self) -> &'static str {
        match self {
            Error::Contract(_) => "Contract",
            Error::Drift(_) => "Profile",
            Error::Formats(_) => "Format",
            Error::Lake(mlops_lake::Error::NotFound { .. }) => "NotFound",
            Error::Lake(mlops_lake::Error::Registry(_) | mlops_lake::Error::ModelRef { .. }) => "Registry",
            Error::Lake(_) => "Storage",
            Error::Read { .. } | Error::ReadFile { .. } => "Read",
            Error::Write { .. } => "Output",
            Error::Json { .. } => "Json",
            Error::Rows { .. } => "Rows",
            Error::Task { .. } => "Task",
        }
    }
}

/// The result type of mlops-flows.
pub type Result<T, E = Error> = std::result::Result<T, E>;

//! The error type of mlops-formats.

/// A file or object that could not be written or read in one of the formats.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Curated rows could not be written or read as Parquet.
    #[error("curated Parquet: {0}")]
    Curated(String),

    /// A batch of rows could not be read as a whole.
    #[error("{name}: {reason}")]
    Rows { name: String, reason: String },
}

/// The result type of mlops-formats.
pub type Result<T, E = Error> = std::result::Result<T, E>;

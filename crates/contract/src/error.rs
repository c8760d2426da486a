//! The error type of mlops-contract.

/// A data contract that could not be read or is inconsistent.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The contract's text is not valid YAML of a contract, or its rules contradict each other.
    #[error("contract {file}: {message}")]
    Invalid { file: String, message: String },

    /// The contract file could not be read.
    #[error("reading contract {path}: {source}")]
    Read { path: String, source: std::io::Error },
}

/// The result type of mlops-contract.
pub type Result<T, E = Error> = std::result::Result<T, E>;

//! The error type of mlops-drift.

/// Profiles that cannot be read, merged or compared, and tests that cannot run.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Two profiles cannot be merged or compared, or a profile is inconsistent.
    #[error("profile: {0}")]
    Profile(String),

    /// A profile's JSON could not be read.
    #[error("{what}: {source}")]
    Json { what: String, source: serde_json::Error },

    /// The method chosen for a column cannot test it.
    #[error("drift method: {0}")]
    Method(String),
}

impl Error {
    pub(crate) fn json(what: impl Into<String>, source: serde_json::Error) -> Self {
        Error::Json { what: what.into(), source }
    }
}

/// The result type of mlops-drift.
pub type Result<T, E = Error> = std::result::Result<T, E>;

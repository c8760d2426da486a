//! The error type of mlops-model.

/// A model that could not be loaded, does not fit its contract, or failed to run.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The ONNX file could not be loaded or run, or its inputs and outputs are not usable.
    #[error("model: {0}")]
    Model(String),
}

/// The result type of mlops-model.
pub type Result<T, E = Error> = std::result::Result<T, E>;

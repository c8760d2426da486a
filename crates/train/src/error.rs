use thiserror::Error;

/// Why training, export or evaluation failed.
#[derive(Debug, Error)]
pub enum Error {
    /// The configuration or the data cannot be trained on, with a sentence for people.
    #[error("{0}")]
    Invalid(String),
    #[error(transparent)]
    Gate(#[from] mlops_metrics::gate::GateError),
    #[error("the configuration {path} is not valid YAML: {source}")]
    Config { path: String, source: serde_norway::Error },
    #[error("gradient boosting failed: {0}")]
    Booster(String),
}

pub type Result<T> = std::result::Result<T, Error>;

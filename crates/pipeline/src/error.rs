//! The error type of mlops-pipeline. Each error has the name Step Functions sees (the
//! Lambda's `errorType`), which the definition's `Retry` and `Catch` match.

/// Why a step failed.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Another run of the same model holds the guard.
    #[error("run {run_id} of {model} has held the guard since {since}; this trigger is skipped")]
    Busy { model: String, run_id: String, since: String },
    /// The step's input is not what the definition passes.
    #[error("{0}")]
    Input(String),
    /// The snapshot holds no row to train or evaluate on.
    #[error("{0}")]
    NoData(String),
    /// Training, export or evaluation failed.
    #[error("training: {0}")]
    Train(#[from] mlops_train::Error),
    /// A model does not load or does not fit its contract.
    #[error("model: {0}")]
    Model(String),
    /// Promotion of a version that was not approved.
    #[error("{0}")]
    Refused(String),
    #[error(transparent)]
    Lake(#[from] mlops_lake::Error),
    #[error(transparent)]
    Flows(#[from] mlops_flows::Error),
    #[error(transparent)]
    Contract(#[from] mlops_contract::Error),
    #[error("{what}: {source}")]
    Json { what: String, source: serde_json::Error },
}

impl Error {
    /// The error's name in the state machine: `Retry` and `Catch` match on it.
    pub fn name(&self) -> &'static str {
        match self {
            Error::Busy { .. } => "PipelineBusy",
            Error::Input(_) => "InvalidInput",
            Error::NoData(_) => "NoData",
            Error::Train(_) => "TrainFailed",
            Error::Model(_) => "ModelInvalid",
            Error::Refused(_) => "PromotionRefused",
            Error::Lake(_) | Error::Flows(_) => "LakeError",
            Error::Contract(_) => "ContractInvalid",
            Error::Json { .. } => "InvalidInput",
        }
    }

    pub(crate) fn json(what: impl Into<String>, source: serde_json::Error) -> Error {
        Error::Json { what: what.into(), source }
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

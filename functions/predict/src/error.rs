//! Errors of the predict function and their HTTP form.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::json;

use crate::request::Detail;

/// Failures outside a request: loading the model, decoding an event.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Config(#[from] mlops_lambda::ConfigError),
    #[error(transparent)]
    Lake(#[from] mlops_lake::Error),
    #[error(transparent)]
    Model(#[from] mlops_model::Error),
    #[error("the event is not an API Gateway request: {0}")]
    Event(String),
}

impl Error {
    /// A stable name for the kind of error, for the error types reported to Lambda.
    pub fn kind(&self) -> &'static str {
        match self {
            Error::Config(_) => "Config",
            Error::Lake(mlops_lake::Error::Registry(_) | mlops_lake::Error::NotFound { .. }) => "Registry",
            Error::Lake(_) => "Storage",
            Error::Model(_) => "Model",
            Error::Event(_) => "Event",
        }
    }
}

/// A request that cannot be answered, as `{"error": …, "details": [{"path": …, "reason": …}]}`.
/// Messages name the caller's mistake and never carry internal detail.
#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub message: String,
    pub details: Vec<Detail>,
}

impl ApiError {
    pub fn new(status: StatusCode, message: impl Into<String>) -> ApiError {
        ApiError { status, message: message.into(), details: Vec::new() }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = json!({"error": self.message, "details": self.details});
        (self.status, axum::Json(body)).into_response()
    }
}

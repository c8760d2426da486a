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

impl ApiError {
    /// The kind of rejection, as predict's `Rejected` metric names it by its `Reason`
    /// dimension: `too_large`, `invalid_json`, `invalid_instances`, `empty`, `bad_shape`,
    /// `unreadable_body`, `model_error` or `other`.
    pub fn reason(&self) -> &'static str {
        match self.status {
            StatusCode::PAYLOAD_TOO_LARGE => "too_large",
            StatusCode::INTERNAL_SERVER_ERROR => "model_error",
            StatusCode::BAD_REQUEST if self.message.starts_with("the body is not valid JSON") => "invalid_json",
            StatusCode::BAD_REQUEST if !self.details.is_empty() => "invalid_instances",
            StatusCode::BAD_REQUEST if self.message.ends_with("is empty") => "empty",
            StatusCode::BAD_REQUEST if self.message.starts_with("the body could not be read") => "unreadable_body",
            StatusCode::BAD_REQUEST => "bad_shape",
            _ => "other",
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = json!({"error": self.message, "details": self.details});
        (self.status, axum::Json(body)).into_response()
    }
}

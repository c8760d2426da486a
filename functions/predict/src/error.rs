//! Errors of the predict function and their HTTP form.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::json;

use crate::request::Detail;

/// Failures outside a request: loading the model, decoding an event.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Core(#[from] mlops_core::Error),
    #[error("the event is not an API Gateway request: {0}")]
    Event(String),
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

//! A function's start (configuration, clients, model) happens before `lambda_runtime::run`.
//! When it fails, Lambda must hear why: [`report`] posts the cause to the Runtime API's
//! `init/error`, so the failure shows in Lambda's logs and metrics as an init error with a
//! message that names it, instead of a bare exit.

/// The header that carries the error type on the Runtime API.
const ERROR_TYPE_HEADER: &str = "lambda-runtime-function-error-type";

/// Reports a failed start when running under the Lambda Runtime API (`AWS_LAMBDA_RUNTIME_API`
/// set); does nothing elsewhere. `error_type` is a stable name (e.g. `Init.Config`),
/// `message` the cause.
pub async fn report(error_type: &str, message: &str) {
    if std::env::var_os("AWS_LAMBDA_RUNTIME_API").is_none() {
        return;
    }
    let body = serde_json::json!({"errorType": error_type, "errorMessage": message, "stackTrace": []}).to_string();
    let request = lambda_runtime_api_client::build_request()
        .method(http::Method::POST)
        .uri("/2018-06-01/runtime/init/error")
        .header(ERROR_TYPE_HEADER, error_type)
        .header(http::header::CONTENT_TYPE, "application/json")
        .body(lambda_runtime_api_client::body::Body::from(body));
    let sent = match request {
        Ok(request) => lambda_runtime_api_client::PooledClient::builder().build().call(request).await,
        Err(e) => Err(e.into()),
    };
    if let Err(e) = sent {
        tracing::error!(error = %e, "could not report the init error to the Runtime API");
    }
}

/// The configuration a function read, or its error, reported to `init/error` first (as
/// `Init.Config`) so that the start fails with a message that names the variable.
pub async fn checked<T>(config: Result<T, crate::ConfigError>) -> Result<T, crate::ConfigError> {
    if let Err(e) = &config {
        report(&format!("Init.{}", e.kind()), &e.to_string()).await;
    }
    config
}

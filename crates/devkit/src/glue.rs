//! A local Glue Data Catalog endpoint: it answers `GetTable`, `CreateTable` and `UpdateTable`
//! (the AWS JSON 1.1 protocol that aws-sdk-glue speaks) from tables held in memory, so that
//! `mlops lake tables` reaches a local catalog as it reaches AWS. `AWS_ENDPOINT_URL_GLUE`
//! points clients at it.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::body::Bytes;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use crate::lake_server::{ACCESS_KEY_ID, REGION, SECRET_ACCESS_KEY};

/// The tables of the local catalog, by (database, table), each as the `TableInput` it was
/// given.
pub type Tables = Arc<Mutex<BTreeMap<(String, String), Value>>>;

/// A running local Glue endpoint. Dropping it stops the server.
#[derive(Debug)]
pub struct LocalGlue {
    addr: SocketAddr,
    tables: Tables,
    task: tokio::task::JoinHandle<()>,
}

impl LocalGlue {
    /// Serves on 127.0.0.1:`port` (0 picks a free port).
    pub async fn start(port: u16) -> crate::Result<LocalGlue> {
        let tables: Tables = Arc::default();
        let held = Arc::clone(&tables);
        let app = Router::new().fallback(move |headers: HeaderMap, body: Bytes| {
            let tables = Arc::clone(&held);
            async move { answer(&tables, &headers, &body) }
        });
        let (listener, addr) = crate::listen::bind("the Glue endpoint", port).await?;
        let task = tokio::spawn(async move {
            if let Err(e) = axum::serve(listener, app).await {
                tracing::error!(error = %e, "local Glue endpoint stopped");
            }
        });
        Ok(LocalGlue { addr, tables, task })
    }

    /// The endpoint URL clients use.
    pub fn endpoint(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The tables created so far.
    pub fn tables(&self) -> BTreeMap<(String, String), Value> {
        self.tables.lock().map(|t| t.clone()).unwrap_or_default()
    }

    /// A Glue client for this endpoint.
    pub fn client(&self) -> aws_sdk_glue::Client {
        client_for(&self.endpoint())
    }
}

impl Drop for LocalGlue {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// A Glue client for a local endpoint, with the dev kit's credentials.
pub fn client_for(endpoint: &str) -> aws_sdk_glue::Client {
    let config = aws_sdk_glue::Config::builder()
        .behavior_version(aws_sdk_glue::config::BehaviorVersion::latest())
        .region(aws_sdk_glue::config::Region::new(REGION))
        .endpoint_url(endpoint)
        .credentials_provider(aws_sdk_glue::config::Credentials::new(
            ACCESS_KEY_ID,
            SECRET_ACCESS_KEY,
            None,
            None,
            "local-glue",
        ))
        .build();
    aws_sdk_glue::Client::from_conf(config)
}

fn reply(status: StatusCode, body: Value) -> Response {
    (status, [(header::CONTENT_TYPE, "application/x-amz-json-1.1")], body.to_string()).into_response()
}

fn error(kind: &str, message: &str) -> Response {
    reply(StatusCode::BAD_REQUEST, json!({"__type": kind, "Message": message}))
}

fn answer(tables: &Tables, headers: &HeaderMap, body: &[u8]) -> Response {
    let target = headers.get("x-amz-target").and_then(|v| v.to_str().ok()).unwrap_or_default();
    let request: Value = match serde_json::from_slice(body) {
        Ok(v) => v,
        Err(e) => return error("InvalidInputException", &e.to_string()),
    };
    let Ok(mut tables) = tables.lock() else {
        return error("InternalServiceException", "the local catalog is unavailable");
    };
    let database = request["DatabaseName"].as_str().unwrap_or_default().to_string();
    match target {
        "AWSGlue.GetTable" => {
            let name = request["Name"].as_str().unwrap_or_default().to_string();
            match tables.get(&(database.clone(), name.clone())) {
                Some(input) => {
                    let mut table = input.clone();
                    table["DatabaseName"] = json!(database);
                    reply(StatusCode::OK, json!({"Table": table}))
                }
                None => error("EntityNotFoundException", &format!("Table {name} not found in {database}")),
            }
        }
        "AWSGlue.CreateTable" | "AWSGlue.UpdateTable" => {
            let input = request["TableInput"].clone();
            let Some(name) = input["Name"].as_str().map(str::to_string) else {
                return error("InvalidInputException", "TableInput.Name is required");
            };
            let key = (database.clone(), name.clone());
            let exists = tables.contains_key(&key);
            if target == "AWSGlue.CreateTable" && exists {
                return error("AlreadyExistsException", &format!("Table {name} already exists in {database}"));
            }
            if target == "AWSGlue.UpdateTable" && !exists {
                return error("EntityNotFoundException", &format!("Table {name} not found in {database}"));
            }
            tables.insert(key, input);
            reply(StatusCode::OK, json!({}))
        }
        other => error("UnknownOperationException", &format!("{other:?} is not supported locally")),
    }
}

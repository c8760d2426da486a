//! mlops-devkit: AWS on a laptop, for `mlops` and the tests.
//!
//! The embedded lake (an S3-compatible server on loopback, [`lake_server`]), a local
//! EventBridge `PutEvents` endpoint ([`event_bus`]), a local Data Firehose endpoint delivering
//! into the lake ([`firehose`]), local Lambda `Invoke` and CodeDeploy lifecycle-status endpoints ([`deploy`]), a local
//! Step Functions endpoint for
//! starting runs and sending task results ([`step_functions`]), a local Glue Data Catalog
//! endpoint ([`glue`]) and an emulated Lambda Runtime API
//! ([`runtime_api`]). The only crate that knows it is local: no function binary links it.

pub mod deploy;
mod error;
pub mod event_bus;
pub mod firehose;
pub mod glue;
pub mod lake_server;
mod listen;
pub mod runtime_api;
pub mod step_functions;

pub use error::{Error, Result};

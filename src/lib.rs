//! `mlops`: the lambda-mlops loop on a laptop.
//!
//! An embedded S3-compatible server stands in for the lake bucket; the functions' own
//! handlers run in-process against it through the real aws-sdk-s3.

pub mod cold_start;
pub mod demo;
pub mod drift_local;
pub mod event_bus;
pub mod ingest_local;
pub mod invoke;
pub mod lake_server;
pub mod register;
pub mod runtime_api;
pub mod score;
pub mod serve;

/// The bucket used when neither `--bucket` nor `LAKE_BUCKET` names one.
pub const DEFAULT_BUCKET: &str = "mlops-lake";

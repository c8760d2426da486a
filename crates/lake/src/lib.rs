//! mlops-lake: the bucket, its key layout, and the model registry.
//!
//! The S3 client (through aws-sdk-s3; `AWS_ENDPOINT_URL_S3` points it anywhere), the key
//! layout of the lake ([`keys`]), objects written as streams and committed whole
//! ([`outputs`], on S3 as multipart uploads: [`multipart`]), and the registry of immutable
//! model versions with conditional writes ([`registry`]). It runs no model and reads no
//! profile: those are the callers' crates.

pub mod capture;
pub mod client;
mod error;
pub mod keys;
pub mod multipart;
pub mod outputs;
pub mod registry;

pub use client::Lake;
pub use error::{Error, Result};
pub use registry::ModelRef;

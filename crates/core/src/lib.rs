//! mlops-core: the domain library of lambda-mlops.
//!
//! It knows data contracts, validation, profiles, drift, ONNX models, the model registry
//! and the lake's key layout. It knows nothing of Lambda: the function crates turn events
//! into calls of this library.

pub mod charts;
pub mod compare;
pub mod config;
pub mod contract;
pub mod curated;
pub mod drift;
pub mod error;
pub mod ingest;
pub mod lake;
pub mod model;
pub mod model_monitor;
pub mod monitor;
pub mod outputs;
pub mod profile;
pub mod reading;
pub mod records;
pub mod registry;
pub mod report_html;
pub mod stats;
pub mod storage;
pub mod upload;
pub mod validate;

pub use contract::Contract;
pub use error::{Error, Result};
pub use model::Model;
pub use profile::Profile;
pub use storage::Lake;

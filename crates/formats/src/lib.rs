//! mlops-formats: the files and objects lambda-mlops reads and writes.
//!
//! The one rows reader (CSV and JSON Lines against a contract, with the one format detection),
//! curated Parquet, the HTML drift report, SageMaker Model Monitor's files and CloudWatch EMF
//! lines. No AWS and no environment variables: callers hand in streams and get bytes back.

pub mod athena;
pub mod curated;
pub use mlops_emf as emf;
mod error;
pub mod html;
pub mod infer;
pub mod model_monitor;
pub mod rows;

pub use error::{Error, Result};

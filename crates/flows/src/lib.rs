//! mlops-flows: what the functions and the CLI do with the lake.
//!
//! Ingest (a raw batch → curated Parquet, quarantine, profile, manifest, with bounded memory),
//! the drift check (a window of profiles against the monitored version's baseline → report,
//! HTML, Model Monitor files, EMF), model quality (captures joined with ground truth → report,
//! EMF), and the streaming baseline builder over local files. No
//! tract: predict, which runs models, does not link this crate.

pub mod baseline;
pub mod drift_check;
mod error;
pub mod ingest;
pub mod quality;

pub use error::{Error, Result};

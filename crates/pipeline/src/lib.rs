//! The retraining pipeline: snapshot → train → evaluate → gate → register → approval →
//! promote, as steps over the lake ([`steps`]), each leaving its mark in the run's record
//! ([`record`]), one run per model at a time ([`guard`]); and [`asl`], which runs the
//! pipeline's Step Functions definition locally over the same steps ([`local`]).

pub mod asl;
pub mod data;
mod error;
pub mod guard;
pub mod local;
pub mod record;
pub mod register;
pub mod state;
pub mod steps;

pub use error::{Error, Result};
pub use steps::{PipelineConfig, handle};

/// The retraining definition, as `template.yaml` deploys it.
pub const RETRAIN_ASL: &str = include_str!("../../../statemachines/retrain.asl.json");

//! mlops-lambda: what every function crate shares.
//!
//! Configuration from environment variables ([`env`]), the report of a failed start to the
//! Runtime API ([`init`]), and, behind the `events` feature, builders of the events Lambda
//! delivers, in the exact shapes of `events/` (as `sam local generate-event` gives them), for
//! tests and local runs.

pub mod env;
#[cfg(feature = "events")]
pub mod events;
pub mod init;

pub use env::{ConfigError, Env, ModelConfig, process_env};

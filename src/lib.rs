//! `mlops`: the lambda-mlops loop on a laptop.
//!
//! Each subcommand is a module of [`commands`]: its arguments (a clap `Args` struct) and its
//! `run`. The embedded lake and the other local stand-ins for AWS come from mlops-devkit; the
//! functions' own handlers run in-process against them through the real AWS SDK clients.

pub mod commands;

/// The bucket used when neither `--bucket` nor `LAKE_BUCKET` names one.
pub const DEFAULT_BUCKET: &str = "mlops-lake";

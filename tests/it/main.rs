//! Whole-loop tests: the functions' handlers against the embedded S3 lake, through the real
//! aws-sdk-s3, fed with the sample events in `events/`.

mod common;

mod ab;
mod architecture;
mod baselines;

mod cli;
mod demo;
mod deploy_hooks;
mod drift;
mod events;
mod ingest;
mod lake;
mod memory;
mod pipeline;
mod predict;
mod quality;
mod runtime;
mod score;
mod train;

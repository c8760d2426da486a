//! mlops-contract: what the data and the models look like.
//!
//! A dataset's contract (columns, types, rules), the validation of one value against one
//! column, and the tensor descriptions of a model's inputs and outputs. Pure: no I/O beyond
//! reading a contract file, no AWS, no environment variables.

mod contract;
mod error;
pub mod json_row;
mod tensor;
pub mod validate;

pub use contract::{Column, ColumnType, Contract, CsvFormat, is_path_segment};
pub use error::{Error, Result};
pub use tensor::TensorSpec;
pub use validate::{Reason, Value};

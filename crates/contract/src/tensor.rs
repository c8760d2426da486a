//! What a model takes and gives: the tensor descriptions a registered version's manifest
//! records, known without loading the model.

use serde::{Deserialize, Serialize};

/// A model's input or output: its ONNX name, element type and shape (`N` for a free axis).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TensorSpec {
    pub name: String,
    #[serde(rename = "type")]
    pub dtype: String,
    pub shape: Vec<String>,
}

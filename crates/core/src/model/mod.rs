//! ONNX models: loading with tract, describing inputs and outputs, and running batches.

pub mod onnx_ml;

use std::sync::Arc;

use serde::{Deserialize, Serialize};
use tract_onnx::prelude::*;
use tract_onnx::tract_hir::infer::Factoid;

use crate::error::{Error, Result};

/// A model's input or output: its ONNX name, element type and shape (`N` for a free axis).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TensorSpec {
    pub name: String,
    #[serde(rename = "type")]
    pub dtype: String,
    pub shape: Vec<String>,
}

/// An ONNX model ready to run: parsed, type-checked and optimised once, then shared.
#[derive(Clone)]
pub struct Model {
    plan: Arc<TypedRunnableModel>,
    inputs: Vec<TensorSpec>,
    outputs: Vec<TensorSpec>,
}

impl std::fmt::Debug for Model {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Model").field("inputs", &self.inputs).field("outputs", &self.outputs).finish()
    }
}

/// The values of a tensor, by element type.
#[derive(Debug, Clone, PartialEq)]
pub enum TensorData {
    F32(Vec<f32>),
    F64(Vec<f64>),
    I64(Vec<i64>),
    Str(Vec<String>),
}

impl TensorData {
    pub fn len(&self) -> usize {
        match self {
            TensorData::F32(v) => v.len(),
            TensorData::F64(v) => v.len(),
            TensorData::I64(v) => v.len(),
            TensorData::Str(v) => v.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// A tensor with its ONNX name, shape and values (row-major).
#[derive(Debug, Clone, PartialEq)]
pub struct NamedTensor {
    pub name: String,
    pub shape: Vec<usize>,
    pub data: TensorData,
}

impl NamedTensor {
    fn to_tract(&self) -> std::result::Result<Tensor, String> {
        let err = |e: TractError| e.to_string();
        match &self.data {
            TensorData::F32(v) => Tensor::from_shape(&self.shape, v).map_err(err),
            TensorData::F64(v) => Tensor::from_shape(&self.shape, v).map_err(err),
            TensorData::I64(v) => Tensor::from_shape(&self.shape, v).map_err(err),
            TensorData::Str(v) => tract_ndarray::ArrayD::from_shape_vec(self.shape.clone(), v.clone())
                .map(|a| a.into_tensor())
                .map_err(|e| e.to_string()),
        }
    }

    fn from_tract(name: &str, t: &Tensor) -> std::result::Result<NamedTensor, String> {
        let view = |e: TractError| e.to_string();
        let data = match t.datum_type() {
            DatumType::F32 => TensorData::F32(t.to_plain_array_view::<f32>().map_err(view)?.iter().copied().collect()),
            DatumType::F64 => TensorData::F64(t.to_plain_array_view::<f64>().map_err(view)?.iter().copied().collect()),
            DatumType::String => {
                TensorData::Str(t.to_plain_array_view::<String>().map_err(view)?.iter().cloned().collect())
            }
            DatumType::I64 | DatumType::I32 | DatumType::Bool | DatumType::U8 | DatumType::I8 | DatumType::TDim => {
                let t = t.cast_to::<i64>().map_err(view)?;
                TensorData::I64(t.to_plain_array_view::<i64>().map_err(view)?.iter().copied().collect())
            }
            other => return Err(format!("element type {other:?} is not supported in outputs")),
        };
        Ok(NamedTensor { name: name.to_string(), shape: t.shape().to_vec(), data })
    }
}

/// The outputs of one run, row by row: each row maps output names to JSON values.
pub type RowOutputs = Vec<serde_json::Map<String, serde_json::Value>>;

fn model_error(context: &str, e: impl std::fmt::Display) -> Error {
    Error::Model(format!("{context}: {e}"))
}

impl Model {
    /// Parses, types and optimises an ONNX model from its bytes.
    pub fn load(bytes: &[u8]) -> Result<Model> {
        let mut reader = bytes;
        let mut onnx = tract_onnx::onnx();
        onnx_ml::register(&mut onnx.op_register);
        let mut inference = onnx
            .model_for_read(&mut reader)
            .map_err(|e| model_error("the file is not an ONNX model tract can read", format!("{e:#}")))?;
        name_free_axes(&mut inference).map_err(|e| model_error("reading the input shapes", e))?;
        let typed = inference
            .into_typed()
            .map_err(|e| model_error("the model's types could not be inferred", format!("{e:#}")))?;
        let specs = |outlets: &[OutletId]| -> Result<Vec<TensorSpec>> {
            outlets
                .iter()
                .map(|&o| {
                    let fact = typed.outlet_fact(o).map_err(|e| model_error("reading a tensor type", e))?;
                    let name = typed.outlet_label(o).unwrap_or(&typed.node(o.node).name).to_string();
                    Ok(TensorSpec {
                        name,
                        dtype: format!("{:?}", fact.datum_type).to_lowercase(),
                        shape: fact.shape.iter().map(|d| d.to_string()).collect(),
                    })
                })
                .collect()
        };
        let inputs = specs(typed.input_outlets().map_err(|e| model_error("inputs", e))?)?;
        let outputs = specs(typed.output_outlets().map_err(|e| model_error("outputs", e))?)?;
        let plan = typed
            .into_optimized()
            .and_then(|m| m.into_runnable())
            .map_err(|e| model_error("the model could not be optimised for running", format!("{e:#}")))?;
        Ok(Model { plan, inputs, outputs })
    }

    pub fn inputs(&self) -> &[TensorSpec] {
        &self.inputs
    }

    pub fn outputs(&self) -> &[TensorSpec] {
        &self.outputs
    }

    /// The number of features of a model with one float matrix input `[N, F]`.
    pub fn feature_count(&self) -> Result<usize> {
        match self.inputs.as_slice() {
            [input] if input.dtype == "f32" && input.shape.len() == 2 => input.shape[1].parse().map_err(|_| {
                Error::Model(format!("input {:?} has no fixed feature count (shape {:?})", input.name, input.shape))
            }),
            _ => Err(Error::Model(format!(
                "expected one f32 input of shape [N, features], found {}",
                self.inputs
                    .iter()
                    .map(|i| format!("{} {} {:?}", i.name, i.dtype, i.shape))
                    .collect::<Vec<_>>()
                    .join(", ")
            ))),
        }
    }

    /// Runs the model on named inputs (matched to the model's inputs by name) and returns
    /// every output by name, in the model's output order.
    pub fn run(&self, inputs: &[NamedTensor]) -> Result<Vec<NamedTensor>> {
        let mut values = TVec::new();
        for spec in &self.inputs {
            let input = inputs
                .iter()
                .find(|i| i.name == spec.name)
                .ok_or_else(|| Error::Model(format!("input {:?} is missing", spec.name)))?;
            let tensor = input.to_tract().map_err(|e| model_error(&format!("input {:?}", spec.name), e))?;
            values.push(tensor.into_tvalue());
        }
        let outputs = self.plan.run(values).map_err(|e| model_error("running the model", format!("{e:#}")))?;
        self.outputs
            .iter()
            .zip(outputs.iter())
            .map(|(spec, t)| {
                NamedTensor::from_tract(&spec.name, t).map_err(|e| model_error(&format!("output {:?}", spec.name), e))
            })
            .collect()
    }

    /// Runs `rows` rows of features (row-major, `rows × feature_count` values) and returns
    /// each row's outputs by ONNX output name.
    pub fn predict(&self, features: &[f32], rows: usize) -> Result<RowOutputs> {
        let width = self.feature_count()?;
        if features.len() != rows * width {
            return Err(Error::Model(format!("{} values do not make {rows} rows of {width} features", features.len())));
        }
        let input = Tensor::from_shape(&[rows, width], features).map_err(|e| model_error("building the input", e))?;
        let outputs = self
            .plan
            .run(tvec!(input.into_tvalue()))
            .map_err(|e| model_error("running the model", format!("{e:#}")))?;
        let mut result: RowOutputs = vec![serde_json::Map::new(); rows];
        for (spec, value) in self.outputs.iter().zip(outputs.iter()) {
            let columns = row_values(value, rows).map_err(|e| model_error(&format!("output {:?}", spec.name), e))?;
            for (row, v) in result.iter_mut().zip(columns) {
                row.insert(spec.name.clone(), v);
            }
        }
        Ok(result)
    }
}

/// Exporters often leave the batch axis without a name (`[?, 4]`); tract needs a symbol to
/// type such a graph, so every unknown input axis becomes the batch symbol `N`.
fn name_free_axes(model: &mut InferenceModel) -> TractResult<()> {
    let batch = model.symbols.sym("N");
    for ix in 0..model.input_outlets()?.len() {
        let fact = model.input_fact(ix)?.clone();
        let Some(dt) = fact.datum_type.concretize() else { continue };
        if fact.shape.is_open() {
            continue;
        }
        let dims: Vec<TDim> = fact.shape.dims().map(|d| d.concretize().unwrap_or_else(|| batch.to_dim())).collect();
        model.set_input_fact(ix, InferenceFact::dt_shape(dt, dims))?;
    }
    Ok(())
}

/// Splits an output tensor `[rows, …]` into one JSON value per row: a scalar for `[rows]`, a
/// flat array otherwise.
fn row_values(tensor: &Tensor, rows: usize) -> std::result::Result<Vec<serde_json::Value>, String> {
    use serde_json::Value as J;
    let shape = tensor.shape();
    if shape.first() != Some(&rows) {
        return Err(format!("expected {rows} rows, got shape {shape:?}"));
    }
    let per_row: usize = shape[1..].iter().product();
    let scalar = shape.len() == 1;
    let values: Vec<J> = match tensor.datum_type() {
        DatumType::I64 => collect::<i64>(tensor, |v| J::from(*v))?,
        DatumType::I32 => collect::<i32>(tensor, |v| J::from(*v))?,
        DatumType::F32 => collect::<f32>(tensor, |v| float(shortest(*v)))?,
        DatumType::F64 => collect::<f64>(tensor, |v| float(*v))?,
        DatumType::Bool => collect::<bool>(tensor, |v| J::from(*v))?,
        DatumType::String => collect::<String>(tensor, |v| J::from(v.as_str()))?,
        other => return Err(format!("element type {other:?} is not supported in outputs")),
    };
    if per_row == 0 {
        return Ok(vec![J::Array(Vec::new()); rows]);
    }
    Ok(values.chunks(per_row).map(|chunk| if scalar { chunk[0].clone() } else { J::Array(chunk.to_vec()) }).collect())
}

fn collect<T: Datum>(
    tensor: &Tensor,
    convert: impl Fn(&T) -> serde_json::Value,
) -> std::result::Result<Vec<serde_json::Value>, String> {
    Ok(tensor.to_plain_array_view::<T>().map_err(|e| e.to_string())?.iter().map(convert).collect())
}

/// The f64 with the shortest decimal form that rounds to the same f32 (0.9853279, not
/// 0.9853278994560242), so JSON shows the value the model computed and nothing more.
fn shortest(v: f32) -> f64 {
    v.to_string().parse().unwrap_or(f64::from(v))
}

/// JSON has no NaN or infinity; those become null rather than failing the response.
fn float(v: f64) -> serde_json::Value {
    serde_json::Number::from_f64(v).map_or(serde_json::Value::Null, serde_json::Value::Number)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rejects_bytes_that_are_not_onnx() {
        let e = Model::load(b"definitely not a protobuf").expect_err("garbage");
        assert!(e.to_string().starts_with("model: the file is not an ONNX model"), "{e}");
    }
}

//! mlops-model: ONNX models through tract, and the one scorer.
//!
//! Loading with tract (plus the `ai.onnx.ml` operators tract lacks, [`onnx_ml`]), describing
//! inputs and outputs, turning rows into a model's input tensors ([`layout`]), and [`Scorer`]:
//! the one path from contract-validated rows to outputs that predict, `mlops score` and every
//! later caller share. No I/O, no AWS.

mod error;
pub mod layout;
pub mod onnx_ml;
mod scorer;

pub use error::{Error, Result};
pub use layout::{Cell, Layout, RowOutputs, rows_json};
pub use mlops_contract::TensorSpec;
pub use scorer::Scorer;

use std::sync::Arc;

use tract_onnx::prelude::*;
use tract_onnx::tract_hir::infer::Factoid;

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

fn model_error(context: &str, e: impl std::fmt::Display) -> Error {
    Error::Model(format!("{context}: {e}"))
}

impl Model {
    /// Parses, types and optimises an ONNX model from its bytes.
    pub fn load(bytes: &[u8]) -> Result<Model> {
        let mut reader = bytes;
        let mut onnx = tract_onnx::onnx();
        onnx_ml::register(&mut onnx.op_register);
        let not_onnx = |e: TractError| model_error("the file is not an ONNX model tract can read", format!("{e:#}"));
        let proto = onnx.proto_model_for_read(&mut reader).map_err(not_onnx)?;
        choose_kernels(&proto).map_err(|e| model_error("choosing tract's kernels", e))?;
        let mut inference = onnx.model_for_proto_model(&proto).map_err(not_onnx)?;
        name_free_axes(&mut inference).map_err(|e| model_error("reading the input shapes", e))?;
        let mut typed = inference
            .into_typed()
            .map_err(|e| model_error("the model's types could not be inferred", format!("{e:#}")))?;
        onnx_ml::rewrite(&mut typed).map_err(|e| model_error("rewriting the graph", format!("{e:#}")))?;
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
}

/// The x86-64 features whose tract kernels are left out (see [`choose_kernels`]).
#[cfg(target_arch = "x86_64")]
const X86_WITHOUT_VECTOR_KERNELS: &str =
    "-avx512f,-avx512vnni,-avx512fp16,-amx-int8,-amx-bf16,-avxvnni,-fma,-f16c,-avx2,-avx";

/// A matrix product whose constant operand has a dimension this long or longer is worth
/// tract's AVX kernels (BENCHMARKS.md: at 16 the generic kernels were faster, at 32 on par,
/// at 64 and more 1.5 to 5 times slower).
const WIDE: i64 = 32;

/// Picks the kernels tract runs with, once per process, from the first model loaded and
/// before tract first asks.
///
/// tract 0.23's x86-64 assembly kernels (the matrix products, tanh, sigmoid and silu under
/// `tract-linalg/x86_64/`) return without `vzeroupper`, leaving the upper halves of the vector
/// registers set. Every legacy SSE instruction that runs after them — our operators, tract's
/// own Rust code, the JSON work around them — then carries a false dependency on those halves,
/// and code after a `MatMul` ran up to eight times slower (BENCHMARKS.md, "The vector state
/// tract's kernels leave behind"). The fix belongs in tract's kernel postambles; until it is
/// released, tract's AVX kernels are left out on x86-64 when every matrix product of the
/// first model is narrow (see [`narrow_products`]), where the generic kernels are faster once
/// that cost is counted; a model with a wide layer keeps them. `TRACT_CPU_ISA` in the
/// environment (even set empty, which keeps every kernel) takes precedence over this choice.
fn choose_kernels(proto: &tract_onnx::pb::ModelProto) -> std::result::Result<(), String> {
    static CHOSEN: std::sync::OnceLock<std::result::Result<(), String>> = std::sync::OnceLock::new();
    CHOSEN
        .get_or_init(|| {
            #[cfg(target_arch = "x86_64")]
            if narrow_products(proto) {
                return tract_onnx::prelude::tract_data::knobs::set_config_global(
                    "TRACT_CPU_ISA",
                    X86_WITHOUT_VECTOR_KERNELS,
                )
                .map_err(|e| format!("{e:#}"));
            }
            let _ = proto;
            Ok(())
        })
        .clone()
}

/// Whether every `MatMul` and `Gemm` of the graph multiplies by a constant (an initializer or a
/// `Constant` node) shorter than [`WIDE`] in every dimension. A product of two computed
/// tensors counts as wide: its size is not known before it runs.
fn narrow_products(proto: &tract_onnx::pb::ModelProto) -> bool {
    let Some(graph) = &proto.graph else { return true };
    let mut constants: std::collections::HashMap<&str, &[i64]> =
        graph.initializer.iter().map(|t| (t.name.as_str(), t.dims.as_slice())).collect();
    for node in graph.node.iter().filter(|n| n.op_type == "Constant") {
        if let Some(t) = node.attribute.iter().find(|a| a.name == "value").and_then(|a| a.t.as_ref()) {
            constants.extend(node.output.iter().map(|o| (o.as_str(), t.dims.as_slice())));
        }
    }
    graph.node.iter().filter(|n| n.domain.is_empty() && matches!(n.op_type.as_str(), "MatMul" | "Gemm")).all(|n| {
        let operands: Vec<&[i64]> = n.input.iter().take(2).filter_map(|i| constants.get(i.as_str()).copied()).collect();
        !operands.is_empty() && operands.iter().all(|dims| dims.iter().all(|d| *d < WIDE))
    })
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

#[cfg(test)]
mod tests {
    use super::*;

    /// A model with one `MatMul` by a constant of shape `dims`, and one by a computed tensor
    /// when `computed`.
    fn products(dims: &[i64], computed: bool) -> tract_onnx::pb::ModelProto {
        use tract_onnx::pb::{GraphProto, ModelProto, NodeProto, TensorProto};
        let matmul = |a: &str, b: &str| NodeProto {
            op_type: "MatMul".into(),
            input: vec![a.into(), b.into()],
            output: vec![format!("{a}{b}")],
            ..Default::default()
        };
        let mut node = vec![matmul("x", "w")];
        if computed {
            node.push(matmul("x", "xw"));
        }
        let initializer = vec![TensorProto { name: "w".into(), dims: dims.to_vec(), ..Default::default() }];
        ModelProto { graph: Some(GraphProto { node, initializer, ..Default::default() }), ..Default::default() }
    }

    #[test]
    fn narrow_products_are_told_from_wide_ones() {
        assert!(narrow_products(&products(&[5, 16], false)));
        assert!(narrow_products(&products(&[31, 31], false)));
        assert!(!narrow_products(&products(&[16, 32], false)));
        assert!(!narrow_products(&products(&[256, 8], false)));
        assert!(!narrow_products(&products(&[5, 16], true)), "a product of computed tensors counts as wide");
        assert!(narrow_products(&tract_onnx::pb::ModelProto::default()), "no graph, no product");
    }

    #[test]
    fn rejects_bytes_that_are_not_onnx() {
        let e = Model::load(b"definitely not a protobuf").expect_err("garbage");
        assert!(e.to_string().starts_with("model: the file is not an ONNX model"), "{e}");
    }
}

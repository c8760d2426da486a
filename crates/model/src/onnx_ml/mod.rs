//! ONNX-ML (`ai.onnx.ml`) operators that tract lacks or evaluates differently from
//! onnxruntime, registered in tract's ONNX operator registry.
//!
//! scikit-learn, XGBoost and LightGBM exports lean on these operators. Each one is a
//! [`Kernel`]: a plain function from input tensors to output tensors, wrapped once into
//! tract's inference ([`Expansion`]) and typed ([`TypedOp`]) operator traits. Their results
//! are checked against onnxruntime's for the same models (`tests/it/conformance.rs`).
//!
//! [`rewrite`] also replaces a few of tract's own operators in the typed graph where their
//! evaluation is slow for the shapes exports produce (`rows`: softmax and arg-max per row;
//! `columns`: a column picked out of a concatenation of columns is that column).

mod columns;
mod elementwise;
mod features;
mod label_encoder;
mod linear;
mod normalizer;
mod rows;
pub mod transform;
mod tree;

use std::sync::Arc;

use tract_onnx::model::{OnnxOpRegister, ParsingContext};
use tract_onnx::pb::NodeProto;
use tract_onnx::tract_hir::internal::*;

/// Adds our operators to tract's ONNX registry, replacing tract's own where their results
/// differ from onnxruntime's.
pub fn register(registry: &mut OnnxOpRegister) {
    registry.insert("TreeEnsembleClassifier", tree::classifier);
    registry.insert("TreeEnsembleRegressor", tree::regressor);
    registry.insert("Scaler", elementwise::scaler);
    registry.insert("Imputer", elementwise::imputer);
    registry.insert("Binarizer", elementwise::binarizer);
    registry.insert("ArrayFeatureExtractor", features::array_feature_extractor);
    registry.insert("LabelEncoder", label_encoder::label_encoder);
    registry.insert("OneHotEncoder", features::one_hot_encoder);
    registry.insert("LinearClassifier", linear::linear_classifier);
    registry.insert("Normalizer", normalizer::normalizer);
    registry.insert("ZipMap", zipmap);
}

/// Rewrites of the typed graph where tract's own operator is slow for the shapes exports
/// produce; run before optimisation.
pub fn rewrite(model: &mut TypedModel) -> TractResult<()> {
    columns::rewrite(model)?;
    rows::rewrite(model)
}

/// ZipMap turns class scores into a sequence of maps, a type no JSON API of ours can
/// return faithfully; exporters can leave it out.
fn zipmap(_ctx: &ParsingContext, node: &NodeProto) -> TractResult<(Box<dyn InferenceOp>, Vec<String>)> {
    bail!(
        "node {:?} is a ZipMap, which returns a list of maps instead of a score tensor; export the \
         classifier without it: skl2onnx `options={{id(model): {{\"zipmap\": False}}}}` or onnxmltools \
         `zipmap=False`",
        node.name
    )
}

/// An operator as a plain computation on tensors.
pub trait Kernel: std::fmt::Debug + Send + Sync + 'static {
    fn name(&self) -> &'static str;

    /// How many inputs the operator takes.
    fn inputs(&self) -> usize {
        1
    }

    /// The output types and shapes, given the input facts.
    fn output_facts(&self, inputs: &[&TypedFact]) -> TractResult<TVec<TypedFact>>;

    fn eval(&self, inputs: TVec<TValue>) -> TractResult<TVec<TValue>>;
}

/// Wraps a kernel as a tract operator for the ONNX parser.
pub fn expand_kernel(kernel: impl Kernel) -> Box<dyn InferenceOp> {
    expand(KernelOp::new(kernel))
}

/// A kernel as a tract operator. Two operators are equal only if they share a kernel.
#[derive(Debug, Clone)]
pub struct KernelOp {
    kernel: Arc<dyn Kernel>,
}

impl KernelOp {
    pub(crate) fn new(kernel: impl Kernel) -> KernelOp {
        KernelOp { kernel: Arc::new(kernel) }
    }
}

impl PartialEq for KernelOp {
    fn eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.kernel, &other.kernel)
    }
}

impl Eq for KernelOp {}

impl Op for KernelOp {
    fn name(&self) -> StaticName {
        self.kernel.name().into()
    }

    op_as_typed_op!();
}

impl EvalOp for KernelOp {
    op_out_of_plan!();

    fn eval(&self, _ctx: &EvalContext, inputs: TVec<TValue>) -> TractResult<TVec<TValue>> {
        self.kernel.eval(inputs)
    }
}

impl TypedOp for KernelOp {
    fn output_facts(&self, inputs: &[&TypedFact]) -> TractResult<TVec<TypedFact>> {
        self.kernel.output_facts(inputs)
    }

    as_op!();
}

impl Expansion for KernelOp {
    fn name(&self) -> StaticName {
        self.kernel.name().into()
    }

    fn nboutputs(&self) -> TractResult<usize> {
        let facts = self.kernel.output_facts(&[&f32::fact([1usize, 1])]).map(|f| f.len());
        Ok(facts.unwrap_or(1))
    }

    fn rules<'r, 'p: 'r, 's: 'r>(
        &'s self,
        s: &mut Solver<'r>,
        inputs: &'p [TensorProxy],
        outputs: &'p [TensorProxy],
    ) -> InferenceResult {
        check_input_arity(inputs, self.kernel.inputs())?;
        let apply = move |s: &mut Solver<'r>, facts: &[TypedFact]| -> InferenceResult {
            let refs: Vec<&TypedFact> = facts.iter().collect();
            let out = self.kernel.output_facts(&refs)?;
            for (proxy, fact) in outputs.iter().zip(out.iter()) {
                s.equals(&proxy.datum_type, fact.datum_type)?;
                s.equals(&proxy.shape, fact.shape.iter().cloned().collect::<ShapeFactoid>())?;
            }
            Ok(())
        };
        if self.kernel.inputs() == 2 {
            s.given_4(
                &inputs[0].datum_type,
                &inputs[0].shape,
                &inputs[1].datum_type,
                &inputs[1].shape,
                move |s, dt0, shape0, dt1, shape1| {
                    apply(s, &[dt0.fact(shape0.as_slice()), dt1.fact(shape1.as_slice())])
                },
            )
        } else {
            s.given_2(&inputs[0].datum_type, &inputs[0].shape, move |s, dt, shape| {
                apply(s, &[dt.fact(shape.as_slice())])
            })
        }
    }

    fn wire(&self, prefix: &str, model: &mut TypedModel, inputs: &[OutletId]) -> TractResult<TVec<OutletId>> {
        model.wire_node(prefix, self.clone(), inputs)
    }
}

/// A rank-1 or rank-2 numeric tensor as f32 rows: (rows, width, values row-major).
pub(crate) fn f32_rows(value: &Tensor) -> TractResult<(usize, usize, std::borrow::Cow<'_, [f32]>)> {
    let (rows, width) = match value.shape() {
        [w] => (1, *w),
        [r, w] => (*r, *w),
        other => bail!("expected a matrix of rows and features, got shape {other:?}"),
    };
    // An f32 input in one piece is read where it lies; anything else is cast into a copy.
    if value.datum_type() == f32::datum_type()
        && let Some(flat) = value.to_plain_array_view::<f32>()?.to_slice()
    {
        return Ok((rows, width, std::borrow::Cow::Borrowed(flat)));
    }
    let cast = value.cast_to::<f32>()?;
    let view = cast.to_plain_array_view::<f32>()?;
    let values = match view.as_slice() {
        Some(flat) => flat.to_vec(),
        None => view.iter().copied().collect(),
    };
    Ok((rows, width, std::borrow::Cow::Owned(values)))
}

#[cfg(test)]
pub(crate) mod tests {
    use tract_onnx::pb::{AttributeProto, NodeProto, attribute_proto::AttributeType};

    use super::*;

    pub fn node(op: &str, attribute: Vec<AttributeProto>) -> NodeProto {
        NodeProto { op_type: op.into(), name: format!("test_{op}"), attribute, ..Default::default() }
    }

    fn attr(name: &str, kind: AttributeType) -> AttributeProto {
        AttributeProto { name: name.into(), r#type: kind as i32, ..Default::default() }
    }

    pub fn ints(name: &str, v: &[i64]) -> AttributeProto {
        AttributeProto { ints: v.to_vec(), ..attr(name, AttributeType::Ints) }
    }

    pub fn floats(name: &str, v: &[f32]) -> AttributeProto {
        AttributeProto { floats: v.to_vec(), ..attr(name, AttributeType::Floats) }
    }

    pub fn strings(name: &str, v: &[&str]) -> AttributeProto {
        AttributeProto {
            strings: v.iter().map(|s| s.as_bytes().to_vec()).collect(),
            ..attr(name, AttributeType::Strings)
        }
    }

    pub fn text(name: &str, v: &str) -> AttributeProto {
        AttributeProto { s: v.as_bytes().to_vec(), ..attr(name, AttributeType::String) }
    }

    pub fn eval(kernel: &dyn Kernel, input: Tensor) -> TVec<TValue> {
        kernel.eval(tvec!(input.into_tvalue())).expect("evaluates")
    }

    #[test]
    fn zipmap_is_refused_with_the_export_option_to_use() {
        let model = tract_onnx::pb::ModelProto::default();
        let onnx = tract_onnx::onnx();
        let ctx = ParsingContext {
            onnx_operator_set_version: 17,
            framework: &onnx,
            model: &model,
            parent_graphs: vec![],
            model_dir: None,
            template: InferenceModel::default(),
        };
        let e = zipmap(&ctx, &node("ZipMap", vec![])).expect_err("refused").to_string();
        assert!(e.contains("\"zipmap\": False") && e.contains("zipmap=False"), "{e}");
    }
}

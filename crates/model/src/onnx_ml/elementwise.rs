//! Column-wise operators: `Scaler`, `Imputer`, `Binarizer`.
//!
//! tract 0.23 has none of them; scikit-learn pipelines export StandardScaler, SimpleImputer
//! and Binarizer as these. Attributes with one value apply to every column; otherwise there
//! is one value per column (the last axis).

use tract_onnx::model::ParsingContext;
use tract_onnx::pb::NodeProto;
use tract_onnx::tract_hir::internal::*;

use super::{Kernel, expand_kernel};

/// An attribute with one value or one per column, as one value per column (checked first).
fn per_column<T: Copy>(values: &[T], width: usize) -> Vec<T> {
    if values.len() == 1 { vec![values[0]; width] } else { values.to_vec() }
}

/// The input as an owned tensor of `T`: moved when it is one already and no other node holds
/// it, copied (and cast) otherwise.
pub(super) fn owned<T: Datum>(input: TValue) -> TractResult<Tensor> {
    let t = input.into_tensor();
    if t.datum_type() == T::datum_type() { Ok(t) } else { Ok(t.cast_to::<T>()?.into_owned()) }
}

fn check_width(name: &str, attr: &str, len: usize, width: usize) -> TractResult<()> {
    if len != 1 && len != width {
        bail!("{name}: attribute {attr} has {len} values for {width} columns");
    }
    Ok(())
}

fn width_of(t: &Tensor) -> usize {
    t.shape().last().copied().unwrap_or(1)
}

/// `Y = (X - offset) * scale`, as float.
#[derive(Debug)]
struct Scaler {
    offset: Vec<f32>,
    scale: Vec<f32>,
}

pub fn scaler(_ctx: &ParsingContext, node: &NodeProto) -> TractResult<(Box<dyn InferenceOp>, Vec<String>)> {
    let offset = node.get_attr_opt_vec::<f32>("offset")?.unwrap_or_else(|| vec![0.0]);
    let scale = node.get_attr_opt_vec::<f32>("scale")?.unwrap_or_else(|| vec![1.0]);
    Ok((expand_kernel(Scaler { offset, scale }), vec![]))
}

impl Kernel for Scaler {
    fn name(&self) -> &'static str {
        "Scaler"
    }

    fn output_facts(&self, inputs: &[&TypedFact]) -> TractResult<TVec<TypedFact>> {
        Ok(tvec!(f32::fact(inputs[0].shape.iter())))
    }

    fn eval(&self, mut inputs: TVec<TValue>) -> TractResult<TVec<TValue>> {
        let mut y = owned::<f32>(inputs.remove(0))?;
        let width = width_of(&y).max(1);
        check_width("Scaler", "offset", self.offset.len(), width)?;
        check_width("Scaler", "scale", self.scale.len(), width)?;
        let (offset, scale) = (per_column(&self.offset, width), per_column(&self.scale, width));
        // Row by row over whole columns, which the compiler turns into vector instructions.
        let mut view = y.try_as_plain_ram_mut()?;
        for row in view.as_slice_mut::<f32>()?.chunks_exact_mut(width) {
            for ((v, o), s) in row.iter_mut().zip(&offset).zip(&scale) {
                *v = (*v - o) * s;
            }
        }
        Ok(tvec!(y.into_tvalue()))
    }
}

/// Replaces a sentinel value (NaN by default) with a per-column value.
#[derive(Debug)]
struct Imputer {
    floats: Vec<f32>,
    replaced_float: f32,
    ints: Vec<i64>,
    replaced_int: i64,
}

pub fn imputer(_ctx: &ParsingContext, node: &NodeProto) -> TractResult<(Box<dyn InferenceOp>, Vec<String>)> {
    let floats = node.get_attr_opt_vec::<f32>("imputed_value_floats")?.unwrap_or_default();
    let ints = node.get_attr_opt_vec::<i64>("imputed_value_int64s")?.unwrap_or_default();
    if floats.is_empty() == ints.is_empty() {
        bail!("Imputer {:?}: needs exactly one of imputed_value_floats and imputed_value_int64s", node.name);
    }
    Ok((
        expand_kernel(Imputer {
            floats,
            replaced_float: node.get_attr_opt::<f32>("replaced_value_float")?.unwrap_or(f32::NAN),
            ints,
            replaced_int: node.get_attr_opt::<i64>("replaced_value_int64")?.unwrap_or(0),
        }),
        vec![],
    ))
}

impl Kernel for Imputer {
    fn name(&self) -> &'static str {
        "Imputer"
    }

    fn output_facts(&self, inputs: &[&TypedFact]) -> TractResult<TVec<TypedFact>> {
        let dt = if self.floats.is_empty() { i64::datum_type() } else { f32::datum_type() };
        Ok(tvec!(dt.fact(inputs[0].shape.iter())))
    }

    fn eval(&self, mut inputs: TVec<TValue>) -> TractResult<TVec<TValue>> {
        let width = width_of(&inputs[0]).max(1);
        if self.floats.is_empty() {
            check_width("Imputer", "imputed_value_int64s", self.ints.len(), width)?;
            let mut y = owned::<i64>(inputs.remove(0))?;
            let ints = per_column(&self.ints, width);
            let mut view = y.try_as_plain_ram_mut()?;
            for row in view.as_slice_mut::<i64>()?.chunks_exact_mut(width) {
                for (v, imputed) in row.iter_mut().zip(&ints) {
                    if *v == self.replaced_int {
                        *v = *imputed;
                    }
                }
            }
            return Ok(tvec!(y.into_tvalue()));
        }
        check_width("Imputer", "imputed_value_floats", self.floats.len(), width)?;
        let mut y = owned::<f32>(inputs.remove(0))?;
        let floats = per_column(&self.floats, width);
        let (replaced, replace_nan) = (self.replaced_float, self.replaced_float.is_nan());
        let mut view = y.try_as_plain_ram_mut()?;
        for row in view.as_slice_mut::<f32>()?.chunks_exact_mut(width) {
            for (v, imputed) in row.iter_mut().zip(&floats) {
                // A select rather than a branch, so that whole rows are done at once.
                let missing = (replace_nan && v.is_nan()) || *v == replaced;
                *v = if missing { *imputed } else { *v };
            }
        }
        Ok(tvec!(y.into_tvalue()))
    }
}

/// `Y = X > threshold ? 1 : 0`, in the input's float type.
#[derive(Debug)]
struct Binarizer {
    threshold: f32,
}

pub fn binarizer(_ctx: &ParsingContext, node: &NodeProto) -> TractResult<(Box<dyn InferenceOp>, Vec<String>)> {
    let threshold = node.get_attr_opt::<f32>("threshold")?.unwrap_or(0.0);
    Ok((expand_kernel(Binarizer { threshold }), vec![]))
}

impl Kernel for Binarizer {
    fn name(&self) -> &'static str {
        "Binarizer"
    }

    fn output_facts(&self, inputs: &[&TypedFact]) -> TractResult<TVec<TypedFact>> {
        Ok(tvec!(f32::fact(inputs[0].shape.iter())))
    }

    fn eval(&self, mut inputs: TVec<TValue>) -> TractResult<TVec<TValue>> {
        let mut y = owned::<f32>(inputs.remove(0))?;
        let mut view = y.try_as_plain_ram_mut()?;
        for v in view.as_slice_mut::<f32>()? {
            *v = if *v > self.threshold { 1.0 } else { 0.0 };
        }
        Ok(tvec!(y.into_tvalue()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::onnx_ml::tests::eval;

    fn values(t: &TValue) -> Vec<f32> {
        t.to_plain_array_view::<f32>().expect("f32").iter().copied().collect()
    }

    #[test]
    fn scaler_subtracts_then_multiplies_per_column() {
        let k = Scaler { offset: vec![1.0, 10.0], scale: vec![2.0, 0.5] };
        assert_eq!(values(&eval(&k, tensor2(&[[3.0f32, 14.0], [1.0, 10.0]]))[0]), [4.0, 2.0, 0.0, 0.0]);
        let e = k.eval(tvec!(tensor2(&[[1.0f32, 2.0, 3.0]]).into_tvalue())).expect_err("3 columns");
        assert!(e.to_string().contains("offset has 2 values for 3 columns"), "{e}");
    }

    #[test]
    fn imputer_replaces_nan_per_column_and_sentinels() {
        let k = Imputer { floats: vec![7.0, 8.0], replaced_float: f32::NAN, ints: vec![], replaced_int: 0 };
        assert_eq!(values(&eval(&k, tensor2(&[[f32::NAN, 1.0], [2.0, f32::NAN]]))[0]), [7.0, 1.0, 2.0, 8.0]);
        let k = Imputer { floats: vec![], replaced_float: f32::NAN, ints: vec![5], replaced_int: -1 };
        let out = eval(&k, tensor2(&[[-1i64, 3]]));
        assert_eq!(out[0].to_plain_array_view::<i64>().expect("i64").as_slice(), Some(&[5, 3][..]));
    }

    #[test]
    fn binarizer_is_strictly_greater_than() {
        let k = Binarizer { threshold: 0.5 };
        assert_eq!(values(&eval(&k, tensor2(&[[0.5f32, 0.6, -1.0]]))[0]), [0.0, 1.0, 0.0]);
    }
}

//! `ArrayFeatureExtractor`: selects columns (last-axis entries) by index.
//!
//! tract 0.23 does not implement it; scikit-learn's ColumnTransformer exports column
//! selection on a single tensor input with it.

use tract_onnx::model::ParsingContext;
use tract_onnx::pb::NodeProto;
use tract_onnx::tract_hir::internal::*;

use super::{Kernel, expand_kernel};

#[derive(Debug)]
struct ArrayFeatureExtractor;

pub fn array_feature_extractor(
    _ctx: &ParsingContext,
    _node: &NodeProto,
) -> TractResult<(Box<dyn InferenceOp>, Vec<String>)> {
    Ok((expand_kernel(ArrayFeatureExtractor), vec![]))
}

fn gather<T: Datum>(x: &Tensor, indices: &[usize], width: usize) -> TractResult<Tensor> {
    let rows = if width == 0 { 0 } else { x.len() / width };
    let values = x.to_plain_array_view::<T>()?;
    let flat: Vec<T> = values.iter().cloned().collect();
    let mut out = Vec::with_capacity(rows * indices.len());
    for r in 0..rows {
        for &i in indices {
            out.push(flat[r * width + i].clone());
        }
    }
    let mut shape: Vec<usize> = if x.rank() <= 1 { vec![1] } else { x.shape()[..x.rank() - 1].to_vec() };
    shape.push(indices.len());
    Ok(tract_ndarray::ArrayD::from_shape_vec(shape, out)?.into_tensor())
}

impl Kernel for ArrayFeatureExtractor {
    fn name(&self) -> &'static str {
        "ArrayFeatureExtractor"
    }

    fn inputs(&self) -> usize {
        2
    }

    fn output_facts(&self, inputs: &[&TypedFact]) -> TractResult<TVec<TypedFact>> {
        let x = inputs[0];
        let n: TDim = inputs.get(1).map(|i| i.shape.iter().product()).unwrap_or_else(|| 1.to_dim());
        let mut shape: TVec<TDim> =
            if x.rank() <= 1 { tvec!(1.to_dim()) } else { x.shape.iter().take(x.rank() - 1).cloned().collect() };
        shape.push(n);
        Ok(tvec!(x.datum_type.fact(shape)))
    }

    fn eval(&self, inputs: TVec<TValue>) -> TractResult<TVec<TValue>> {
        let x = &inputs[0];
        let width = x.shape().last().copied().unwrap_or(0);
        let indices: Vec<usize> = inputs[1]
            .cast_to::<i64>()?
            .to_plain_array_view::<i64>()?
            .iter()
            .map(|&i| usize::try_from(i).ok().filter(|i| *i < width))
            .collect::<Option<_>>()
            .ok_or_else(|| format_err!("ArrayFeatureExtractor: an index is outside 0..{width}"))?;
        let out = dispatch_datum!(gather(x.datum_type())(x, &indices, width))?;
        Ok(tvec!(out.into_tvalue()))
    }
}

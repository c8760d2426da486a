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

/// An `ArrayFeatureExtractor` to wire into a test graph.
#[cfg(test)]
pub(super) fn extractor_op() -> super::KernelOp {
    super::KernelOp::new(ArrayFeatureExtractor)
}

fn gather<T: Datum>(x: &Tensor, indices: &[usize], width: usize) -> TractResult<Tensor> {
    let rows = x.len().checked_div(width).unwrap_or(0);
    let mut out = Vec::with_capacity(rows * indices.len());
    let view = x.to_plain_array_view::<T>()?;
    // Only the selected entries are cloned: for string columns a copy of the whole input
    // would cost an allocation per cell that the output drops again.
    if let Some(flat) = view.as_slice() {
        for row in flat.chunks_exact(width.max(1)).take(rows) {
            out.extend(indices.iter().map(|&i| row[i].clone()));
        }
    } else {
        let flat: Vec<&T> = view.iter().collect();
        for row in flat.chunks_exact(width.max(1)).take(rows) {
            out.extend(indices.iter().map(|&i| row[i].clone()));
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

/// `OneHotEncoder`: each value becomes a 0/1 vector over the categories, on a new last axis.
///
/// tract 0.23 does not implement it; scikit-learn's OneHotEncoder exports it.
#[derive(Debug)]
struct OneHotEncoder {
    strings: Vec<String>,
    ints: Vec<i64>,
    /// Whether an unknown category yields all zeros (`zeros=1`) rather than an error.
    zeros: bool,
}

pub fn one_hot_encoder(_ctx: &ParsingContext, node: &NodeProto) -> TractResult<(Box<dyn InferenceOp>, Vec<String>)> {
    let strings = node.get_attr_opt_vec::<String>("cats_strings")?.unwrap_or_default();
    let ints = node.get_attr_opt_vec::<i64>("cats_int64s")?.unwrap_or_default();
    if strings.is_empty() == ints.is_empty() {
        bail!("OneHotEncoder {:?}: needs exactly one of cats_strings and cats_int64s", node.name);
    }
    let zeros = node.get_attr_opt::<i64>("zeros")?.unwrap_or(1) != 0;
    Ok((expand_kernel(OneHotEncoder { strings, ints, zeros }), vec![]))
}

impl OneHotEncoder {
    fn categories(&self) -> usize {
        self.strings.len().max(self.ints.len())
    }
}

impl Kernel for OneHotEncoder {
    fn name(&self) -> &'static str {
        "OneHotEncoder"
    }

    fn output_facts(&self, inputs: &[&TypedFact]) -> TractResult<TVec<TypedFact>> {
        let mut shape: TVec<TDim> = inputs[0].shape.iter().cloned().collect();
        shape.push(self.categories().to_dim());
        Ok(tvec!(f32::fact(shape)))
    }

    fn eval(&self, inputs: TVec<TValue>) -> TractResult<TVec<TValue>> {
        let x = &inputs[0];
        let n = self.categories();
        let positions: Vec<Option<usize>> = if x.datum_type() == DatumType::String {
            if self.strings.is_empty() {
                bail!("OneHotEncoder: string input but integer categories");
            }
            x.to_plain_array_view::<String>()?.iter().map(|s| self.strings.iter().position(|c| c == s)).collect()
        } else {
            if self.ints.is_empty() {
                bail!("OneHotEncoder: numeric input but string categories");
            }
            x.cast_to::<i64>()?
                .to_plain_array_view::<i64>()?
                .iter()
                .map(|v| self.ints.iter().position(|c| c == v))
                .collect()
        };
        let mut out = vec![0f32; positions.len() * n];
        for (i, p) in positions.iter().enumerate() {
            match p {
                Some(p) => out[i * n + p] = 1.0,
                None if self.zeros => {}
                None => bail!("OneHotEncoder: a value is not among the categories and zeros=0"),
            }
        }
        let mut shape = x.shape().to_vec();
        shape.push(n);
        Ok(tvec!(tract_ndarray::ArrayD::from_shape_vec(shape, out)?.into_tensor().into_tvalue()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn array_feature_extractor_gathers_columns() {
        let out = ArrayFeatureExtractor
            .eval(tvec!(
                tensor2(&[[1.0f32, 2.0, 3.0], [4.0, 5.0, 6.0]]).into_tvalue(),
                tensor1(&[2i64, 0]).into_tvalue()
            ))
            .expect("gathers");
        assert_eq!(out[0].shape(), &[2, 2]);
        assert_eq!(out[0].to_plain_array_view::<f32>().expect("f32").as_slice(), Some(&[3.0, 1.0, 6.0, 4.0][..]));
        let e = ArrayFeatureExtractor
            .eval(tvec!(tensor2(&[[1.0f32]]).into_tvalue(), tensor1(&[3i64]).into_tvalue()))
            .expect_err("out of range");
        assert!(e.to_string().contains("outside 0..1"), "{e}");
    }

    #[test]
    fn one_hot_encoder_handles_unknown_categories_as_configured() {
        let k = OneHotEncoder { strings: vec!["a".into(), "b".into()], ints: vec![], zeros: true };
        let input = tract_ndarray::arr2(&[["b".to_string()], ["zzz".to_string()]]).into_tensor();
        let out = k.eval(tvec!(input.clone().into_tvalue())).expect("encodes");
        assert_eq!(out[0].shape(), &[2, 1, 2]);
        assert_eq!(out[0].to_plain_array_view::<f32>().expect("f32").as_slice(), Some(&[0.0, 1.0, 0.0, 0.0][..]));
        let strict = OneHotEncoder { zeros: false, ..k };
        assert!(strict.eval(tvec!(input.into_tvalue())).is_err());
    }
}

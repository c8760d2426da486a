//! `Normalizer` as one kernel: each row divided by its norm in one pass over the batch.
//!
//! tract 0.23 expands the operator into five nodes (an absolute value or a square, a
//! reduction, a clamp, an inverse and a product), each with its own output tensor. It also
//! reads `MAX` as the largest absolute value and clamps every norm to 10⁻¹², where
//! onnxruntime divides by the largest value itself and leaves a row whose norm is zero as it
//! is. This kernel computes what onnxruntime computes, in the same order of operations:
//! `MAX` is `x / max(x)`, `L1` is `x / Σ|x|`, and `L2` is `sign(x) · √(x² / Σx²)`.

use tract_onnx::model::ParsingContext;
use tract_onnx::pb::NodeProto;
use tract_onnx::tract_hir::internal::*;

use super::elementwise::owned;
use super::{Kernel, expand_kernel};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Norm {
    Max,
    L1,
    L2,
}

#[derive(Debug)]
struct Normalizer {
    norm: Norm,
}

pub fn normalizer(_ctx: &ParsingContext, node: &NodeProto) -> TractResult<(Box<dyn InferenceOp>, Vec<String>)> {
    let norm = match node.get_attr_opt::<String>("norm")?.as_deref().unwrap_or("MAX") {
        "MAX" => Norm::Max,
        "L1" => Norm::L1,
        "L2" => Norm::L2,
        other => bail!("Normalizer {:?}: unknown norm {other:?}, expected MAX, L1 or L2", node.name),
    };
    Ok((expand_kernel(Normalizer { norm }), vec![]))
}

impl Normalizer {
    /// One row, normalised in place. For `L2`, `squares` holds `x²` per value when the input
    /// was f64 or an integer, squared in its own type and rounded to float as onnxruntime does;
    /// otherwise the squares of the row's own values are used.
    fn row(&self, row: &mut [f32], squares: Option<&[f32]>) {
        let square = |i: usize, v: f32| squares.map_or(v * v, |sq| sq[i]);
        let norm = match self.norm {
            Norm::Max => row.iter().copied().fold(f32::MIN, f32::max),
            Norm::L1 => row.iter().map(|v| v.abs()).sum(),
            Norm::L2 => row.iter().enumerate().map(|(i, v)| square(i, *v)).sum(),
        };
        if norm == 0.0 {
            return;
        }
        match self.norm {
            Norm::Max | Norm::L1 => row.iter_mut().for_each(|v| *v /= norm),
            Norm::L2 => {
                for (i, v) in row.iter_mut().enumerate() {
                    let magnitude = (square(i, *v) / norm).sqrt();
                    *v = if *v < 0.0 { -magnitude } else { magnitude };
                }
            }
        }
    }
}

impl Kernel for Normalizer {
    fn name(&self) -> &'static str {
        "Normalizer"
    }

    fn output_facts(&self, inputs: &[&TypedFact]) -> TractResult<TVec<TypedFact>> {
        Ok(tvec!(f32::fact(inputs[0].shape.iter())))
    }

    fn eval(&self, mut inputs: TVec<TValue>) -> TractResult<TVec<TValue>> {
        let input = inputs.remove(0);
        let width = match input.shape() {
            [w] | [_, w] => *w,
            other => bail!("Normalizer: expected a row or a matrix of rows, got shape {other:?}"),
        };
        // The squares of a wider or integer input, taken before it is cast to float.
        let squares: Option<Vec<f32>> = match (self.norm, input.datum_type()) {
            (Norm::L2, DatumType::F64) => {
                Some(input.to_plain_array_view::<f64>()?.iter().map(|x| (x * x) as f32).collect())
            }
            (Norm::L2, DatumType::I64) => {
                Some(input.to_plain_array_view::<i64>()?.iter().map(|x| x.wrapping_mul(*x) as f32).collect())
            }
            (Norm::L2, DatumType::I32) => {
                Some(input.to_plain_array_view::<i32>()?.iter().map(|x| x.wrapping_mul(*x) as f32).collect())
            }
            _ => None,
        };
        let mut y = owned::<f32>(input)?;
        let mut view = y.try_as_plain_ram_mut()?;
        let width = width.max(1);
        for (r, row) in view.as_slice_mut::<f32>()?.chunks_exact_mut(width).enumerate() {
            self.row(row, squares.as_deref().map(|sq| &sq[r * width..(r + 1) * width]));
        }
        Ok(tvec!(y.into_tvalue()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::onnx_ml::tests::eval;

    fn run(norm: Norm, x: Tensor) -> Vec<f32> {
        let out = eval(&Normalizer { norm }, x);
        out[0].to_plain_array_view::<f32>().expect("f32").iter().copied().collect()
    }

    #[test]
    fn max_divides_by_the_largest_value_not_the_largest_magnitude() {
        // onnxruntime divides [-4, 2] by 2, and [-4, -2] by -2.
        assert_eq!(run(Norm::Max, tensor2(&[[-4.0f32, 2.0], [-4.0, -2.0]])), [-2.0, 1.0, 2.0, 1.0]);
    }

    #[test]
    fn l1_divides_by_the_sum_of_magnitudes() {
        assert_eq!(run(Norm::L1, tensor2(&[[-1.0f32, 3.0], [2.0, 2.0]])), [-0.25, 0.75, 0.5, 0.5]);
    }

    #[test]
    fn l2_keeps_the_sign_of_each_value() {
        assert_eq!(run(Norm::L2, tensor2(&[[-3.0f32, 4.0]])), [-0.6, 0.8]);
        // An integer input is read as onnxruntime reads it.
        assert_eq!(run(Norm::L2, tensor2(&[[3i64, -4]])), [0.6, -0.8]);
        assert_eq!(run(Norm::L2, tensor2(&[[3.0f64, -4.0]])), [0.6, -0.8]);
    }

    #[test]
    fn a_row_whose_norm_is_zero_is_left_as_it_is() {
        for norm in [Norm::Max, Norm::L1, Norm::L2] {
            assert_eq!(run(norm, tensor2(&[[0.0f32, 0.0], [1.0, 0.0]])), [0.0, 0.0, 1.0, 0.0], "{norm:?}");
        }
        // A single row of rank 1.
        assert_eq!(run(Norm::L1, tensor1(&[1.0f32, 1.0])), [0.5, 0.5]);
    }

    #[test]
    fn a_tensor_of_rank_three_is_refused() {
        let k = Normalizer { norm: Norm::L1 };
        let e = k.eval(tvec!(Tensor::zero::<f32>(&[1, 2, 2]).expect("zeros").into_tvalue())).expect_err("rank 3");
        assert!(e.to_string().contains("shape [1, 2, 2]"), "{e}");
    }
}

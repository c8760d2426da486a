//! Softmax and arg-max over the last axis as one loop per row, in place of tract's for a
//! classifier's class scores.
//!
//! tract 0.23 runs its vectorised softmax only when a row's length is a multiple of four;
//! otherwise it calls three linalg kernels per row (max, exp-sum, scale), each with its own
//! dispatch and scratch buffer. Its `ArgMax` and `ArgMin` build an ndarray slice description
//! (a heap vector) for every output element. For an MLP classifier's three classes at 100
//! rows these two operators took more time than its three matrix products. Replace this
//! rewrite when tract's short-row softmax and its arg-reductions work on whole rows.

use tract_onnx::tract_core::ops::nn::{Reduce, Reducer, Softmax, SoftmaxKind};
use tract_onnx::tract_hir::internal::*;

use super::{Kernel, KernelOp};

/// Softmax rows at least this long keep tract's kernels, which pay off on longer rows.
const SHORT: usize = 16;

#[derive(Debug)]
struct RowSoftmax {
    row: usize,
}

impl Kernel for RowSoftmax {
    fn name(&self) -> &'static str {
        "RowSoftmax"
    }

    fn output_facts(&self, inputs: &[&TypedFact]) -> TractResult<TVec<TypedFact>> {
        Ok(tvec!(f32::fact(inputs[0].shape.iter().cloned().collect::<TVec<_>>())))
    }

    fn eval(&self, inputs: TVec<TValue>) -> TractResult<TVec<TValue>> {
        let mut output = inputs.into_iter().next().context("softmax: no input")?.into_tensor();
        let mut plain = output.try_as_plain_ram_mut()?;
        let data = plain.as_slice_mut::<f32>()?;
        for row in data.chunks_exact_mut(self.row.max(1)) {
            let max = row.iter().copied().fold(f32::NEG_INFINITY, f32::max);
            let mut sum = 0f32;
            for x in row.iter_mut() {
                *x = (*x - max).exp();
                sum += *x;
            }
            let scale = sum.recip();
            for x in row.iter_mut() {
                *x *= scale;
            }
        }
        Ok(tvec!(output.into_tvalue()))
    }
}

/// The position of each row's largest (or smallest) value, as an i64 tensor whose last axis
/// has length one, as tract's `Reduce` leaves it.
#[derive(Debug)]
struct RowArgExtreme {
    row: usize,
    /// The smallest value rather than the largest.
    min: bool,
    /// The last of equal extremes rather than the first (`select_last_index`).
    last: bool,
}

impl RowArgExtreme {
    fn position(&self, row: &[f32]) -> i64 {
        let mut best = 0;
        for (i, &v) in row.iter().enumerate().skip(1) {
            let better = if self.min { v < row[best] } else { v > row[best] };
            if better || (self.last && v == row[best]) {
                best = i;
            }
        }
        best as i64
    }
}

impl Kernel for RowArgExtreme {
    fn name(&self) -> &'static str {
        if self.min { "RowArgMin" } else { "RowArgMax" }
    }

    fn output_facts(&self, inputs: &[&TypedFact]) -> TractResult<TVec<TypedFact>> {
        let mut shape: TVec<TDim> = inputs[0].shape.iter().cloned().collect();
        if let Some(last) = shape.last_mut() {
            *last = 1.to_dim();
        }
        Ok(tvec!(i64::fact(shape)))
    }

    fn eval(&self, inputs: TVec<TValue>) -> TractResult<TVec<TValue>> {
        let x = &inputs[0];
        let view = x.to_plain_array_view::<f32>()?;
        let flat = view.as_slice().context("arg-reduction: the input is not contiguous")?;
        let positions: Vec<i64> = flat.chunks_exact(self.row).map(|r| self.position(r)).collect();
        let mut shape = x.shape().to_vec();
        if let Some(last) = shape.last_mut() {
            *last = 1;
        }
        Ok(tvec!(tract_ndarray::ArrayD::from_shape_vec(shape, positions)?.into_tensor().into_tvalue()))
    }
}

/// The length of the last axis of an f32 input when it is known and the operator works
/// along that axis alone.
fn last_axis_row(model: &TypedModel, id: usize, axes: &[usize]) -> TractResult<Option<usize>> {
    let fact = model.outlet_fact(model.node(id).inputs[0])?;
    let rank = fact.rank();
    if fact.datum_type != f32::datum_type() || axes.len() != 1 || axes[0] + 1 != rank {
        return Ok(None);
    }
    Ok(fact.shape.last().and_then(|d| d.to_usize().ok()).filter(|row| *row > 0))
}

/// Replaces each f32 softmax over a short last axis, and each f32 arg-max or arg-min over
/// the last axis, of known length, with a loop per row.
pub fn rewrite(model: &mut TypedModel) -> TractResult<()> {
    for id in 0..model.nodes.len() {
        let op: Box<dyn TypedOp> = if let Some(softmax) = model.node(id).op_as::<Softmax>() {
            if softmax.kind != SoftmaxKind::Softmax || softmax.quant_output_dt.is_some() {
                continue;
            }
            match last_axis_row(model, id, &softmax.axes)? {
                Some(row) if row < SHORT => Box::new(KernelOp::new(RowSoftmax { row })),
                _ => continue,
            }
        } else if let Some(reduce) = model.node(id).op_as::<Reduce>() {
            let (min, last) = match reduce.reducer {
                Reducer::ArgMax(last) => (false, last),
                Reducer::ArgMin(last) => (true, last),
                _ => continue,
            };
            match last_axis_row(model, id, &reduce.axes)? {
                Some(row) => Box::new(KernelOp::new(RowArgExtreme { row, min, last })),
                None => continue,
            }
        } else {
            continue;
        };
        model.node_mut(id).op = op;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn softmax_rows_sum_to_one_and_keep_their_order() {
        let input = tensor2(&[[1.0f32, 2.0, 3.0], [-1000.0, 0.0, 1000.0], [0.5, 0.5, 0.5]]);
        let out = RowSoftmax { row: 3 }.eval(tvec!(input.into_tvalue())).expect("softmax");
        let v = out[0].to_plain_array_view::<f32>().expect("f32");
        let v = v.as_slice().expect("contiguous");
        let e = [1f32.exp(), 2f32.exp(), 3f32.exp()];
        let total: f32 = e.iter().sum();
        for (got, want) in v[..3].iter().zip(e.iter().map(|x| x / total)) {
            assert!((got - want).abs() < 1e-6, "{got} vs {want}");
        }
        assert_eq!(&v[3..6], &[0.0, 0.0, 1.0]);
        for got in &v[6..] {
            assert!((got - 1.0 / 3.0).abs() < 1e-6, "{got}");
        }
    }

    #[test]
    fn arg_extremes_pick_the_first_or_last_of_ties() {
        let input = tensor2(&[[1.0f32, 3.0, 3.0, 0.0], [f32::NEG_INFINITY, f32::NEG_INFINITY, -1.0, -1.0]]);
        let run = |min, last| {
            let out = RowArgExtreme { row: 4, min, last }.eval(tvec!(input.clone().into_tvalue())).expect("arg");
            assert_eq!(out[0].shape(), &[2, 1]);
            out[0].to_plain_array_view::<i64>().expect("i64").iter().copied().collect::<Vec<_>>()
        };
        assert_eq!(run(false, false), [1, 2]);
        assert_eq!(run(false, true), [2, 3]);
        assert_eq!(run(true, false), [3, 0]);
        assert_eq!(run(true, true), [3, 1]);
    }

    #[test]
    fn rewrite_replaces_only_last_axis_f32_operators() {
        let mut model = TypedModel::default();
        let short = model.add_source("short", f32::fact([2usize, 3])).expect("source");
        let long = model.add_source("long", f32::fact([2usize, 20])).expect("source");
        let ints = model.add_source("ints", i64::fact([2usize, 3])).expect("source");
        let softmax = |axis| Softmax::new(tvec!(axis), None, SoftmaxKind::Softmax);
        let argmax = |axis| Reduce::new(tvec!(axis), Reducer::ArgMax(false));
        let wired = [
            model.wire_node("a", softmax(1), &[short]).expect("wire")[0],
            model.wire_node("b", softmax(1), &[long]).expect("wire")[0],
            model.wire_node("c", softmax(0), &[short]).expect("wire")[0],
            model.wire_node("d", argmax(1), &[long]).expect("wire")[0],
            model.wire_node("e", argmax(0), &[short]).expect("wire")[0],
            model.wire_node("f", argmax(1), &[ints]).expect("wire")[0],
        ];
        model.select_output_outlets(&wired).expect("outputs");
        rewrite(&mut model).expect("rewrite");
        let names: Vec<String> = ["a", "b", "c", "d", "e", "f"]
            .iter()
            .map(|n| model.node(model.node_by_name(n).expect("node").id).op.name().to_string())
            .collect();
        assert_eq!(
            names,
            ["RowSoftmax", "Softmax", "Softmax", "RowArgMax", "Reduce<ArgMax(false)>", "Reduce<ArgMax(false)>"]
        );
    }
}

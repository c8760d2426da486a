//! A column picked out of a concatenation of columns is the column that went in.
//!
//! scikit-learn's `ColumnTransformer` exports concatenate a pipeline's columns and pick each
//! one out again (`Concat` then `ArrayFeatureExtractor` or `Gather` with a constant index),
//! once to impute and once to encode. tract folds such picks into slices for numbers only;
//! on string columns each of those operators clones every cell it passes on, an allocation
//! per cell, and they took most of the time of a model with two string columns at 100 rows.
//! This rewrite wires the consumers of such a pick straight to the concatenated input, when
//! that input is the one column picked, with the same type and shape.

use tract_onnx::tract_core::ops::array::{Gather, TypedConcat};
use tract_onnx::tract_hir::internal::*;

use super::KernelOp;

/// Replaces every column pick out of a concatenation by the concatenated column.
pub fn rewrite(model: &mut TypedModel) -> TractResult<()> {
    for id in 0..model.nodes.len() {
        if let Some(column) = picked_column(model, id)? {
            // Applying the patch hands the pick's name to the column; a model input keeps its own.
            let label = model.outlet_labels.get(&column).cloned();
            let mut patch = TypedModelPatch::default();
            let tap = patch.tap_model(model, column)?;
            patch.shunt_outside(model, OutletId::new(id, 0), tap)?;
            patch.apply(model)?;
            match label {
                Some(label) => model.outlet_labels.insert(column, label),
                None => model.outlet_labels.remove(&column),
            };
        }
    }
    Ok(())
}

/// The input of a `Concat` that node `id` picks whole, if it is such a pick.
fn picked_column(model: &TypedModel, id: usize) -> TractResult<Option<OutletId>> {
    let node = model.node(id);
    // A pick that is itself a model output keeps its node, so that the output keeps its name.
    if node.inputs.len() != 2 || node.outputs.len() != 1 || model.output_outlets()?.contains(&OutletId::new(id, 0)) {
        return Ok(None);
    }
    let data = model.outlet_fact(node.inputs[0])?;
    // `Gather` counts negative indices from the end; `ArrayFeatureExtractor` refuses them,
    // so such a pick is left to fail as it would.
    let (axis, wraps) = if let Some(gather) = node.op_as::<Gather>() {
        (gather.axis, true)
    } else if node.op_as::<KernelOp>().is_some_and(|k| k.kernel.name() == "ArrayFeatureExtractor") {
        match data.rank().checked_sub(1) {
            Some(last) => (last, false),
            None => return Ok(None),
        }
    } else {
        return Ok(None);
    };
    let Some(index) = model.outlet_fact(node.inputs[1])?.konst.clone() else {
        return Ok(None);
    };
    if index.rank() != 1 || index.len() != 1 {
        return Ok(None);
    }
    let source = model.node(node.inputs[0].node);
    let Some(concat) = source.op_as::<TypedConcat>() else {
        return Ok(None);
    };
    if concat.axis != axis {
        return Ok(None);
    }
    let mut widths = Vec::with_capacity(source.inputs.len());
    for input in &source.inputs {
        match model.outlet_fact(*input)?.shape.get(axis).and_then(|d| d.to_usize().ok()) {
            Some(w) => widths.push(w),
            None => return Ok(None),
        }
    }
    let total: usize = widths.iter().sum();
    let k = index.cast_to_scalar::<i64>()?;
    let k = match usize::try_from(k) {
        Ok(k) => k,
        Err(_) if wraps => match total.checked_sub(k.unsigned_abs() as usize) {
            Some(k) => k,
            None => return Ok(None),
        },
        Err(_) => return Ok(None),
    };
    let mut start = 0;
    for (input, width) in source.inputs.iter().zip(widths) {
        if (start..start + width).contains(&k) {
            let (picked, column) = (model.outlet_fact(OutletId::new(id, 0))?, model.outlet_fact(*input)?);
            let same = width == 1 && picked.datum_type == column.datum_type && picked.shape == column.shape;
            return Ok(same.then_some(*input));
        }
        start += width;
    }
    Ok(None)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::onnx_ml::features;
    use tract_onnx::tract_core::ops::identity::Identity;

    /// Two string columns concatenated, then picked out again by a `Gather` and an
    /// `ArrayFeatureExtractor` that feed further nodes, as a `ColumnTransformer` export does.
    fn concat_and_pick(index: i64) -> TractResult<(TypedModel, [OutletId; 2])> {
        let mut model = TypedModel::default();
        let a = model.add_source("a", String::fact([3usize, 1]))?;
        let b = model.add_source("b", String::fact([3usize, 1]))?;
        let both = model.wire_node("both", TypedConcat { axis: 1 }, &[a, b])?[0];
        let k = model.add_const("k", tensor1(&[index]))?;
        let gathered = model.wire_node("gather", Gather::new(1), &[both, k])?[0];
        let extracted = model.wire_node("extract", features::extractor_op(), &[both, k])?[0];
        let outputs = [
            model.wire_node("gathered.next", Identity, &[gathered])?[0],
            model.wire_node("extracted.next", Identity, &[extracted])?[0],
        ];
        model.select_output_outlets(&outputs)?;
        // ONNX names every tensor; a source may or may not carry its name as a label.
        model.set_outlet_label(gathered, "gathered".into())?;
        model.set_outlet_label(extracted, "extracted".into())?;
        model.set_outlet_label(b, "b".into())?;
        Ok((model, [a, b]))
    }

    fn run(model: TypedModel) -> TractResult<Vec<Vec<String>>> {
        let column = |v: [&str; 3]| tensor2(&[[v[0].to_string()], [v[1].to_string()], [v[2].to_string()]]);
        let plan = model.into_optimized()?.into_runnable()?;
        let out = plan.run(tvec!(column(["x", "y", ""]).into_tvalue(), column(["L", "", "S"]).into_tvalue()))?;
        out.iter().map(|t| Ok(t.to_plain_array_view::<String>()?.iter().cloned().collect())).collect()
    }

    /// What feeds the node behind each model output.
    fn fed_from(model: &TypedModel) -> TractResult<Vec<OutletId>> {
        Ok(model.output_outlets()?.iter().map(|o| model.node(o.node).inputs[0]).collect())
    }

    #[test]
    fn a_picked_column_is_the_column_that_went_in() -> TractResult<()> {
        for (index, want) in [(0, "a"), (1, "b"), (-1, "b")] {
            let (plain, _) = concat_and_pick(index)?;
            let before = if index < 0 { None } else { Some(run(plain)?) };
            let (mut model, sources) = concat_and_pick(index)?;
            rewrite(&mut model)?;
            let fed = fed_from(&model)?;
            let source = sources[usize::from(want == "b")];
            // Gather wraps a negative index; ArrayFeatureExtractor refuses it, so it stays.
            assert_eq!(fed[0], source, "gather of {index}");
            assert_eq!(fed[1] == source, index >= 0, "extract of {index}");
            for (source, name) in sources.iter().zip(["a", "b"]) {
                assert_eq!(model.outlet_label(*source).unwrap_or(&model.node(source.node).name), name);
            }
            if let Some(before) = before {
                assert_eq!(run(model)?, before);
            }
        }
        Ok(())
    }

    #[test]
    fn picks_of_wider_inputs_out_of_range_or_output_are_left_alone() -> TractResult<()> {
        let mut model = TypedModel::default();
        let a = model.add_source("a", String::fact([3usize, 2]))?;
        let b = model.add_source("b", String::fact([3usize, 1]))?;
        let both = model.wire_node("both", TypedConcat { axis: 1 }, &[a, b])?[0];
        let (mut picks, mut outputs) = (vec![], vec![]);
        for (name, index) in [("in_a", 1i64), ("beyond", 3), ("before", -4), ("output", 2)] {
            let k = model.add_const(format!("{name}.k"), tensor1(&[index]))?;
            let pick = model.wire_node(name, Gather::new(1), &[both, k])?[0];
            picks.push(pick);
            // The last pick is a model output itself, whose name must stay.
            outputs.push(if name == "output" {
                pick
            } else {
                model.wire_node(format!("{name}.next"), Identity, &[pick])?[0]
            });
        }
        model.select_output_outlets(&outputs)?;
        rewrite(&mut model)?;
        assert_eq!(model.output_outlets()?, outputs.as_slice());
        assert_eq!(fed_from(&model)?[..3], picks[..3]);
        Ok(())
    }
}

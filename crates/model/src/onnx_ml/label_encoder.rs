//! `LabelEncoder` (ai.onnx.ml opsets 1 to 3 attribute forms): maps keys to values.
//!
//! tract 0.23 does not implement it; scikit-learn's OrdinalEncoder and OneHotEncoder
//! pipelines export string and integer lookups with it.

use std::collections::HashMap;

use tract_onnx::model::ParsingContext;
use tract_onnx::pb::NodeProto;
use tract_onnx::tract_hir::internal::*;

use super::{Kernel, expand_kernel};

/// The keys of a lookup, by type, each to the position of its first occurrence. Floats are
/// keyed by bit pattern, so that NaN keys match NaN.
#[derive(Debug)]
enum Index {
    Str(HashMap<String, usize>),
    Int(HashMap<i64, usize>),
    Float(HashMap<u32, usize>),
}

fn float_key(v: f32) -> u32 {
    if v.is_nan() { f32::NAN.to_bits() } else { (v + 0.0).to_bits() }
}

fn first_positions<K: std::hash::Hash + Eq>(keys: impl Iterator<Item = K>) -> HashMap<K, usize> {
    let mut index = HashMap::new();
    for (i, k) in keys.enumerate() {
        index.entry(k).or_insert(i);
    }
    index
}

#[derive(Debug, Clone)]
enum Values {
    Str(Vec<String>, String),
    Int(Vec<i64>, i64),
    Float(Vec<f32>, f32),
}

#[derive(Debug)]
struct LabelEncoder {
    index: Index,
    values: Values,
}

pub fn label_encoder(_ctx: &ParsingContext, node: &NodeProto) -> TractResult<(Box<dyn InferenceOp>, Vec<String>)> {
    Ok((expand_kernel(label_encoder_kernel(node)?), vec![]))
}

fn label_encoder_kernel(node: &NodeProto) -> TractResult<LabelEncoder> {
    let (index, n_keys) = if let Some(k) = node.get_attr_opt_vec::<String>("keys_strings")? {
        (Index::Str(first_positions(k.iter().cloned())), k.len())
    } else if let Some(k) = node.get_attr_opt_vec::<i64>("keys_int64s")? {
        (Index::Int(first_positions(k.iter().copied())), k.len())
    } else if let Some(k) = node.get_attr_opt_vec::<f32>("keys_floats")? {
        (Index::Float(first_positions(k.iter().map(|v| float_key(*v)))), k.len())
    } else {
        bail!(
            "LabelEncoder {:?}: needs keys_strings, keys_int64s or keys_floats (keys_tensor is not supported)",
            node.name
        );
    };
    let values = if let Some(v) = node.get_attr_opt_vec::<String>("values_strings")? {
        Values::Str(v, node.get_attr_opt::<String>("default_string")?.unwrap_or_else(|| "_Unused".into()))
    } else if let Some(v) = node.get_attr_opt_vec::<i64>("values_int64s")? {
        Values::Int(v, node.get_attr_opt::<i64>("default_int64")?.unwrap_or(-1))
    } else if let Some(v) = node.get_attr_opt_vec::<f32>("values_floats")? {
        Values::Float(v, node.get_attr_opt::<f32>("default_float")?.unwrap_or(-0.0))
    } else {
        bail!("LabelEncoder {:?}: needs values_strings, values_int64s or values_floats", node.name);
    };
    let n_values = match &values {
        Values::Str(v, _) => v.len(),
        Values::Int(v, _) => v.len(),
        Values::Float(v, _) => v.len(),
    };
    if n_values != n_keys {
        bail!("LabelEncoder {:?}: {n_keys} keys but {n_values} values", node.name);
    }
    Ok(LabelEncoder { index, values })
}

impl LabelEncoder {
    /// The position of each input's key among the keys, looked up without copying the input.
    fn positions(&self, input: &Tensor) -> TractResult<Vec<Option<usize>>> {
        Ok(match (&self.index, input.datum_type()) {
            (Index::Str(m), DatumType::String) => {
                input.to_plain_array_view::<String>()?.iter().map(|s| m.get(s.as_str()).copied()).collect()
            }
            (Index::Float(m), DatumType::F32 | DatumType::F64) => input
                .cast_to::<f32>()?
                .to_plain_array_view::<f32>()?
                .iter()
                .map(|v| m.get(&float_key(*v)).copied())
                .collect(),
            (Index::Int(m), dt) if !matches!(dt, DatumType::String | DatumType::F32 | DatumType::F64) => {
                input.cast_to::<i64>()?.to_plain_array_view::<i64>()?.iter().map(|v| m.get(v).copied()).collect()
            }
            // A key of another type than the input's matches nothing.
            _ => vec![None; input.len()],
        })
    }
}

impl Kernel for LabelEncoder {
    fn name(&self) -> &'static str {
        "LabelEncoder"
    }

    fn output_facts(&self, inputs: &[&TypedFact]) -> TractResult<TVec<TypedFact>> {
        let dt = match self.values {
            Values::Str(..) => String::datum_type(),
            Values::Int(..) => i64::datum_type(),
            Values::Float(..) => f32::datum_type(),
        };
        Ok(tvec!(dt.fact(inputs[0].shape.iter())))
    }

    fn eval(&self, inputs: TVec<TValue>) -> TractResult<TVec<TValue>> {
        let shape = inputs[0].shape().to_vec();
        let found = self.positions(&inputs[0])?;
        let out = match &self.values {
            Values::Str(v, d) => {
                let data: Vec<String> = found.iter().map(|i| i.map_or_else(|| d.clone(), |i| v[i].clone())).collect();
                tract_ndarray::ArrayD::from_shape_vec(shape, data)?.into_tensor()
            }
            Values::Int(v, d) => {
                let data: Vec<i64> = found.iter().map(|i| i.map_or(*d, |i| v[i])).collect();
                tract_ndarray::ArrayD::from_shape_vec(shape, data)?.into_tensor()
            }
            Values::Float(v, d) => {
                let data: Vec<f32> = found.iter().map(|i| i.map_or(*d, |i| v[i])).collect();
                tract_ndarray::ArrayD::from_shape_vec(shape, data)?.into_tensor()
            }
        };
        Ok(tvec!(out.into_tvalue()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::onnx_ml::tests::{floats, ints, node, strings};

    #[test]
    fn maps_keys_to_values_with_defaults() {
        let n = node("LabelEncoder", vec![strings("keys_strings", &["x", "y"]), ints("values_int64s", &[10, 20])]);
        let (op, _) = label_encoder_kernel(&n).map(|k| (k, ())).expect("parses");
        let input = tract_ndarray::arr1(&["y".to_string(), "q".to_string()]).into_tensor();
        let out = op.eval(tvec!(input.into_tvalue())).expect("maps");
        assert_eq!(out[0].to_plain_array_view::<i64>().expect("i64").as_slice(), Some(&[20, -1][..]));
        let n = node(
            "LabelEncoder",
            vec![floats("keys_floats", &[f32::NAN, 1.0]), strings("values_strings", &["nan", "one"])],
        );
        let k = label_encoder_kernel(&n).expect("parses");
        let out = k.eval(tvec!(tensor1(&[f32::NAN, 1.0, 2.0]).into_tvalue())).expect("maps");
        let got: Vec<String> = out[0].to_plain_array_view::<String>().expect("str").iter().cloned().collect();
        assert_eq!(got, ["nan", "one", "_Unused"]);
        let bad = node("LabelEncoder", vec![strings("keys_strings", &["x"]), ints("values_int64s", &[1, 2])]);
        assert!(label_encoder_kernel(&bad).expect_err("mismatch").to_string().contains("1 keys but 2 values"));
    }
}

//! The ONNX export of a trained model, built with the protobuf types tract-onnx carries: one
//! named input per feature (as a ColumnTransformer export has: float for numbers, string for
//! categories), a LabelEncoder per category, a Concat, and a TreeEnsembleClassifier (integer
//! labels and class probabilities, no ZipMap) or TreeEnsembleRegressor. A binary classifier
//! takes the form LightGBM's converter gives it: every leaf scores class 0 and a logistic
//! turns the sum into `[1 − p, p]`.
//!
//! Split thresholds are rounded up to the next 32-bit float: the inputs are 32-bit floats, and
//! for every such `x`, `x < t` exactly when `x < s` for the booster's 64-bit threshold `s`, so
//! the graph takes the same branches as the native model.

use prost::Message;
use tract_onnx::pb::attribute_proto::AttributeType;
use tract_onnx::pb::tensor_proto::DataType;
use tract_onnx::pb::tensor_shape_proto::{Dimension, dimension};
use tract_onnx::pb::type_proto::{Tensor, Value as TypeValue};
use tract_onnx::pb::{
    AttributeProto, GraphProto, ModelProto, NodeProto, OperatorSetIdProto, StringStringEntryProto, TensorShapeProto,
    TypeProto, ValueInfoProto,
};

use crate::booster::Ensemble;
use crate::config::Task;
use crate::encode::{Encoder, Encoding};
use crate::error::{Error, Result};

const ML: &str = "ai.onnx.ml";

/// The name of the label output of a classifier (integer class indices).
pub const LABEL_OUTPUT: &str = "label";
/// The name of the probabilities output of a classifier.
pub const PROBABILITIES_OUTPUT: &str = "probabilities";
/// The name of the output of a regressor.
pub const VALUE_OUTPUT: &str = "variable";

/// The smallest 32-bit float at or above `s`.
pub fn threshold(s: f64) -> f32 {
    let t = s as f32;
    if f64::from(t) < s { t.next_up() } else { t }
}

fn attr(name: &str) -> AttributeProto {
    AttributeProto { name: name.to_string(), ..AttributeProto::default() }
}

fn ints(name: &str, v: Vec<i64>) -> AttributeProto {
    AttributeProto { ints: v, r#type: AttributeType::Ints as i32, ..attr(name) }
}

fn floats(name: &str, v: Vec<f32>) -> AttributeProto {
    AttributeProto { floats: v, r#type: AttributeType::Floats as i32, ..attr(name) }
}

fn strings(name: &str, v: &[String]) -> AttributeProto {
    AttributeProto {
        strings: v.iter().map(|s| s.as_bytes().to_vec()).collect(),
        r#type: AttributeType::Strings as i32,
        ..attr(name)
    }
}

fn string(name: &str, v: &str) -> AttributeProto {
    AttributeProto { s: v.as_bytes().to_vec(), r#type: AttributeType::String as i32, ..attr(name) }
}

fn int(name: &str, v: i64) -> AttributeProto {
    AttributeProto { i: v, r#type: AttributeType::Int as i32, ..attr(name) }
}

fn float(name: &str, v: f32) -> AttributeProto {
    AttributeProto { f: v, r#type: AttributeType::Float as i32, ..attr(name) }
}

fn tensor(name: &str, elem: DataType, dims: &[Option<i64>]) -> ValueInfoProto {
    let dim = dims
        .iter()
        .map(|d| Dimension {
            value: Some(match d {
                Some(n) => dimension::Value::DimValue(*n),
                None => dimension::Value::DimParam("N".into()),
            }),
            ..Dimension::default()
        })
        .collect();
    ValueInfoProto {
        name: name.to_string(),
        r#type: Some(TypeProto {
            value: Some(TypeValue::TensorType(Tensor {
                elem_type: elem as i32,
                shape: Some(TensorShapeProto { dim }),
            })),
            ..TypeProto::default()
        }),
        ..ValueInfoProto::default()
    }
}

fn node(
    op: &str,
    domain: &str,
    inputs: Vec<String>,
    outputs: Vec<String>,
    attribute: Vec<AttributeProto>,
) -> NodeProto {
    NodeProto {
        name: format!("{op}_{}", outputs.first().cloned().unwrap_or_default()),
        op_type: op.to_string(),
        domain: domain.to_string(),
        input: inputs,
        output: outputs,
        attribute,
        ..NodeProto::default()
    }
}

/// The nodes of every tree, flattened as the ONNX tree ensembles take them; leaf weights are
/// emitted by `leaf(tree_index, booster_index, weight)`.
struct Nodes {
    tree_ids: Vec<i64>,
    node_ids: Vec<i64>,
    features: Vec<i64>,
    modes: Vec<String>,
    values: Vec<f32>,
    true_ids: Vec<i64>,
    false_ids: Vec<i64>,
    missing_true: Vec<i64>,
    leaf_trees: Vec<i64>,
    leaf_nodes: Vec<i64>,
    leaf_targets: Vec<i64>,
    leaf_weights: Vec<f32>,
}

fn flatten(ensemble: &Ensemble, binary: bool) -> Result<Nodes> {
    let mut n = Nodes {
        tree_ids: vec![],
        node_ids: vec![],
        features: vec![],
        modes: vec![],
        values: vec![],
        true_ids: vec![],
        false_ids: vec![],
        missing_true: vec![],
        leaf_trees: vec![],
        leaf_nodes: vec![],
        leaf_targets: vec![],
        leaf_weights: vec![],
    };
    let mut tree_id = 0i64;
    for (k, booster) in ensemble.boosters.iter().enumerate() {
        for tree in &booster.trees {
            for (i, node) in tree.nodes.iter().enumerate() {
                n.tree_ids.push(tree_id);
                n.node_ids.push(i as i64);
                if node.is_leaf {
                    n.features.push(0);
                    n.modes.push("LEAF".into());
                    n.values.push(0.0);
                    n.true_ids.push(0);
                    n.false_ids.push(0);
                    n.missing_true.push(0);
                    // A binary classifier's leaves all score class 0, as onnxruntime's binary
                    // case wants: the sum is the log-odds of the second class.
                    n.leaf_trees.push(tree_id);
                    n.leaf_nodes.push(i as i64);
                    n.leaf_targets.push(if binary { 0 } else { k as i64 });
                    n.leaf_weights.push(node.weight_value);
                } else {
                    if node.missing_node != node.left_child && node.missing_node != node.right_child {
                        return Err(Error::Invalid(
                            "a tree has a separate missing branch, which ONNX cannot hold".into(),
                        ));
                    }
                    n.features.push(node.split_feature as i64);
                    n.modes.push("BRANCH_LT".into());
                    n.values.push(threshold(node.split_value));
                    n.true_ids.push(node.left_child as i64);
                    n.false_ids.push(node.right_child as i64);
                    n.missing_true.push(i64::from(node.missing_node == node.left_child));
                }
            }
            tree_id += 1;
        }
    }
    Ok(n)
}

/// Builds the ONNX model of a trained ensemble. `classes` names the classes of a classifier
/// (recorded in the model's metadata as `class_labels`, JSON).
pub fn export(
    graph_name: &str,
    encoder: &Encoder,
    ensemble: &Ensemble,
    classes: Option<&[String]>,
    metadata: &[(String, String)],
) -> Result<Vec<u8>> {
    let mut inputs = Vec::new();
    let mut nodes = Vec::new();
    let mut encoded = Vec::new();
    for feature in &encoder.features {
        match &feature.encoding {
            Encoding::Numeric => {
                inputs.push(tensor(&feature.name, DataType::Float, &[None, Some(1)]));
                encoded.push(feature.name.clone());
            }
            Encoding::Categorical { labels } => {
                inputs.push(tensor(&feature.name, DataType::String, &[None, Some(1)]));
                let code = format!("{}_code", feature.name);
                nodes.push(node(
                    "LabelEncoder",
                    ML,
                    vec![feature.name.clone()],
                    vec![code.clone()],
                    vec![
                        strings("keys_strings", labels),
                        floats("values_floats", (0..labels.len()).map(|i| i as f32).collect()),
                        float("default_float", f32::NAN),
                    ],
                ));
                encoded.push(code);
            }
        }
    }
    nodes.push(node("Concat", "", encoded, vec!["features".into()], vec![int("axis", 1)]));

    let binary = ensemble.task == Task::Binary;
    let trees = flatten(ensemble, binary)?;
    let mut attributes = vec![
        ints("nodes_treeids", trees.tree_ids),
        ints("nodes_nodeids", trees.node_ids),
        ints("nodes_featureids", trees.features),
        strings("nodes_modes", &trees.modes),
        floats("nodes_values", trees.values),
        ints("nodes_truenodeids", trees.true_ids),
        ints("nodes_falsenodeids", trees.false_ids),
        ints("nodes_missing_value_tracks_true", trees.missing_true),
    ];
    let base: Vec<f64> = ensemble.boosters.iter().map(|b| b.base_score).collect();
    let outputs = match ensemble.task {
        Task::Regression => {
            attributes.extend([
                ints("target_treeids", trees.leaf_trees),
                ints("target_nodeids", trees.leaf_nodes),
                ints("target_ids", trees.leaf_targets),
                floats("target_weights", trees.leaf_weights),
                int("n_targets", 1),
                floats("base_values", vec![base[0] as f32]),
                string("aggregate_function", "SUM"),
                string("post_transform", "NONE"),
            ]);
            nodes.push(node(
                "TreeEnsembleRegressor",
                ML,
                vec!["features".into()],
                vec![VALUE_OUTPUT.into()],
                attributes,
            ));
            vec![tensor(VALUE_OUTPUT, DataType::Float, &[None, Some(1)])]
        }
        Task::Binary | Task::Multiclass => {
            let k = classes.map_or(0, <[String]>::len);
            let base_values: Vec<f32> = base.iter().map(|b| *b as f32).collect();
            attributes.extend([
                ints("class_treeids", trees.leaf_trees),
                ints("class_nodeids", trees.leaf_nodes),
                ints("class_ids", trees.leaf_targets),
                floats("class_weights", trees.leaf_weights),
                ints("classlabels_int64s", (0..k as i64).collect()),
                floats("base_values", base_values),
                // Binary: [1 − p, p] with p the logistic of the log-odds; several classes:
                // the softmax of the one-vs-rest log-odds.
                string("post_transform", if binary { "LOGISTIC" } else { "SOFTMAX" }),
            ]);
            nodes.push(node(
                "TreeEnsembleClassifier",
                ML,
                vec!["features".into()],
                vec![LABEL_OUTPUT.into(), PROBABILITIES_OUTPUT.into()],
                attributes,
            ));
            vec![
                tensor(LABEL_OUTPUT, DataType::Int64, &[None]),
                tensor(PROBABILITIES_OUTPUT, DataType::Float, &[None, Some(k as i64)]),
            ]
        }
    };
    let mut metadata_props: Vec<StringStringEntryProto> =
        metadata.iter().map(|(key, value)| StringStringEntryProto { key: key.clone(), value: value.clone() }).collect();
    if let Some(classes) = classes {
        let labels = serde_json::to_string(classes).map_err(|e| Error::Invalid(e.to_string()))?;
        metadata_props.push(StringStringEntryProto { key: "class_labels".into(), value: labels });
    }
    let model = ModelProto {
        ir_version: 8,
        opset_import: vec![
            OperatorSetIdProto { domain: String::new(), version: 17 },
            OperatorSetIdProto { domain: ML.into(), version: 3 },
        ],
        producer_name: "lambda-mlops".into(),
        producer_version: env!("CARGO_PKG_VERSION").into(),
        graph: Some(GraphProto {
            name: graph_name.to_string(),
            node: nodes,
            input: inputs,
            output: outputs,
            ..GraphProto::default()
        }),
        metadata_props,
        ..ModelProto::default()
    };
    Ok(model.encode_to_vec())
}

/// The class labels a model records in its metadata (`class_labels`, as this export writes
/// them), if any.
pub fn class_labels(bytes: &[u8]) -> Option<Vec<String>> {
    let model = ModelProto::decode(bytes).ok()?;
    let entry = model.metadata_props.iter().find(|p| p.key == "class_labels")?;
    serde_json::from_str(&entry.value).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn thresholds_round_up_to_the_next_float() {
        for s in [0.1f64, 1.0, -2.5, 3.000_000_1, 1e-30, -1e-30, 12_345.678_9] {
            let t = threshold(s);
            assert!(f64::from(t) >= s, "{s}");
            // No 32-bit float lies in [s, t).
            assert!(f64::from(t.next_down()) < s, "{s}");
        }
    }
}

//! `TreeEnsembleClassifier` and `TreeEnsembleRegressor` (ai.onnx.ml), with onnxruntime's
//! semantics.
//!
//! tract 0.23 ships a TreeEnsembleClassifier but no regressor, rejects a single
//! `base_values` entry for two classes (what scikit-learn's binary gradient boosting
//! exports), and lays out binary scores in its own way. The behaviour users compare against
//! is onnxruntime's, including its binary-class conventions, so the ensemble is evaluated
//! here the way onnxruntime's tree aggregators do. The fix belongs in tract; it is carried
//! here until tract matches onnxruntime on these exports.

use std::collections::HashMap;

use tract_onnx::model::ParsingContext;
use tract_onnx::pb::NodeProto;
use tract_onnx::tract_hir::internal::*;

use super::{Kernel, expand_kernel, f32_rows, transform};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    Leq,
    Lt,
    Gte,
    Gt,
    Eq,
    Neq,
    Leaf,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Aggregate {
    Sum,
    Average,
    Min,
    Max,
}

/// One node; children and leaf weights are indices into the ensemble's flat vectors.
#[derive(Debug, Clone)]
struct Node {
    feature: usize,
    threshold: f32,
    mode: Mode,
    missing_goes_true: bool,
    true_child: usize,
    false_child: usize,
    weights: std::ops::Range<usize>,
}

/// The parsed trees of one ensemble.
#[derive(Debug, Clone)]
struct Trees {
    nodes: Vec<Node>,
    roots: Vec<usize>,
    /// Leaf contributions: (class or target index, weight).
    weights: Vec<(usize, f32)>,
    n_features: usize,
}

/// Class labels, as integers or as strings (shared with the linear classifier).
#[derive(Debug, Clone)]
pub(super) enum Labels {
    Int(Vec<i64>),
    Text(Vec<String>),
}

impl Labels {
    pub(super) fn len(&self) -> usize {
        match self {
            Labels::Int(v) => v.len(),
            Labels::Text(v) => v.len(),
        }
    }
}

/// A classifier or regressor ensemble, ready to evaluate.
#[derive(Debug, Clone)]
pub struct TreeEnsemble {
    trees: Trees,
    /// Classes (classifier) or targets (regressor).
    n_outputs: usize,
    aggregate: Aggregate,
    base_values: Vec<f32>,
    post_transform: transform::Post,
    /// Class labels for a classifier; `None` for a regressor.
    labels: Option<Labels>,
    /// onnxruntime's "binary case": two classes and leaves that weigh only one of them.
    binary_case: bool,
    weights_all_positive: bool,
}

fn attr_err(node: &NodeProto, message: String) -> TractError {
    format_err!("{} {:?}: {message}", node.op_type, node.name)
}

fn floats(node: &NodeProto, name: &str) -> TractResult<Option<Vec<f32>>> {
    node.get_attr_opt_vec::<f32>(name)
}

fn ints(node: &NodeProto, name: &str, n: usize) -> TractResult<Vec<i64>> {
    let v: Vec<i64> = node.get_attr_vec(name)?;
    if v.len() != n {
        return Err(attr_err(node, format!("attribute {name} has {} entries, expected {n}", v.len())));
    }
    Ok(v)
}

fn parse_trees(node: &NodeProto, prefix: &str) -> TractResult<Trees> {
    let features: Vec<i64> = node.get_attr_vec("nodes_featureids")?;
    let n = features.len();
    if n == 0 {
        return Err(attr_err(node, "has no nodes".into()));
    }
    let tree_ids = ints(node, "nodes_treeids", n)?;
    let node_ids = ints(node, "nodes_nodeids", n)?;
    let true_ids = ints(node, "nodes_truenodeids", n)?;
    let false_ids = ints(node, "nodes_falsenodeids", n)?;
    let thresholds = floats(node, "nodes_values")?
        .ok_or_else(|| attr_err(node, "needs nodes_values (nodes_values_as_tensor is not supported)".into()))?;
    if thresholds.len() != n {
        return Err(attr_err(node, format!("nodes_values has {} entries, expected {n}", thresholds.len())));
    }
    let modes: Vec<String> = node.get_attr_vec("nodes_modes")?;
    let missing: Vec<i64> = node.get_attr_opt_vec("nodes_missing_value_tracks_true")?.unwrap_or_else(|| vec![0; n]);
    let index: HashMap<(i64, i64), usize> =
        tree_ids.iter().zip(&node_ids).enumerate().map(|(i, (t, n))| ((*t, *n), i)).collect();
    let lookup = |tree: i64, id: i64| {
        index.get(&(tree, id)).copied().ok_or_else(|| attr_err(node, format!("tree {tree} has no node {id}")))
    };

    let leaf_trees: Vec<i64> = node.get_attr_vec(&format!("{prefix}_treeids"))?;
    let m = leaf_trees.len();
    let leaf_nodes = ints(node, &format!("{prefix}_nodeids"), m)?;
    let leaf_ids = ints(node, &format!("{prefix}_ids"), m)?;
    let leaf_weights = floats(node, &format!("{prefix}_weights"))?
        .ok_or_else(|| attr_err(node, format!("needs {prefix}_weights (the _as_tensor form is not supported)")))?;
    if leaf_weights.len() != m {
        return Err(attr_err(node, format!("{prefix}_weights has {} entries, expected {m}", leaf_weights.len())));
    }
    let mut per_node: Vec<Vec<(usize, f32)>> = vec![Vec::new(); n];
    for j in 0..m {
        let target = usize::try_from(leaf_ids[j]).map_err(|_| attr_err(node, "negative class id".into()))?;
        per_node[lookup(leaf_trees[j], leaf_nodes[j])?].push((target, leaf_weights[j]));
    }

    let mut nodes = Vec::with_capacity(n);
    let mut weights = Vec::with_capacity(m);
    let mut is_child = vec![false; n];
    for i in 0..n {
        let mode = match modes.get(i).map(String::as_str) {
            Some("BRANCH_LEQ") => Mode::Leq,
            Some("BRANCH_LT") => Mode::Lt,
            Some("BRANCH_GTE") => Mode::Gte,
            Some("BRANCH_GT") => Mode::Gt,
            Some("BRANCH_EQ") => Mode::Eq,
            Some("BRANCH_NEQ") => Mode::Neq,
            Some("LEAF") => Mode::Leaf,
            other => return Err(attr_err(node, format!("unknown node mode {other:?}"))),
        };
        let (true_child, false_child) = if mode == Mode::Leaf {
            (i, i)
        } else {
            let t = lookup(tree_ids[i], true_ids[i])?;
            let f = lookup(tree_ids[i], false_ids[i])?;
            is_child[t] = true;
            is_child[f] = true;
            (t, f)
        };
        let start = weights.len();
        weights.extend(per_node[i].iter().copied());
        nodes.push(Node {
            feature: usize::try_from(features[i]).map_err(|_| attr_err(node, "negative feature id".into()))?,
            threshold: thresholds[i],
            mode,
            missing_goes_true: missing.get(i).is_some_and(|v| *v != 0),
            true_child,
            false_child,
            weights: start..weights.len(),
        });
    }
    // Roots are the nodes no other node points to, in tree order.
    let mut roots: Vec<usize> = (0..n).filter(|i| !is_child[*i]).collect();
    roots.sort_by_key(|i| (tree_ids[*i], node_ids[*i]));
    let n_features = nodes.iter().filter(|n| n.mode != Mode::Leaf).map(|n| n.feature + 1).max().unwrap_or(0);
    Ok(Trees { nodes, roots, weights, n_features })
}

fn parse_aggregate(node: &NodeProto) -> TractResult<Aggregate> {
    match node.get_attr_opt::<String>("aggregate_function")?.as_deref().unwrap_or("SUM") {
        "SUM" => Ok(Aggregate::Sum),
        "AVERAGE" => Ok(Aggregate::Average),
        "MIN" => Ok(Aggregate::Min),
        "MAX" => Ok(Aggregate::Max),
        other => Err(attr_err(node, format!("unknown aggregate_function {other:?}"))),
    }
}

/// Builds a `TreeEnsembleClassifier`.
pub fn classifier(_ctx: &ParsingContext, node: &NodeProto) -> TractResult<(Box<dyn InferenceOp>, Vec<String>)> {
    Ok((expand_kernel(parse_classifier(node)?), vec![]))
}

fn parse_classifier(node: &NodeProto) -> TractResult<TreeEnsemble> {
    let trees = parse_trees(node, "class")?;
    let labels = match (
        node.get_attr_opt_vec::<i64>("classlabels_int64s")?,
        node.get_attr_opt_vec::<String>("classlabels_strings")?,
    ) {
        (Some(i), None) => Labels::Int(i),
        (None, Some(s)) => Labels::Text(s),
        _ => return Err(attr_err(node, "needs exactly one of classlabels_int64s and classlabels_strings".into())),
    };
    let n_outputs = labels.len();
    let classes: std::collections::BTreeSet<usize> = trees.weights.iter().map(|(c, _)| *c).collect();
    if classes.iter().any(|c| *c >= n_outputs) {
        return Err(attr_err(node, format!("a leaf names a class beyond the {n_outputs} labels")));
    }
    let ensemble = TreeEnsemble {
        binary_case: n_outputs == 2 && classes.len() == 1,
        weights_all_positive: trees.weights.iter().all(|(_, w)| *w >= 0.0),
        trees,
        n_outputs,
        aggregate: Aggregate::Sum,
        base_values: floats(node, "base_values")?.unwrap_or_default(),
        post_transform: transform::parse(node)?,
        labels: Some(labels),
    };
    Ok(ensemble)
}

/// Builds a `TreeEnsembleRegressor`.
pub fn regressor(_ctx: &ParsingContext, node: &NodeProto) -> TractResult<(Box<dyn InferenceOp>, Vec<String>)> {
    Ok((expand_kernel(parse_regressor(node)?), vec![]))
}

fn parse_regressor(node: &NodeProto) -> TractResult<TreeEnsemble> {
    let trees = parse_trees(node, "target")?;
    let n_outputs = node.get_attr_opt::<i64>("n_targets")?.unwrap_or(1).max(1) as usize;
    if trees.weights.iter().any(|(t, _)| *t >= n_outputs) {
        return Err(attr_err(node, format!("a leaf names a target beyond n_targets {n_outputs}")));
    }
    let ensemble = TreeEnsemble {
        trees,
        n_outputs,
        aggregate: parse_aggregate(node)?,
        base_values: floats(node, "base_values")?.unwrap_or_default(),
        post_transform: transform::parse(node)?,
        labels: None,
        binary_case: false,
        weights_all_positive: true,
    };
    Ok(ensemble)
}

/// Accumulated scores of one row: value and whether any leaf contributed.
#[derive(Debug, Clone, Copy, Default)]
struct Score {
    value: f32,
    set: bool,
}

impl TreeEnsemble {
    fn accumulate(&self, row: &[f32], scores: &mut [Score]) {
        let nodes = &self.trees.nodes;
        for &root in &self.trees.roots {
            let mut i = root;
            while nodes[i].mode != Mode::Leaf {
                let n = &nodes[i];
                let x = row.get(n.feature).copied().unwrap_or(f32::NAN);
                let go_true = match n.mode {
                    Mode::Leq => x <= n.threshold,
                    Mode::Lt => x < n.threshold,
                    Mode::Gte => x >= n.threshold,
                    Mode::Gt => x > n.threshold,
                    Mode::Eq => x == n.threshold,
                    Mode::Neq => x != n.threshold,
                    Mode::Leaf => true,
                } || (n.missing_goes_true && x.is_nan());
                i = if go_true { n.true_child } else { n.false_child };
            }
            for &(target, w) in &self.trees.weights[nodes[i].weights.clone()] {
                let s = &mut scores[target];
                s.value = match (self.aggregate, s.set) {
                    (Aggregate::Sum | Aggregate::Average, _) => s.value + w,
                    (_, false) => w,
                    (Aggregate::Min, true) => s.value.min(w),
                    (Aggregate::Max, true) => s.value.max(w),
                };
                s.set = true;
            }
        }
    }

    /// Regressor finalisation: averages, base values, post-transform.
    fn finish_regression(&self, scores: &mut [Score], out: &mut Vec<f32>) {
        let n_trees = self.trees.roots.len() as f32;
        let origin = if self.base_values.len() == 1 { self.base_values[0] } else { 0.0 };
        let per_target = self.base_values.len() == self.n_outputs;
        let mut values: Vec<f32> = scores
            .iter()
            .enumerate()
            .map(|(j, s)| {
                let base = if per_target {
                    self.base_values[j]
                } else if self.n_outputs == 1 {
                    origin
                } else {
                    0.0
                };
                let v = if s.set { s.value } else { 0.0 };
                match self.aggregate {
                    Aggregate::Average => v / n_trees + base,
                    _ => v + base,
                }
            })
            .collect();
        if self.n_outputs == 1 {
            if self.post_transform == transform::Post::Probit {
                values[0] = transform::probit(values[0]);
            }
        } else {
            transform::apply(self.post_transform, &mut values);
        }
        out.extend(values);
    }

    /// Classifier finalisation, following onnxruntime's TreeAggregatorClassifier.
    fn finish_classification(&self, scores: &mut Vec<Score>, out: &mut Vec<f32>) -> usize {
        if self.n_outputs > 2 {
            for (k, b) in self.base_values.iter().enumerate().take(scores.len()) {
                scores[k].value = if scores[k].set { scores[k].value + b } else { *b };
                scores[k].set = true;
            }
            let mut best: Option<usize> = None;
            for (k, s) in scores.iter().enumerate() {
                if s.set && best.is_none_or(|b| s.value > scores[b].value) {
                    best = Some(k);
                }
            }
            let mut values: Vec<f32> = scores.iter().map(|s| if s.set { s.value } else { 0.0 }).collect();
            transform::apply(self.post_transform, &mut values);
            out.extend(values);
            return best.unwrap_or(0);
        }
        // Two classes.
        let mut second_class = -1;
        match self.base_values.len() {
            2 if scores[1].set => {
                // onnxruntime uses only base_values[1] here, assuming both are equal.
                scores[1].value = self.base_values[1] + scores[0].value;
                scores[0].value = -scores[1].value;
            }
            2 => {
                scores[1].value += self.base_values[1];
                scores[0].value += self.base_values[0];
            }
            1 => {
                scores[0].value += self.base_values[0];
                if !scores[1].set {
                    scores.pop();
                }
            }
            0 => {
                second_class = 3;
                if !scores[1].set {
                    scores.pop();
                }
            }
            _ => {}
        }
        let positive = if scores.len() == 2 && scores[1].set {
            scores[1].value
        } else if scores[0].set {
            scores[0].value
        } else {
            0.0
        };
        let label = if self.binary_case {
            let (is_positive, code) = if self.weights_all_positive {
                (positive > 0.5, if positive > 0.5 { 0 } else { 1 })
            } else {
                (positive > 0.0, if positive > 0.0 { 2 } else { 3 })
            };
            second_class = code;
            usize::from(is_positive)
        } else {
            usize::from(positive > 0.0)
        };
        if scores.len() == 2 {
            let mut values: Vec<f32> = scores.iter().map(|s| if s.set { s.value } else { 0.0 }).collect();
            transform::apply(self.post_transform, &mut values);
            out.extend(values);
        } else {
            out.extend(transform::binary(scores[0].value, self.post_transform, second_class));
        }
        label
    }
}

impl Kernel for TreeEnsemble {
    fn name(&self) -> &'static str {
        if self.labels.is_some() { "TreeEnsembleClassifier" } else { "TreeEnsembleRegressor" }
    }

    fn output_facts(&self, inputs: &[&TypedFact]) -> TractResult<TVec<TypedFact>> {
        let n = inputs[0].shape[0].clone();
        let scores = f32::fact([n.clone(), self.n_outputs.to_dim()]);
        Ok(match &self.labels {
            None => tvec!(scores),
            Some(Labels::Int(_)) => tvec!(i64::fact([n]), scores),
            Some(Labels::Text(_)) => tvec!(String::fact([n]), scores),
        })
    }

    fn eval(&self, inputs: TVec<TValue>) -> TractResult<TVec<TValue>> {
        let (rows, width, x) = f32_rows(&inputs[0])?;
        if width < self.trees.n_features {
            bail!("the trees read feature {} but the input has {width} columns", self.trees.n_features - 1);
        }
        let mut out = Vec::with_capacity(rows * self.n_outputs);
        let mut winners = Vec::with_capacity(rows);
        for r in 0..rows {
            let mut scores = vec![Score::default(); self.n_outputs];
            self.accumulate(&x[r * width..(r + 1) * width], &mut scores);
            if self.labels.is_some() {
                let before = out.len();
                winners.push(self.finish_classification(&mut scores, &mut out));
                // onnxruntime writes a single score for some binary layouts; keep the width.
                out.resize(before + self.n_outputs, 0.0);
            } else {
                self.finish_regression(&mut scores, &mut out);
            }
        }
        let scores = tract_ndarray::Array2::from_shape_vec((rows, self.n_outputs), out)?.into_tensor();
        Ok(match &self.labels {
            None => tvec!(scores.into_tvalue()),
            Some(Labels::Int(l)) => {
                let labels: Vec<i64> = winners.iter().map(|w| l[*w]).collect();
                tvec!(tensor1(&labels).into_tvalue(), scores.into_tvalue())
            }
            Some(Labels::Text(l)) => {
                let labels: Vec<String> = winners.iter().map(|w| l[*w].clone()).collect();
                tvec!(tensor1(&labels).into_tvalue(), scores.into_tvalue())
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::onnx_ml::tests::{eval, floats, ints, node, strings, text};

    /// Two stumps on feature 0 (x <= 0.5 goes left); `weights` gives each leaf's
    /// (target, weight) pairs: tree 0 left, tree 0 right, tree 1 left, tree 1 right.
    fn stumps(op: &str, prefix: &str, weights: &[(i64, f32)], extra: Vec<tract_onnx::pb::AttributeProto>) -> NodeProto {
        let mut attrs = vec![
            ints("nodes_treeids", &[0, 0, 0, 1, 1, 1]),
            ints("nodes_nodeids", &[0, 1, 2, 0, 1, 2]),
            ints("nodes_featureids", &[0, 0, 0, 0, 0, 0]),
            floats("nodes_values", &[0.5, 0.0, 0.0, 0.5, 0.0, 0.0]),
            strings("nodes_modes", &["BRANCH_LEQ", "LEAF", "LEAF", "BRANCH_LEQ", "LEAF", "LEAF"]),
            ints("nodes_truenodeids", &[1, 0, 0, 1, 0, 0]),
            ints("nodes_falsenodeids", &[2, 0, 0, 2, 0, 0]),
            ints("nodes_missing_value_tracks_true", &[1, 0, 0, 0, 0, 0]),
        ];
        let leaf_nodes = [(0, 1), (0, 2), (1, 1), (1, 2)];
        let per_leaf = weights.len() / 4;
        let (mut t, mut n, mut ids, mut w) = (vec![], vec![], vec![], vec![]);
        for (k, (tree, nd)) in leaf_nodes.iter().enumerate() {
            for (id, weight) in &weights[k * per_leaf..(k + 1) * per_leaf] {
                t.push(*tree);
                n.push(*nd);
                ids.push(*id);
                w.push(*weight);
            }
        }
        attrs.push(ints(&format!("{prefix}_treeids"), &t));
        attrs.push(ints(&format!("{prefix}_nodeids"), &n));
        attrs.push(ints(&format!("{prefix}_ids"), &ids));
        attrs.push(floats(&format!("{prefix}_weights"), &w));
        attrs.extend(extra);
        node(op, attrs)
    }

    #[test]
    fn regressor_averages_and_adds_the_base_value() {
        let n = stumps(
            "TreeEnsembleRegressor",
            "target",
            &[(0, 1.0), (0, 3.0), (0, 5.0), (0, 7.0)],
            vec![text("aggregate_function", "AVERAGE"), floats("base_values", &[10.0])],
        );
        let e = parse_regressor(&n).expect("parses");
        let out = eval(&e, tensor2(&[[0.0f32], [1.0], [f32::NAN]]));
        // Left leaves: (1 + 5) / 2 + 10 = 13; right: (3 + 7) / 2 + 10 = 15. NaN goes left in
        // tree 0 (missing tracks true) and right in tree 1: (1 + 7) / 2 + 10 = 14.
        assert_eq!(out[0].to_plain_array_view::<f32>().expect("f32").as_slice(), Some(&[13.0, 15.0, 14.0][..]));
    }

    #[test]
    fn binary_boosting_with_one_base_value_and_logistic() {
        // Gradient boosting exports: one class weighted, one base value, LOGISTIC.
        let n = stumps(
            "TreeEnsembleClassifier",
            "class",
            &[(0, -1.0), (0, 1.0), (0, -0.5), (0, 0.5)],
            vec![
                ints("classlabels_int64s", &[0, 1]),
                floats("base_values", &[0.25]),
                text("post_transform", "LOGISTIC"),
            ],
        );
        let e = parse_classifier(&n).expect("parses");
        let out = eval(&e, tensor2(&[[0.0f32], [1.0]]));
        assert_eq!(out[0].to_plain_array_view::<i64>().expect("labels").as_slice(), Some(&[0, 1][..]));
        let p = out[1].to_plain_array_view::<f32>().expect("scores");
        let s0 = -1.5f32 + 0.25;
        let s1 = 1.5f32 + 0.25;
        let want =
            [transform::logistic(-s0), transform::logistic(s0), transform::logistic(-s1), transform::logistic(s1)];
        for (g, w) in p.iter().zip(want) {
            assert!((g - w).abs() < 1e-6, "{g} vs {w}");
        }
    }

    #[test]
    fn multiclass_forest_sums_probabilities_and_picks_the_largest() {
        // Each leaf holds the averaged class probabilities of its tree, as forests export.
        let n = stumps(
            "TreeEnsembleClassifier",
            "class",
            &[
                (0, 0.25),
                (1, 0.125),
                (2, 0.125),
                (0, 0.0),
                (1, 0.25),
                (2, 0.25),
                (0, 0.25),
                (1, 0.25),
                (2, 0.0),
                (0, 0.125),
                (1, 0.125),
                (2, 0.25),
            ],
            vec![strings("classlabels_strings", &["cat", "dog", "emu"])],
        );
        let e = parse_classifier(&n).expect("parses");
        let out = eval(&e, tensor2(&[[0.0f32], [1.0]]));
        let labels: Vec<String> = out[0].to_plain_array_view::<String>().expect("labels").iter().cloned().collect();
        assert_eq!(labels, ["cat", "emu"]);
        let p: Vec<f32> = out[1].to_plain_array_view::<f32>().expect("scores").iter().copied().collect();
        assert_eq!(p, [0.5, 0.375, 0.125, 0.125, 0.375, 0.5]);
    }

    #[test]
    fn malformed_trees_are_refused_with_the_attribute_named() {
        let mut n = stumps("TreeEnsembleRegressor", "target", &[(0, 1.0), (0, 1.0), (0, 1.0), (0, 1.0)], vec![]);
        n.attribute.retain(|a| a.name != "nodes_truenodeids");
        n.attribute.push(ints("nodes_truenodeids", &[1, 0, 0]));
        let e = parse_regressor(&n).expect_err("short attribute").to_string();
        assert!(e.contains("nodes_truenodeids has 3 entries, expected 6"), "{e}");
    }
}

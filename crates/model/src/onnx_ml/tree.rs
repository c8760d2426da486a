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

/// One node laid out for traversal in 16 bytes. A leaf is its own child on both sides, so a
/// row that reaches a leaf stays there however many more steps its block takes.
#[derive(Debug, Clone, Copy)]
struct Step {
    threshold: f32,
    /// The feature read, with [`MISSING_GOES_TRUE`] set when NaN goes to the true child and
    /// the node's mode in the bits under it (see [`MODE_SHIFT`]).
    feature: u32,
    /// The false child, then the true child.
    children: [u32; 2],
}

const MISSING_GOES_TRUE: u32 = 1 << 31;
const MODE_SHIFT: u32 = 28;
const FEATURE_MASK: u32 = (1 << MODE_SHIFT) - 1;

/// Rows evaluated together through one tree. Each row's walk is a chain of dependent loads;
/// walking several at once lets the processor overlap them.
const BLOCK: usize = 8;

/// Trees whose branches share one mode, laid out complete for the walk. The branches of a
/// tree of depth `d` fill its levels `0..d` breadth first, so a row at position `at` moves to
/// `2 * at + 1` or `2 * at + 2` and no child is read; every row takes exactly `d` steps. A
/// leaf above the last level is repeated under a branch whose two sides both lead to it.
#[derive(Debug, Clone)]
struct Complete {
    /// Per tree, in the order of `Trees::roots`: where its branches start in `branches`,
    /// where its leaves start in `leaves`, and its depth.
    trees: Vec<(usize, usize, u32)>,
    /// Threshold, and the feature read with [`MISSING_GOES_TRUE`] set as in [`Step`].
    branches: Vec<(f32, u32)>,
    /// The node each leaf position stands for, `2^d` per tree.
    leaves: Vec<u32>,
    /// Whether any branch sends NaN to its true side; when none does, the walk skips the test.
    missing: bool,
}

/// The complete layout is used while it holds at most this many positions per node of the
/// ensemble (or [`COMPLETE_MIN`] positions in all); deeper, sparser trees keep the linked walk.
const COMPLETE_PER_NODE: usize = 8;
const COMPLETE_MIN: usize = 1 << 16;
const COMPLETE_MAX_DEPTH: u32 = 24;

/// The parsed trees of one ensemble.
#[derive(Debug, Clone)]
struct Trees {
    nodes: Vec<Node>,
    /// `nodes` laid out for traversal, index for index.
    steps: Vec<Step>,
    roots: Vec<usize>,
    /// The longest path from each root to a leaf, in the order of `roots`.
    depths: Vec<u32>,
    /// The one mode every branch shares, when they do.
    uniform: Option<Mode>,
    /// The complete layout, when every branch shares one mode and the trees are dense enough.
    complete: Option<Complete>,
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
    /// For a sum or average where every leaf has exactly one weight: each node's target
    /// and weight (a branch's are never read), read in place of the weight lists.
    single: Option<Vec<(u32, f32)>>,
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
    let rooted: std::collections::BTreeSet<i64> = roots.iter().map(|i| tree_ids[*i]).collect();
    if let Some(tree) = tree_ids.iter().find(|t| !rooted.contains(t)) {
        return Err(attr_err(node, format!("tree {tree} has no root: every one of its nodes is a child of another")));
    }
    let n_features = nodes.iter().filter(|n| n.mode != Mode::Leaf).map(|n| n.feature + 1).max().unwrap_or(0);
    if n_features > FEATURE_MASK as usize {
        return Err(attr_err(node, format!("reads feature {}, beyond the {FEATURE_MASK} supported", n_features - 1)));
    }
    let depths = depths(&nodes, &roots)
        .map_err(|at| attr_err(node, format!("tree {} loops back to its node {}", tree_ids[at], node_ids[at])))?;
    let steps: Vec<Step> = nodes
        .iter()
        .enumerate()
        .map(|(i, n)| {
            let (feature, children) = if n.mode == Mode::Leaf {
                (0, [i as u32; 2])
            } else {
                (n.feature as u32, [n.false_child as u32, n.true_child as u32])
            };
            let flags = (n.mode as u32) << MODE_SHIFT | if n.missing_goes_true { MISSING_GOES_TRUE } else { 0 };
            Step { threshold: n.threshold, feature: feature | flags, children }
        })
        .collect();
    let mut modes = nodes.iter().map(|n| n.mode).filter(|m| *m != Mode::Leaf);
    let first = modes.next();
    let uniform = if modes.all(|m| Some(m) == first) { first.or(Some(Mode::Leq)) } else { None };
    let complete = uniform.and_then(|_| complete(&nodes, &steps, &roots, &depths));
    Ok(Trees { nodes, steps, roots, depths, uniform, complete, weights, n_features })
}

/// Lays the trees out complete (see [`Complete`]), or gives `None` when that would take more
/// than [`COMPLETE_PER_NODE`] positions per node.
fn complete(nodes: &[Node], steps: &[Step], roots: &[usize], depths: &[u32]) -> Option<Complete> {
    if depths.iter().any(|d| *d > COMPLETE_MAX_DEPTH) {
        return None;
    }
    let positions: usize = depths.iter().map(|d| (2usize << d) - 1).sum();
    if positions > COMPLETE_MIN.max(COMPLETE_PER_NODE * nodes.len()) {
        return None;
    }
    let mut layout = Complete {
        trees: Vec::with_capacity(roots.len()),
        branches: Vec::new(),
        leaves: Vec::new(),
        missing: nodes.iter().any(|n| n.mode != Mode::Leaf && n.missing_goes_true),
    };
    for (&root, &depth) in roots.iter().zip(depths) {
        let (base, leaf_base) = (layout.branches.len(), layout.leaves.len());
        let branches = (1usize << depth) - 1;
        layout.trees.push((base, leaf_base, depth));
        layout.branches.resize(base + branches, (0.0, 0));
        layout.leaves.resize(leaf_base + (1 << depth), 0);
        // Each position is filled from the node it stands for; a leaf stands for itself at
        // every position below it.
        let mut stack = vec![(0usize, root)];
        while let Some((at, i)) = stack.pop() {
            if at >= branches {
                layout.leaves[leaf_base + at - branches] = i as u32;
                continue;
            }
            let n = &nodes[i];
            let (false_child, true_child) = if n.mode == Mode::Leaf {
                (i, i)
            } else {
                layout.branches[base + at] = (n.threshold, steps[i].feature & !(0b111 << MODE_SHIFT));
                (n.false_child, n.true_child)
            };
            stack.push((2 * at + 1, false_child));
            stack.push((2 * at + 2, true_child));
        }
    }
    Some(layout)
}

impl Complete {
    /// Walks one block of rows down tree `tree` and returns the nodes of the leaves reached.
    #[inline(always)]
    fn walk<const MISSING: bool>(
        &self,
        tree: usize,
        x: &[f32],
        offsets: &[usize; BLOCK],
        goes_true: impl Fn(f32, f32) -> bool,
    ) -> [u32; BLOCK] {
        let (base, leaf_base, depth) = self.trees[tree];
        let inner = (1usize << depth) - 1;
        let branches = &self.branches[base..base + inner];
        let mut at = [0usize; BLOCK];
        for _ in 0..depth {
            for lane in 0..BLOCK {
                let (threshold, feature) = branches[at[lane]];
                let value = x[offsets[lane] + (feature & FEATURE_MASK) as usize];
                let mut go = goes_true(value, threshold);
                if MISSING {
                    go |= (feature & MISSING_GOES_TRUE != 0) & value.is_nan();
                }
                at[lane] = 2 * at[lane] + 1 + usize::from(go);
            }
        }
        let leaves = &self.leaves[leaf_base..leaf_base + inner + 1];
        std::array::from_fn(|lane| leaves[at[lane] - inner])
    }

    /// [`Complete::walk`], with the NaN test compiled in only when some branch needs it.
    #[inline(always)]
    fn leaves(
        &self,
        tree: usize,
        x: &[f32],
        offsets: &[usize; BLOCK],
        goes_true: impl Fn(f32, f32) -> bool,
    ) -> [u32; BLOCK] {
        if self.missing {
            self.walk::<true>(tree, x, offsets, goes_true)
        } else {
            self.walk::<false>(tree, x, offsets, goes_true)
        }
    }
}

/// The longest path below each root, or the index of a node that a path below it reaches
/// twice (a cycle, which would never reach a leaf).
fn depths(nodes: &[Node], roots: &[usize]) -> Result<Vec<u32>, usize> {
    #[derive(Clone, Copy, PartialEq)]
    enum State {
        New,
        Open,
        Done(u32),
    }
    let mut state = vec![State::New; nodes.len()];
    let mut stack = Vec::new();
    for &root in roots {
        stack.push(root);
        while let Some(&i) = stack.last() {
            let n = &nodes[i];
            if n.mode == Mode::Leaf {
                state[i] = State::Done(0);
                stack.pop();
                continue;
            }
            match state[i] {
                State::New => {
                    state[i] = State::Open;
                    for child in [n.true_child, n.false_child] {
                        match state[child] {
                            State::Open => return Err(child),
                            State::New => stack.push(child),
                            State::Done(_) => {}
                        }
                    }
                }
                State::Open => {
                    let depth = |c: usize| if let State::Done(d) = state[c] { d } else { 0 };
                    state[i] = State::Done(1 + depth(n.true_child).max(depth(n.false_child)));
                    stack.pop();
                }
                State::Done(_) => {
                    stack.pop();
                }
            }
        }
    }
    Ok(roots.iter().map(|r| if let State::Done(d) = state[*r] { d } else { 0 }).collect())
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
    let single = single_weights(&trees, Aggregate::Sum);
    let ensemble = TreeEnsemble {
        binary_case: n_outputs == 2 && classes.len() == 1,
        weights_all_positive: trees.weights.iter().all(|(_, w)| *w >= 0.0),
        trees,
        n_outputs,
        aggregate: Aggregate::Sum,
        base_values: floats(node, "base_values")?.unwrap_or_default(),
        post_transform: transform::parse(node)?,
        single,
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
    let aggregate = parse_aggregate(node)?;
    let ensemble = TreeEnsemble {
        single: single_weights(&trees, aggregate),
        trees,
        n_outputs,
        aggregate,
        base_values: floats(node, "base_values")?.unwrap_or_default(),
        post_transform: transform::parse(node)?,
        labels: None,
        binary_case: false,
        weights_all_positive: true,
    };
    Ok(ensemble)
}

/// Each node's one weight and its target, when the scores are sums and every leaf has
/// exactly one weight (see [`TreeEnsemble::single`]).
fn single_weights(trees: &Trees, aggregate: Aggregate) -> Option<Vec<(u32, f32)>> {
    let leaves_have_one = trees.nodes.iter().all(|n| n.mode != Mode::Leaf || n.weights.len() == 1);
    (matches!(aggregate, Aggregate::Sum | Aggregate::Average) && leaves_have_one).then(|| {
        trees
            .nodes
            .iter()
            .map(|n| trees.weights[n.weights.clone()].first().map_or((0, 0.0), |&(t, w)| (t as u32, w)))
            .collect()
    })
}

/// Accumulated scores of one row: value and whether any leaf contributed.
#[derive(Debug, Clone, Copy, Default)]
struct Score {
    value: f32,
    set: bool,
}

fn compare(mode: Mode, x: f32, threshold: f32) -> bool {
    match mode {
        Mode::Leq => x <= threshold,
        Mode::Lt => x < threshold,
        Mode::Gte => x >= threshold,
        Mode::Gt => x > threshold,
        Mode::Eq => x == threshold,
        Mode::Neq => x != threshold,
        Mode::Leaf => true,
    }
}

fn mode_of(feature: u32) -> Mode {
    match (feature >> MODE_SHIFT) & 0b111 {
        0 => Mode::Leq,
        1 => Mode::Lt,
        2 => Mode::Gte,
        3 => Mode::Gt,
        4 => Mode::Eq,
        5 => Mode::Neq,
        _ => Mode::Leaf,
    }
}

impl Trees {
    /// Walks the rows `offsets` start at (one block) down one tree and returns the leaves
    /// they reach. `goes_true` decides a branch from the value, the threshold and the step's
    /// feature word (for a mode it does not know in advance).
    #[inline(always)]
    fn walk(
        &self,
        tree: usize,
        x: &[f32],
        offsets: &[usize; BLOCK],
        goes_true: impl Fn(f32, f32, u32) -> bool,
    ) -> [u32; BLOCK] {
        let mut at = [self.roots[tree] as u32; BLOCK];
        for _ in 0..self.depths[tree] {
            let mut moved = false;
            for lane in 0..BLOCK {
                let step = &self.steps[at[lane] as usize];
                let value = x[offsets[lane] + (step.feature & FEATURE_MASK) as usize];
                let go = goes_true(value, step.threshold, step.feature)
                    | (step.feature & MISSING_GOES_TRUE != 0 && value.is_nan());
                let next = step.children[usize::from(go)];
                moved |= next != at[lane];
                at[lane] = next;
            }
            if !moved {
                break;
            }
        }
        at
    }

    /// The leaves one block of rows reaches in one tree, with the comparison of the mode all
    /// branches share compiled into the loop when there is one.
    fn leaves(&self, tree: usize, x: &[f32], offsets: &[usize; BLOCK]) -> [u32; BLOCK] {
        if let (Some(c), Some(mode)) = (&self.complete, self.uniform) {
            return match mode {
                Mode::Leq => c.leaves(tree, x, offsets, |v, t| v <= t),
                Mode::Lt => c.leaves(tree, x, offsets, |v, t| v < t),
                Mode::Gte => c.leaves(tree, x, offsets, |v, t| v >= t),
                Mode::Gt => c.leaves(tree, x, offsets, |v, t| v > t),
                Mode::Eq => c.leaves(tree, x, offsets, |v, t| v == t),
                Mode::Neq => c.leaves(tree, x, offsets, |v, t| v != t),
                // Every tree is a single leaf: the walk takes no step.
                Mode::Leaf => c.leaves(tree, x, offsets, |_, _| true),
            };
        }
        match self.uniform {
            Some(Mode::Leq) => self.walk(tree, x, offsets, |v, t, _| v <= t),
            Some(Mode::Lt) => self.walk(tree, x, offsets, |v, t, _| v < t),
            Some(Mode::Gte) => self.walk(tree, x, offsets, |v, t, _| v >= t),
            Some(Mode::Gt) => self.walk(tree, x, offsets, |v, t, _| v > t),
            _ => self.walk(tree, x, offsets, |v, t, f| compare(mode_of(f), v, t)),
        }
    }
}

impl TreeEnsemble {
    /// Adds the leaf weights every tree gives each row of one block to `scores` (one run of
    /// `n_outputs` per lane), in tree order as onnxruntime does.
    fn accumulate(&self, x: &[f32], offsets: &[usize; BLOCK], lanes: usize, scores: &mut [Score]) {
        if let Some(single) = &self.single {
            for tree in 0..self.trees.roots.len() {
                let leaves = self.trees.leaves(tree, x, offsets);
                for (lane, leaf) in leaves.iter().enumerate().take(lanes) {
                    let (target, w) = single[*leaf as usize];
                    let s = &mut scores[lane * self.n_outputs + target as usize];
                    s.value += w;
                    s.set = true;
                }
            }
            return;
        }
        for tree in 0..self.trees.roots.len() {
            let leaves = self.trees.leaves(tree, x, offsets);
            for (lane, leaf) in leaves.iter().enumerate().take(lanes) {
                let row = &mut scores[lane * self.n_outputs..(lane + 1) * self.n_outputs];
                for &(target, w) in &self.trees.weights[self.trees.nodes[*leaf as usize].weights.clone()] {
                    let s = &mut row[target];
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
    }

    /// Regressor finalisation: averages, base values, post-transform.
    fn finish_regression(&self, scores: &[Score], out: &mut Vec<f32>) {
        let n_trees = self.trees.roots.len() as f32;
        let origin = if self.base_values.len() == 1 { self.base_values[0] } else { 0.0 };
        let per_target = self.base_values.len() == self.n_outputs;
        let start = out.len();
        out.extend(scores.iter().enumerate().map(|(j, s)| {
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
        }));
        let values = &mut out[start..];
        if self.n_outputs == 1 {
            if self.post_transform == transform::Post::Probit {
                values[0] = transform::probit(values[0]);
            }
        } else {
            transform::apply(self.post_transform, values);
        }
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
            let start = out.len();
            out.extend(scores.iter().map(|s| if s.set { s.value } else { 0.0 }));
            transform::apply(self.post_transform, &mut out[start..]);
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
            let start = out.len();
            out.extend(scores.iter().map(|s| if s.set { s.value } else { 0.0 }));
            transform::apply(self.post_transform, &mut out[start..]);
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
        let mut block = vec![Score::default(); BLOCK * self.n_outputs];
        let mut scores = Vec::with_capacity(self.n_outputs);
        for first in (0..rows).step_by(BLOCK) {
            let lanes = BLOCK.min(rows - first);
            // Lanes past the last row walk the last row again; their leaves are not used.
            let offsets: [usize; BLOCK] = std::array::from_fn(|lane| (first + lane.min(lanes - 1)) * width);
            block.fill(Score::default());
            self.accumulate(&x, &offsets, lanes, &mut block);
            for lane in 0..lanes {
                let row = &block[lane * self.n_outputs..(lane + 1) * self.n_outputs];
                if self.labels.is_some() {
                    scores.clear();
                    scores.extend_from_slice(row);
                    let before = out.len();
                    winners.push(self.finish_classification(&mut scores, &mut out));
                    // onnxruntime writes a single score for some binary layouts; keep the width.
                    out.resize(before + self.n_outputs, 0.0);
                } else {
                    self.finish_regression(row, &mut out);
                }
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
        assert!(e.single.is_none(), "leaves with three weights take the general path");
    }

    #[test]
    fn one_weight_per_leaf_scores_as_the_weight_lists_do() {
        // Boosted multiclass trees, as LightGBM and XGBoost export them: each leaf adds to
        // one class; class 1 only ever gets a negative score, class 0 none for some rows.
        let n = stumps(
            "TreeEnsembleClassifier",
            "class",
            &[(0, 1.0), (1, -0.5), (2, 0.25), (2, 0.75)],
            vec![ints("classlabels_int64s", &[10, 20, 30]), text("post_transform", "SOFTMAX")],
        );
        let fast = parse_classifier(&n).expect("parses");
        assert!(fast.single.is_some());
        let general = TreeEnsemble { single: None, ..fast.clone() };
        let rows: Vec<f32> = (-20..20).map(|i| i as f32 / 10.0).chain([f32::NAN]).collect();
        let x = tract_ndarray::Array2::from_shape_fn((rows.len(), 1), |(r, _)| rows[r]).into_tensor();
        let (a, b) = (eval(&fast, x.clone()), eval(&general, x));
        assert_eq!(a[0], b[0]);
        assert_eq!(a[1], b[1]);
        let labels: Vec<i64> = a[0].to_plain_array_view::<i64>().expect("labels").iter().copied().collect();
        // x <= 0.5 (and NaN, which tree 0 tracks) scores classes 0 and 2, the rest 1 and 2.
        assert_eq!(labels[0], 10);
        assert_eq!(labels[rows.len() - 2], 30, "{labels:?}");
    }

    #[test]
    fn malformed_trees_are_refused_with_the_attribute_named() {
        let mut n = stumps("TreeEnsembleRegressor", "target", &[(0, 1.0), (0, 1.0), (0, 1.0), (0, 1.0)], vec![]);
        n.attribute.retain(|a| a.name != "nodes_truenodeids");
        n.attribute.push(ints("nodes_truenodeids", &[1, 0, 0]));
        let e = parse_regressor(&n).expect_err("short attribute").to_string();
        assert!(e.contains("nodes_truenodeids has 3 entries, expected 6"), "{e}");
    }

    #[test]
    fn a_tree_that_loops_back_is_refused() {
        let looped = |modes: &[&str], true_ids: &[i64], false_ids: &[i64]| {
            let mut n = stumps("TreeEnsembleRegressor", "target", &[(0, 1.0), (0, 1.0), (0, 1.0), (0, 1.0)], vec![]);
            let replaced = ["nodes_modes", "nodes_truenodeids", "nodes_falsenodeids"];
            n.attribute.retain(|a| !replaced.contains(&a.name.as_str()));
            n.attribute.push(strings("nodes_modes", modes));
            n.attribute.push(ints("nodes_truenodeids", true_ids));
            n.attribute.push(ints("nodes_falsenodeids", false_ids));
            parse_regressor(&n).expect_err("cycle").to_string()
        };
        // Tree 1's left child becomes a branch that leads back to itself.
        let modes = ["BRANCH_LEQ", "LEAF", "LEAF", "BRANCH_LEQ", "BRANCH_LEQ", "LEAF"];
        let e = looped(&modes, &[1, 0, 0, 1, 1, 0], &[2, 0, 0, 2, 1, 0]);
        assert!(e.contains("tree 1 loops back to its node 1"), "{e}");
        // Tree 1's left child leads back to the root, so no node of tree 1 is a root.
        let e = looped(&modes, &[1, 0, 0, 1, 0, 0], &[2, 0, 0, 2, 0, 0]);
        assert!(e.contains("tree 1 has no root"), "{e}");
    }

    /// One row walked node by node from the parsed nodes, as a reference for the blocks.
    fn walk_one(trees: &Trees, root: usize, row: &[f32]) -> usize {
        let mut i = root;
        while trees.nodes[i].mode != Mode::Leaf {
            let n = &trees.nodes[i];
            let x = row[n.feature];
            let go = compare(n.mode, x, n.threshold) || (n.missing_goes_true && x.is_nan());
            i = if go { n.true_child } else { n.false_child };
        }
        i
    }

    /// Evaluates `e` on `rows` (all of them, then a partial last block, then one row) and
    /// compares every output with the one-row walks of `walk_one`.
    fn check_against_one_row_walks(e: &TreeEnsemble, rows: &[Vec<f32>]) {
        let width = rows[0].len();
        for take in [rows.len(), 19.min(rows.len()), 1] {
            let x = tract_ndarray::Array2::from_shape_fn((take, width), |(r, c)| rows[r][c]).into_tensor();
            let out = eval(e, x);
            let got = out[0].to_plain_array_view::<f32>().expect("f32");
            for (r, row) in rows.iter().take(take).enumerate() {
                let want: f32 = e
                    .trees
                    .roots
                    .iter()
                    .map(|root| {
                        let leaf = &e.trees.nodes[walk_one(&e.trees, *root, row)];
                        e.trees.weights[leaf.weights.clone()].iter().map(|(_, w)| w).sum::<f32>()
                    })
                    .sum();
                assert_eq!(got[[r, 0]], want, "row {r} {row:?} of {take}");
            }
        }
    }

    /// Tree 0 is deeper on one side and reads three features; tree 1 is a single leaf.
    fn lopsided(modes: &[&str], missing: &[i64]) -> NodeProto {
        node(
            "TreeEnsembleRegressor",
            vec![
                ints("nodes_treeids", &[0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1]),
                ints("nodes_nodeids", &[0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 0]),
                ints("nodes_featureids", &[0, 1, 0, 2, 0, 2, 0, 1, 0, 2, 0, 0, 0]),
                floats("nodes_values", &[0.0, 0.5, 0.0, 1.0, 0.0, 2.0, 0.0, -1.0, 0.0, 0.25, 0.0, 0.0, 0.0]),
                strings("nodes_modes", modes),
                ints("nodes_truenodeids", &[1, 2, 0, 4, 0, 6, 0, 8, 0, 10, 0, 0, 0]),
                ints("nodes_falsenodeids", &[7, 3, 0, 5, 0, 9, 0, 11, 0, 11, 0, 0, 0]),
                ints("nodes_missing_value_tracks_true", missing),
                ints("target_treeids", &[0, 0, 0, 0, 0, 0, 1]),
                ints("target_nodeids", &[2, 4, 6, 8, 10, 11, 0]),
                ints("target_ids", &[0, 0, 0, 0, 0, 0, 0]),
                floats("target_weights", &[1.0, 10.0, 100.0, 1000.0, 10000.0, 100000.0, 0.5]),
            ],
        )
    }

    /// 8^3 = 512 rows: every combination of the values around the thresholds and NaN, so
    /// every block has a mix of paths.
    fn every_combination() -> Vec<Vec<f32>> {
        let values = [-2.0f32, -1.0, 0.0, 0.25, 0.5, 1.0, 2.0, f32::NAN];
        (0..512).map(|i| vec![values[i % 8], values[(i / 8) % 8], values[i / 64]]).collect()
    }

    #[test]
    fn blocks_of_rows_reach_the_leaves_one_row_at_a_time_reaches() {
        // Tree 0 mixes every branch mode, so it is walked node by node.
        let modes = [
            "BRANCH_LEQ",
            "BRANCH_GT",
            "LEAF",
            "BRANCH_EQ",
            "LEAF",
            "BRANCH_NEQ",
            "LEAF",
            "BRANCH_LT",
            "LEAF",
            "BRANCH_GTE",
            "LEAF",
            "LEAF",
            "LEAF",
        ];
        let e = parse_regressor(&lopsided(&modes, &[1, 0, 0, 0, 0, 1, 0, 0, 0, 1, 0, 0, 0])).expect("parses");
        assert_eq!(e.trees.uniform, None);
        assert!(e.trees.complete.is_none());
        assert_eq!(e.trees.depths, [5, 0]);
        let rows = every_combination();
        check_against_one_row_walks(&e, &rows);
        // Every leaf of tree 0 is reached by some row.
        let reached: std::collections::BTreeSet<usize> =
            rows.iter().map(|row| walk_one(&e.trees, e.trees.roots[0], row)).collect();
        assert_eq!(reached.into_iter().collect::<Vec<_>>(), [2, 4, 6, 8, 10, 11]);
    }

    #[test]
    fn complete_trees_reach_the_leaves_one_row_at_a_time_reaches() {
        let rows = every_combination();
        let leaves = [2, 4, 6, 8, 10, 11, 12];
        for mode in ["BRANCH_LEQ", "BRANCH_LT", "BRANCH_GTE", "BRANCH_GT", "BRANCH_EQ", "BRANCH_NEQ"] {
            let modes: Vec<&str> = (0..13).map(|i| if leaves.contains(&i) { "LEAF" } else { mode }).collect();
            for missing in [[0; 13], [1, 0, 0, 0, 0, 1, 0, 0, 0, 1, 0, 0, 0]] {
                let e = parse_regressor(&lopsided(&modes, &missing)).expect("parses");
                let c = e.trees.complete.as_ref().expect("one mode, small trees: laid out complete");
                assert_eq!(c.missing, missing.contains(&1), "{mode} {missing:?}");
                // Depth 5 and a single leaf: 31 branches and 32 leaves, then one leaf.
                assert_eq!((c.branches.len(), c.leaves.len()), (31, 33));
                assert!(e.single.is_some());
                check_against_one_row_walks(&e, &rows);
            }
        }
    }

    #[test]
    fn deep_sparse_trees_keep_the_linked_walk() {
        // One chain of 30 branches on feature 0 (x <= i goes to a leaf), so a complete layout
        // would need 2^31 positions for 61 nodes.
        let n = 30;
        let mut features = vec![];
        let (mut ids, mut values, mut modes, mut true_ids, mut false_ids) = (vec![], vec![], vec![], vec![], vec![]);
        for i in 0..n {
            ids.extend([2 * i, 2 * i + 1]);
            features.extend([0, 0]);
            values.extend([i as f32, 0.0]);
            modes.extend(["BRANCH_LEQ", "LEAF"]);
            true_ids.extend([2 * i + 1, 0]);
            false_ids.extend([2 * i + 2, 0]);
        }
        ids.push(2 * n);
        features.push(0);
        values.push(0.0);
        modes.push("LEAF");
        true_ids.push(0);
        false_ids.push(0);
        let leaves: Vec<i64> = (0..n).map(|i| 2 * i + 1).chain([2 * n]).collect();
        let weights: Vec<f32> = (0..=n).map(|i| i as f32).collect();
        let zeros = vec![0; ids.len()];
        let e = parse_regressor(&node(
            "TreeEnsembleRegressor",
            vec![
                ints("nodes_treeids", &zeros),
                ints("nodes_nodeids", &ids),
                ints("nodes_featureids", &features),
                floats("nodes_values", &values),
                strings("nodes_modes", &modes),
                ints("nodes_truenodeids", &true_ids),
                ints("nodes_falsenodeids", &false_ids),
                ints("target_treeids", &vec![0; leaves.len()]),
                ints("target_nodeids", &leaves),
                ints("target_ids", &vec![0; leaves.len()]),
                floats("target_weights", &weights),
            ],
        ))
        .expect("parses");
        assert_eq!(e.trees.depths, [30]);
        assert!(e.trees.complete.is_none());
        let rows: Vec<Vec<f32>> = (-2..34).map(|v| vec![v as f32 - 0.5]).chain([vec![f32::NAN]]).collect();
        check_against_one_row_walks(&e, &rows);
    }
}

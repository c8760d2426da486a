//! `LinearClassifier` as one kernel: the scores of every row against every model, the
//! post-transform and the winning label, in one pass over the batch.
//!
//! tract 0.23 expands the operator into a matrix product, a bias, a transform, an argmax and
//! a label lookup: five to nine nodes, each with its own output tensor, which for a batch of a
//! hundred rows costs more than the arithmetic. The results are those of tract's expansion
//! and of onnxruntime (`tests/conformance.rs`): the binary layout with one model gives
//! `[-s, s]`, `[1 - σ(s), σ(s)]` or their softmax, and every other layout applies the
//! post-transform to each row's scores as onnxruntime does.

use tract_onnx::model::ParsingContext;
use tract_onnx::pb::NodeProto;
use tract_onnx::tract_hir::internal::*;

use super::transform::{self, Post};
use super::tree::Labels;
use super::{Kernel, expand_kernel};

#[derive(Debug)]
struct LinearClassifier {
    labels: Labels,
    /// One row of `features` coefficients per model.
    coefficients: Vec<f32>,
    features: usize,
    /// One per model (zeros when the node has none).
    intercepts: Vec<f32>,
    models: usize,
    post: Post,
    /// Two classes scored by one model: the scores are written for both.
    binary: bool,
}

pub fn linear_classifier(_ctx: &ParsingContext, node: &NodeProto) -> TractResult<(Box<dyn InferenceOp>, Vec<String>)> {
    let name = &node.name;
    let labels = match (
        node.get_attr_opt_vec::<i64>("classlabels_ints")?,
        node.get_attr_opt_vec::<String>("classlabels_strings")?,
    ) {
        (Some(ints), None) => Labels::Int(ints),
        (None, Some(strings)) => Labels::Text(strings),
        _ => bail!("LinearClassifier {name:?}: needs exactly one of classlabels_ints and classlabels_strings"),
    };
    let classes = labels.len();
    let multi_class = node.get_attr_opt::<i64>("multi_class")?.unwrap_or(0);
    let coefficients = node.get_attr_vec::<f32>("coefficients")?;
    if coefficients.is_empty() {
        bail!("LinearClassifier {name:?}: no coefficients");
    }
    let intercepts = node.get_attr_opt_vec::<f32>("intercepts")?;
    let (models, binary) = match &intercepts {
        Some(v) if !v.is_empty() && coefficients.len() % v.len() == 0 => {
            (v.len(), classes == 2 && v.len() == 1 && multi_class == 0)
        }
        Some(v) => bail!(
            "LinearClassifier {name:?}: {} coefficients for {} intercepts, not a multiple",
            coefficients.len(),
            v.len()
        ),
        None if classes == 2 && multi_class == 0 => (1, true),
        None if classes > 0 && coefficients.len() % classes == 0 => (classes, false),
        None => bail!("LinearClassifier {name:?}: {} coefficients for {classes} classes", coefficients.len()),
    };
    if !binary && classes != models {
        bail!("LinearClassifier {name:?}: {classes} class labels for {models} models");
    }
    let post = transform::parse(node)?;
    if binary && !matches!(post, Post::None | Post::Logistic | Post::Softmax) {
        bail!("LinearClassifier {name:?}: post_transform {post:?} is not supported for one binary model");
    }
    let features = coefficients.len() / models;
    let intercepts = intercepts.unwrap_or_else(|| vec![0.0; models]);
    Ok((expand_kernel(LinearClassifier { labels, coefficients, features, intercepts, models, post, binary }), vec![]))
}

impl LinearClassifier {
    fn outputs(&self) -> usize {
        if self.binary { 2 } else { self.models }
    }

    /// One row's scores, transformed, into `out` (`outputs()` values).
    fn score_row(&self, x: &[f32], out: &mut [f32]) {
        let dot = |m: usize| {
            let w = &self.coefficients[m * self.features..(m + 1) * self.features];
            w.iter().zip(x).map(|(w, x)| w * x).sum::<f32>() + self.intercepts[m]
        };
        if self.binary {
            let s = dot(0);
            match self.post {
                Post::Logistic => {
                    let p = transform::logistic(s);
                    out.copy_from_slice(&[1.0 - p, p]);
                }
                Post::Softmax => {
                    out.copy_from_slice(&[-s, s]);
                    transform::apply(Post::Softmax, out);
                }
                _ => out.copy_from_slice(&[-s, s]),
            }
        } else {
            for (m, o) in out.iter_mut().enumerate() {
                *o = dot(m);
            }
            transform::apply(self.post, out);
        }
    }
}

impl Kernel for LinearClassifier {
    fn name(&self) -> &'static str {
        "LinearClassifier"
    }

    fn output_facts(&self, inputs: &[&TypedFact]) -> TractResult<TVec<TypedFact>> {
        let n = if inputs[0].rank() == 1 { 1.to_dim() } else { inputs[0].shape[0].clone() };
        let scores = f32::fact([n.clone(), self.outputs().to_dim()]);
        Ok(match &self.labels {
            Labels::Int(_) => tvec!(i64::fact([n]), scores),
            Labels::Text(_) => tvec!(String::fact([n]), scores),
        })
    }

    fn eval(&self, inputs: TVec<TValue>) -> TractResult<TVec<TValue>> {
        let input = &inputs[0];
        let (rows, width) = match input.shape() {
            [w] => (1, *w),
            [r, w] => (*r, *w),
            other => bail!("LinearClassifier: expected a matrix of rows and features, got shape {other:?}"),
        };
        if width != self.features {
            bail!("LinearClassifier: {width} features given, the coefficients are for {}", self.features);
        }
        let cast = input.cast_to::<f32>()?;
        let view = cast.to_plain_array_view::<f32>()?;
        let owned;
        let x: &[f32] = match view.as_slice() {
            Some(x) => x,
            None => {
                owned = view.iter().copied().collect::<Vec<f32>>();
                &owned
            }
        };
        let k = self.outputs();
        let mut scores = vec![0f32; rows * k];
        let mut winners = Vec::with_capacity(rows);
        for (row, out) in x.chunks_exact(width.max(1)).zip(scores.chunks_exact_mut(k)) {
            self.score_row(row, out);
            // The first of the highest scores, as an argmax does.
            let mut best = 0;
            for (i, v) in out.iter().enumerate().skip(1) {
                if *v > out[best] {
                    best = i;
                }
            }
            winners.push(best);
        }
        let scores = tract_ndarray::Array2::from_shape_vec((rows, k), scores)?.into_tensor().into_tvalue();
        let labels = match &self.labels {
            Labels::Int(l) => tensor1(&winners.iter().map(|w| l[*w]).collect::<Vec<i64>>()),
            Labels::Text(l) => tensor1(&winners.iter().map(|w| l[*w].clone()).collect::<Vec<String>>()),
        };
        Ok(tvec!(labels.into_tvalue(), scores))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::onnx_ml::tests::eval;

    fn binary(post: Post) -> LinearClassifier {
        LinearClassifier {
            labels: Labels::Int(vec![7, 9]),
            coefficients: vec![2.0, -1.0],
            features: 2,
            intercepts: vec![0.5],
            models: 1,
            post,
            binary: true,
        }
    }

    fn run(k: &LinearClassifier, x: Tensor) -> (Vec<i64>, Vec<f32>) {
        let out = eval(k, x);
        let labels = out[0].to_plain_array_view::<i64>().expect("labels").iter().copied().collect();
        let scores = out[1].to_plain_array_view::<f32>().expect("scores").iter().copied().collect();
        (labels, scores)
    }

    fn close(a: &[f32], b: &[f32]) -> bool {
        a.len() == b.len() && a.iter().zip(b).all(|(a, b)| (a - b).abs() < 1e-6)
    }

    #[test]
    fn one_binary_model_scores_both_classes_as_the_expanded_graph_does() {
        // Scores 1.5 and -2.5.
        let x = || tensor2(&[[1.0f32, 1.0], [0.0, 3.0]]);
        let sigmoid = |s: f32| 1.0 / (1.0 + (-s).exp());
        let (labels, scores) = run(&binary(Post::None), x());
        assert_eq!(labels, [9, 7]);
        assert!(close(&scores, &[-1.5, 1.5, 2.5, -2.5]), "{scores:?}");
        let (labels, scores) = run(&binary(Post::Logistic), x());
        assert_eq!(labels, [9, 7]);
        let expected = [1.0 - sigmoid(1.5), sigmoid(1.5), 1.0 - sigmoid(-2.5), sigmoid(-2.5)];
        assert!(close(&scores, &expected), "{scores:?}");
        let (_, scores) = run(&binary(Post::Softmax), x());
        assert!(close(&scores, &[sigmoid(-3.0), sigmoid(3.0), sigmoid(5.0), sigmoid(-5.0)]), "{scores:?}");
    }

    #[test]
    fn several_models_take_the_first_highest_transformed_score() {
        let k = LinearClassifier {
            labels: Labels::Text(vec!["a".into(), "b".into(), "c".into()]),
            coefficients: vec![1.0, 0.0, 0.0, 1.0, 1.0, 1.0],
            features: 2,
            intercepts: vec![0.0, 0.0, -1.0],
            models: 3,
            post: Post::Softmax,
            binary: false,
        };
        // Raw scores [2, 1, 2] and [0, 0, -1]: ties go to the first.
        let out = eval(&k, tensor2(&[[2.0f32, 1.0], [0.0, 0.0]]));
        let labels: Vec<String> = out[0].to_plain_array_view::<String>().expect("labels").iter().cloned().collect();
        assert_eq!(labels, ["a", "a"]);
        let scores: Vec<f32> = out[1].to_plain_array_view::<f32>().expect("scores").iter().copied().collect();
        let (e2, e1) = (2f32.exp(), 1f32.exp());
        let first = [e2 / (2.0 * e2 + e1), e1 / (2.0 * e2 + e1), e2 / (2.0 * e2 + e1)];
        assert!(close(&scores[..3], &first), "{scores:?}");
        let e = k.eval(tvec!(tensor2(&[[1.0f32, 2.0, 3.0]]).into_tvalue())).expect_err("3 features");
        assert!(e.to_string().contains("3 features given, the coefficients are for 2"), "{e}");
    }
}

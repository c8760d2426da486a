//! Post-transforms of ONNX-ML scores, computed as onnxruntime computes them.

use tract_onnx::pb::NodeProto;
use tract_onnx::tract_hir::internal::*;

/// The `post_transform` attribute.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Post {
    None,
    Logistic,
    Softmax,
    SoftmaxZero,
    Probit,
}

pub fn parse(node: &NodeProto) -> TractResult<Post> {
    match node.get_attr_opt::<String>("post_transform")?.as_deref().unwrap_or("NONE") {
        "NONE" => Ok(Post::None),
        "LOGISTIC" => Ok(Post::Logistic),
        "SOFTMAX" => Ok(Post::Softmax),
        "SOFTMAX_ZERO" => Ok(Post::SoftmaxZero),
        "PROBIT" => Ok(Post::Probit),
        other => bail!("{} {:?}: unknown post_transform {other:?}", node.op_type, node.name),
    }
}

pub fn logistic(x: f32) -> f32 {
    let v = 1.0 / (1.0 + (-x.abs()).exp());
    if x < 0.0 { 1.0 - v } else { v }
}

/// onnxruntime's approximation of the inverse error function.
fn erf_inv(x: f32) -> f32 {
    let sign = if x < 0.0 { -1.0 } else { 1.0 };
    let x = (1.0 - x) * (1.0 + x);
    let log = x.ln();
    let v = 2.0 / (std::f32::consts::PI * 0.147) + 0.5 * log;
    let v2 = 1.0 / 0.147 * log;
    let v3 = -v + (v * v - v2).sqrt();
    sign * v3.sqrt()
}

pub fn probit(x: f32) -> f32 {
    std::f32::consts::SQRT_2 * erf_inv(2.0 * x - 1.0)
}

fn softmax(values: &mut [f32]) {
    let max = values.iter().copied().fold(f32::MIN, f32::max);
    let mut sum = 0.0;
    for v in values.iter_mut() {
        *v = (*v - max).exp();
        sum += *v;
    }
    for v in values.iter_mut() {
        *v /= sum;
    }
}

/// Softmax that leaves zero scores at zero.
fn softmax_zero(values: &mut [f32]) {
    let max = values.iter().copied().fold(f32::MIN, f32::max);
    let exp_neg_max = (-max).exp();
    let mut sum = 0.0;
    for v in values.iter_mut() {
        if v.abs() > 1e-7 {
            *v = (*v - max).exp();
            sum += *v;
        } else {
            *v *= exp_neg_max;
        }
    }
    for v in values.iter_mut() {
        *v /= sum;
    }
}

/// Applies a post-transform to the scores of one row (two or more classes or targets).
pub fn apply(post: Post, values: &mut [f32]) {
    match post {
        Post::None => {}
        Post::Logistic => values.iter_mut().for_each(|v| *v = logistic(*v)),
        Post::Softmax => softmax(values),
        Post::SoftmaxZero => softmax_zero(values),
        Post::Probit => values.iter_mut().for_each(|v| *v = probit(*v)),
    }
}

/// The two class scores of a binary classifier that produced one score, following
/// onnxruntime's `write_binary_scores`: `second_class` 0 or 1 when all weights are positive,
/// 2 or 3 for mixed weights (the winning class positive or negative).
pub fn binary(score: f32, post: Post, second_class: i32) -> TVec<f32> {
    if post == Post::Probit {
        return tvec![probit(score)];
    }
    match second_class {
        0 | 1 => tvec![1.0 - score, score],
        2 | 3 if post == Post::Logistic => tvec![logistic(-score), logistic(score)],
        2 => tvec![-score, score],
        3 => tvec![score, -score],
        _ => tvec![score],
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn logistic_and_softmax() {
        assert!((logistic(0.0) - 0.5).abs() < 1e-7);
        assert!((logistic(-2.0) - (1.0 - logistic(2.0))).abs() < 1e-7);
        let mut v = [1.0f32, 2.0, 3.0];
        apply(Post::Softmax, &mut v);
        assert!((v.iter().sum::<f32>() - 1.0).abs() < 1e-6);
        assert!(v[2] > v[1] && v[1] > v[0]);
        let mut z = [0.0f32, 1.0];
        apply(Post::SoftmaxZero, &mut z);
        assert_eq!(z, [0.0, 1.0]);
        assert!(probit(0.5).abs() < 1e-6);
    }
}

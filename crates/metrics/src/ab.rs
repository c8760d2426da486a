//! The statistics of an A/B test between two variants, on outcomes: confidence intervals of
//! each variant's metric, the significance of their difference, and the sample size that an
//! observed difference needs. Each is the function a user would call in Python, checked
//! against it on committed cases (`tests/fixtures/ab/`):
//!
//! - [`wilson`]: statsmodels' `proportion_confint(method="wilson")`;
//! - [`two_proportion_z`]: statsmodels' `proportions_ztest` (pooled variance, two-sided);
//! - [`mean_interval`]: scipy's `t.interval` around the mean with the standard error;
//! - [`welch_t`]: scipy's `ttest_ind(equal_var=False)`;
//! - [`sample_size_proportions`] and [`sample_size_means`]: the normal-approximation sizes per
//!   variant for a two-sided test at level `alpha` with power `power`.

use serde::{Deserialize, Serialize};
use statrs::distribution::{ContinuousCDF, Normal, StudentsT};

/// A two-sided confidence interval.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Interval {
    pub low: f64,
    pub high: f64,
}

/// A test statistic and its two-sided p-value.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Test {
    pub statistic: f64,
    pub p_value: f64,
    /// Degrees of freedom (Welch's t); `None` for a z-test.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub df: Option<f64>,
}

fn standard_normal() -> Normal {
    // Mean 0 and standard deviation 1 are valid parameters.
    Normal::standard()
}

/// The two-sided critical value of the standard normal at `confidence` (1.96 at 0.95).
fn z_critical(confidence: f64) -> f64 {
    standard_normal().inverse_cdf(0.5 + confidence / 2.0)
}

/// The Wilson score interval of `successes` out of `n` at `confidence`.
pub fn wilson(successes: u64, n: u64, confidence: f64) -> Option<Interval> {
    if n == 0 || successes > n || !(0.0..1.0).contains(&confidence) {
        return None;
    }
    let (n, p) = (n as f64, successes as f64 / n as f64);
    let z = z_critical(confidence);
    let z2 = z * z;
    let centre = (p + z2 / (2.0 * n)) / (1.0 + z2 / n);
    let half = z / (1.0 + z2 / n) * (p * (1.0 - p) / n + z2 / (4.0 * n * n)).sqrt();
    // At 0 and at n the bound is 0 or 1 exactly, as statsmodels gives it (the sum would miss
    // it by a rounding).
    let low = if successes == 0 { 0.0 } else { centre - half };
    let high = if successes as f64 == n { 1.0 } else { centre + half };
    Some(Interval { low, high })
}

/// The z-test of two proportions with the pooled variance, two-sided: positive when the first
/// proportion is the larger.
pub fn two_proportion_z(x1: u64, n1: u64, x2: u64, n2: u64) -> Option<Test> {
    if n1 == 0 || n2 == 0 || x1 > n1 || x2 > n2 {
        return None;
    }
    let (p1, p2) = (x1 as f64 / n1 as f64, x2 as f64 / n2 as f64);
    let pooled = (x1 + x2) as f64 / (n1 + n2) as f64;
    let se = (pooled * (1.0 - pooled) * (1.0 / n1 as f64 + 1.0 / n2 as f64)).sqrt();
    if se == 0.0 {
        return None;
    }
    let z = (p1 - p2) / se;
    Some(Test { statistic: z, p_value: 2.0 * standard_normal().sf(z.abs()), df: None })
}

fn mean_and_variance(values: &[f64]) -> (f64, f64) {
    let n = values.len() as f64;
    let mean = values.iter().sum::<f64>() / n;
    let variance = values.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / (n - 1.0);
    (mean, variance)
}

/// The interval of the mean of `values` at `confidence`, from Student's t with n − 1 degrees
/// of freedom and the standard error of the mean.
pub fn mean_interval(values: &[f64], confidence: f64) -> Option<Interval> {
    if values.len() < 2 || !(0.0..1.0).contains(&confidence) {
        return None;
    }
    let (mean, variance) = mean_and_variance(values);
    let t = StudentsT::new(0.0, 1.0, values.len() as f64 - 1.0).ok()?;
    let half = t.inverse_cdf(0.5 + confidence / 2.0) * (variance / values.len() as f64).sqrt();
    Some(Interval { low: mean - half, high: mean + half })
}

/// Welch's t-test of two means, two-sided: positive when the first mean is the larger.
pub fn welch_t(a: &[f64], b: &[f64]) -> Option<Test> {
    if a.len() < 2 || b.len() < 2 {
        return None;
    }
    let ((ma, va), (mb, vb)) = (mean_and_variance(a), mean_and_variance(b));
    let (sa, sb) = (va / a.len() as f64, vb / b.len() as f64);
    let se = (sa + sb).sqrt();
    if se == 0.0 {
        return None;
    }
    let t = (ma - mb) / se;
    let df = (sa + sb).powi(2) / (sa * sa / (a.len() as f64 - 1.0) + sb * sb / (b.len() as f64 - 1.0));
    let distribution = StudentsT::new(0.0, 1.0, df).ok()?;
    Some(Test { statistic: t, p_value: 2.0 * distribution.sf(t.abs()), df: Some(df) })
}

/// Rows per variant that a two-sided z-test at level `alpha` needs to detect proportions `p1`
/// against `p2` with probability `power`:
/// `(z₁₋α/₂·√(2·p̄(1−p̄)) + z_power·√(p1(1−p1) + p2(1−p2)))² / (p1 − p2)²`, rounded up.
pub fn sample_size_proportions(p1: f64, p2: f64, alpha: f64, power: f64) -> Option<u64> {
    if p1 == p2 || !(0.0..=1.0).contains(&p1) || !(0.0..=1.0).contains(&p2) {
        return None;
    }
    let normal = standard_normal();
    let (za, zb) = (normal.inverse_cdf(1.0 - alpha / 2.0), normal.inverse_cdf(power));
    let mean = (p1 + p2) / 2.0;
    let numerator = za * (2.0 * mean * (1.0 - mean)).sqrt() + zb * (p1 * (1.0 - p1) + p2 * (1.0 - p2)).sqrt();
    Some((numerator.powi(2) / (p1 - p2).powi(2)).ceil() as u64)
}

/// Rows per variant that a two-sided test at level `alpha` needs to detect a difference of
/// means `difference` between samples of standard deviations `sd1` and `sd2` with probability
/// `power`: `(z₁₋α/₂ + z_power)²·(sd1² + sd2²) / difference²`, rounded up.
pub fn sample_size_means(difference: f64, sd1: f64, sd2: f64, alpha: f64, power: f64) -> Option<u64> {
    if difference == 0.0 || !difference.is_finite() {
        return None;
    }
    let normal = standard_normal();
    let z = normal.inverse_cdf(1.0 - alpha / 2.0) + normal.inverse_cdf(power);
    Some((z * z * (sd1 * sd1 + sd2 * sd2) / (difference * difference)).ceil() as u64)
}

/// The standard deviation of a sample (n − 1 in the denominator).
pub fn sample_sd(values: &[f64]) -> Option<f64> {
    (values.len() >= 2).then(|| mean_and_variance(values).1.sqrt())
}

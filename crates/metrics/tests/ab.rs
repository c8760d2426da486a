//! A/B statistics against statsmodels' and scipy's on committed cases (tests/fixtures/ab/,
//! made by its make_cases.py).

use std::path::Path;

use mlops_metrics::ab::{
    mean_interval, sample_sd, sample_size_means, sample_size_proportions, two_proportion_z, welch_t, wilson,
};
use serde_json::Value;

fn cases() -> Value {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures/ab/cases.json");
    serde_json::from_slice(&std::fs::read(path).expect("cases.json")).expect("JSON")
}

fn close(ours: f64, theirs: f64, what: &str) {
    assert!((ours - theirs).abs() <= 1e-9 * theirs.abs().max(1.0), "{what}: ours {ours}, theirs {theirs}");
}

fn numbers(v: &Value) -> Vec<f64> {
    v.as_array().expect("array").iter().map(|x| x.as_f64().expect("number")).collect()
}

#[test]
fn proportions_as_statsmodels_computes_them() {
    let cases = cases();
    let proportions = cases["proportions"].as_array().expect("cases");
    assert!(proportions.len() >= 5);
    for case in proportions {
        let n = |k: &str| case[k].as_u64().expect(k);
        let (x1, n1, x2, n2) = (n("x1"), n("n1"), n("x2"), n("n2"));
        for (x, total, key) in [(x1, n1, "wilson1"), (x2, n2, "wilson2")] {
            let interval = wilson(x, total, 0.95).expect("interval");
            let expected = numbers(&case[key]);
            close(interval.low, expected[0], &format!("{key} low of {case}"));
            close(interval.high, expected[1], &format!("{key} high of {case}"));
        }
        let test = two_proportion_z(x1, n1, x2, n2).expect("a test");
        close(test.statistic, case["z"].as_f64().expect("z"), &format!("z of {case}"));
        close(test.p_value, case["p_value"].as_f64().expect("p"), &format!("p of {case}"));
        let size = sample_size_proportions(x1 as f64 / n1 as f64, x2 as f64 / n2 as f64, 0.05, 0.8);
        assert_eq!(size, case["sample_size"].as_u64(), "{case}");
    }
}

#[test]
fn means_as_scipy_computes_them() {
    for case in cases()["means"].as_array().expect("cases") {
        let (a, b) = (numbers(&case["a"]), numbers(&case["b"]));
        let test = welch_t(&a, &b).expect("test");
        close(test.statistic, case["t"].as_f64().expect("t"), "t");
        close(test.p_value, case["p_value"].as_f64().expect("p"), "p");
        close(test.df.expect("df"), case["df"].as_f64().expect("df"), "df");
        for (sample, key) in [(&a, "interval_a"), (&b, "interval_b")] {
            let interval = mean_interval(sample, 0.95).expect("interval");
            let expected = numbers(&case[key]);
            close(interval.low, expected[0], key);
            close(interval.high, expected[1], key);
        }
        let mean = |v: &[f64]| v.iter().sum::<f64>() / v.len() as f64;
        let size =
            sample_size_means(mean(&a) - mean(&b), sample_sd(&a).expect("sd"), sample_sd(&b).expect("sd"), 0.05, 0.8);
        assert_eq!(size, case["sample_size"].as_u64());
    }
}

#[test]
fn degenerate_samples_have_no_test() {
    assert!(wilson(1, 0, 0.95).is_none() && wilson(3, 2, 0.95).is_none());
    assert!(two_proportion_z(0, 10, 0, 10).is_none(), "no variance, no test");
    assert!(welch_t(&[1.0], &[1.0, 2.0]).is_none());
    assert!(sample_size_proportions(0.5, 0.5, 0.05, 0.8).is_none());
}

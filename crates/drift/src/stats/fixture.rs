//! Access to tests/fixtures/drift/cases.json for the unit tests: samples, expected numbers and
//! a relative comparison that understands the fixtures' non-finite strings.

use std::sync::OnceLock;

use serde_json::Value;

/// The parsed fixture file, read once per test binary.
pub(crate) fn fixtures() -> &'static Value {
    static FIXTURES: OnceLock<Value> = OnceLock::new();
    FIXTURES.get_or_init(|| {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../tests/fixtures/drift/cases.json");
        let text = std::fs::read_to_string(path).expect("tests/fixtures/drift/cases.json is readable");
        serde_json::from_str(&text).expect("tests/fixtures/drift/cases.json is JSON")
    })
}

/// The one-column cases.
pub(crate) fn cases() -> &'static [Value] {
    fixtures()["cases"].as_array().expect("cases is an array")
}

/// The case of that name.
pub(crate) fn case(name: &str) -> &'static Value {
    cases().iter().find(|c| c["name"] == name).expect("the case exists")
}

pub(crate) fn name(case: &Value) -> &str {
    case["name"].as_str().expect("a case has a name")
}

pub(crate) fn is_numeric(case: &Value) -> bool {
    case["kind"] == "numeric"
}

/// A number of the fixtures: a JSON number, or one of the strings "inf", "-inf", "nan".
pub(crate) fn number(value: &Value) -> f64 {
    match value {
        Value::String(s) if s == "inf" => f64::INFINITY,
        Value::String(s) if s == "-inf" => f64::NEG_INFINITY,
        Value::String(s) if s == "nan" => f64::NAN,
        other => other.as_f64().unwrap_or_else(|| panic!("{other} is not a number")),
    }
}

/// A numeric sample: `null` is a missing value, NaN here.
pub(crate) fn numbers(value: &Value) -> Vec<f64> {
    value.as_array().expect("an array").iter().map(|v| if v.is_null() { f64::NAN } else { number(v) }).collect()
}

/// A categorical sample: `null` is a missing value.
pub(crate) fn labels(value: &Value) -> Vec<Option<String>> {
    value.as_array().expect("an array").iter().map(|v| v.as_str().map(str::to_owned)).collect()
}

/// An array of counts.
pub(crate) fn counts(value: &Value) -> Vec<u64> {
    value.as_array().expect("an array").iter().map(|v| v.as_u64().expect("a count")).collect()
}

/// The finite values of a numeric sample, sorted.
pub(crate) fn finite_sorted(values: &[f64]) -> Vec<f64> {
    let mut v: Vec<f64> = values.iter().copied().filter(|x| x.is_finite()).collect();
    v.sort_by(f64::total_cmp);
    v
}

/// Asserts that `actual` is within a relative `rel` of `expected`. NaN must meet NaN, an infinity
/// the same infinity, and an expected 0 an exact 0.
#[track_caller]
pub(crate) fn assert_close(actual: f64, expected: f64, rel: f64, what: &str) {
    let ok = if expected.is_nan() {
        actual.is_nan()
    } else if expected.is_infinite() || expected == 0.0 {
        actual == expected
    } else {
        (actual - expected).abs() <= rel * expected.abs()
    };
    let error = (actual - expected).abs() / expected.abs();
    assert!(ok, "{what}: {actual:e} against {expected:e}, relative error {error:e} above {rel:e}");
}

/// The sorted finite values of a numeric case's two samples.
pub(crate) fn numeric_samples(case: &Value) -> (Vec<f64>, Vec<f64>) {
    (finite_sorted(&numbers(&case["reference"])), finite_sorted(&numbers(&case["current"])))
}

/// The non-missing labels of a categorical case's two samples.
pub(crate) fn label_samples(case: &Value) -> (Vec<String>, Vec<String>) {
    let present = |v: &Value| labels(v).into_iter().flatten().collect();
    (present(&case["reference"]), present(&case["current"]))
}

/// A case's distinct values (numbers as JSON numbers, labels as strings) with the reference and
/// current counts of each, in ascending order.
pub(crate) fn value_counts_of(case: &Value) -> (Vec<Value>, Vec<u64>, Vec<u64>) {
    if is_numeric(case) {
        let (r, c) = numeric_samples(case);
        let (keys, rc, cc) = super::binning::numeric_value_counts(&r, &c);
        (keys.into_iter().map(Value::from).collect(), rc, cc)
    } else {
        let (r, c) = label_samples(case);
        let rm = super::binning::value_counts(r.iter().map(String::as_str));
        let cm = super::binning::value_counts(c.iter().map(String::as_str));
        let (keys, rc, cc) = super::binning::align_counts(&rm, &cm);
        (keys.into_iter().map(Value::from).collect(), rc, cc)
    }
}

/// Asserts that our keys are the fixture's, numbers compared as numbers.
#[track_caller]
pub(crate) fn assert_keys(ours: &[Value], expected: &Value, what: &str) {
    let expected = expected.as_array().expect("keys are an array");
    let same = ours.len() == expected.len()
        && ours.iter().zip(expected).all(|(a, b)| match (a.as_f64(), b.as_f64()) {
            (Some(x), Some(y)) => x == y,
            _ => a == b,
        });
    assert!(same, "{what}: keys {ours:?} against {expected:?}");
}

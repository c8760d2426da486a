//! Verdicts: the result of one column's test, the multiple-testing correction and the dataset
//! drift share (docs/drift-methods.md, sections 10 and 11).

use serde::{Deserialize, Serialize};

use super::ks::KsMethod;
use super::select::Method;

/// The verdict on one column.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    Drift,
    NoDrift,
    /// Fewer than `min_rows` non-missing values in a sample: not tested, not counted in the share.
    InsufficientData,
}

/// The test of one column.
///
/// Non-finite numbers (an infinite chi-square statistic, a NaN p-value) are written to JSON as
/// the strings `"inf"`, `"-inf"` and `"nan"`, as in the drift fixtures.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct ColumnTest {
    pub method: Method,
    /// The statistic: KS `D`, `χ²`, `z`, or the distance; `None` when the column was not tested
    /// or the z-test compared one identical value.
    #[serde(with = "non_finite")]
    pub statistic: Option<f64>,
    /// The p-value of the p-value methods.
    #[serde(with = "non_finite")]
    pub p_value: Option<f64>,
    /// The p-value after the multiple-testing correction, when one was applied.
    #[serde(default, with = "non_finite", skip_serializing_if = "Option::is_none")]
    pub adjusted_p_value: Option<f64>,
    pub threshold: f64,
    pub verdict: Verdict,
    /// `verdict == Drift`.
    pub drifted: bool,
    pub n_reference: u64,
    pub n_current: u64,
    /// How the KS p-value was computed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ks_method: Option<KsMethod>,
    /// The statistic was computed from a sketch of a profile, within the sketch's error, rather
    /// than from the exact values.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub from_sketch: bool,
}

impl ColumnTest {
    /// The score the verdict is decided on: the adjusted p-value if any, else the p-value for the
    /// p-value methods, the statistic for the distances.
    pub fn score(&self) -> Option<f64> {
        if self.method.is_p_value() { self.adjusted_p_value.or(self.p_value) } else { self.statistic }
    }

    /// Sets the verdict from the score, threshold and method, unless the data were insufficient.
    pub fn decide(&mut self) {
        if self.verdict == Verdict::InsufficientData {
            self.drifted = false;
            return;
        }
        self.drifted = self.score().is_some_and(|s| self.method.drifts(s, self.threshold));
        self.verdict = if self.drifted { Verdict::Drift } else { Verdict::NoDrift };
    }
}

/// A multiple-testing correction of the p-value methods over one report.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Correction {
    /// No correction, as in Evidently.
    #[default]
    None,
    /// `p̃ = min(1, m·p)`.
    Bonferroni,
    /// Benjamini–Hochberg, as `scipy.stats.false_discovery_control(p, method='bh')`.
    BenjaminiHochberg,
}

impl Correction {
    /// Parses `none`, `bonferroni` or `bh` (also `benjamini-hochberg`).
    pub fn from_name(name: &str) -> Result<Correction, String> {
        match name {
            "none" => Ok(Correction::None),
            "bonferroni" => Ok(Correction::Bonferroni),
            "bh" | "benjamini-hochberg" => Ok(Correction::BenjaminiHochberg),
            other => Err(format!("{other:?} is not a correction; use none, bonferroni or bh")),
        }
    }
}

/// Adjusted p-values of a family of `m` tests, in the order given. A NaN p-value counts as 1.
pub fn adjust_p_values(p_values: &[f64], correction: Correction) -> Vec<f64> {
    let m = p_values.len();
    let p: Vec<f64> = p_values.iter().map(|&p| if p.is_nan() { 1.0 } else { p }).collect();
    match correction {
        Correction::None => p,
        Correction::Bonferroni => p.iter().map(|&p| (p * m as f64).clamp(0.0, 1.0)).collect(),
        Correction::BenjaminiHochberg => {
            let mut order: Vec<usize> = (0..m).collect();
            // Tied p-values get the same adjusted value whatever their order, so the order of
            // ties need not follow numpy's argsort.
            order.sort_by(|&a, &b| p[a].total_cmp(&p[b]));
            let mut adjusted = vec![0.0; m];
            let mut running = f64::INFINITY;
            for (rank, &index) in order.iter().enumerate().rev() {
                let value = p[index] * (m as f64 / (rank + 1) as f64);
                running = running.min(value);
                adjusted[index] = running.clamp(0.0, 1.0);
            }
            adjusted
        }
    }
}

/// Applies a correction to the tested columns decided by a p-value (`ks`, `chisquare`, `z`), sets
/// their `adjusted_p_value` and decides them again on it. Distance methods and
/// `insufficient_data` columns are left as they are. `Correction::None` changes nothing.
pub fn apply_correction(tests: &mut [ColumnTest], correction: Correction) {
    if correction == Correction::None {
        return;
    }
    let family: Vec<usize> = (0..tests.len())
        .filter(|&i| {
            tests
                .get(i)
                .is_some_and(|t| t.method.is_p_value() && t.verdict != Verdict::InsufficientData && t.p_value.is_some())
        })
        .collect();
    let p: Vec<f64> = family.iter().filter_map(|&i| tests.get(i).and_then(|t| t.p_value)).collect();
    for (&i, adjusted) in family.iter().zip(adjust_p_values(&p, correction)) {
        if let Some(t) = tests.get_mut(i) {
            t.adjusted_p_value = Some(adjusted);
            t.decide();
        }
    }
}

/// The dataset-level result.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct DatasetDrift {
    /// Columns with a drift or no-drift verdict.
    pub checked: usize,
    pub drifted: usize,
    pub insufficient: usize,
    /// `drifted / checked`, 0 when nothing was checked.
    pub share: f64,
    pub drift_share: f64,
    /// `checked > 0 && share ≥ drift_share`.
    pub dataset_drift: bool,
}

/// Evidently's `get_dataset_drift`, without the `insufficient_data` columns.
pub fn dataset_drift(tests: &[ColumnTest], drift_share: f64) -> DatasetDrift {
    let insufficient = tests.iter().filter(|t| t.verdict == Verdict::InsufficientData).count();
    let checked = tests.len() - insufficient;
    let drifted = tests.iter().filter(|t| t.verdict == Verdict::Drift).count();
    let share = if checked == 0 { 0.0 } else { drifted as f64 / checked as f64 };
    DatasetDrift {
        checked,
        drifted,
        insufficient,
        share,
        drift_share,
        dataset_drift: checked > 0 && share >= drift_share,
    }
}

/// Serde for `Option<f64>` that writes non-finite values as `"inf"`, `"-inf"` and `"nan"`.
mod non_finite {
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(value: &Option<f64>, serializer: S) -> Result<S::Ok, S::Error> {
        match value {
            None => serializer.serialize_none(),
            Some(v) if v.is_finite() => serializer.serialize_f64(*v),
            Some(v) if v.is_nan() => serializer.serialize_str("nan"),
            Some(v) if *v > 0.0 => serializer.serialize_str("inf"),
            Some(_) => serializer.serialize_str("-inf"),
        }
    }

    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Number {
        Finite(f64),
        Text(String),
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<f64>, D::Error> {
        match Option::<Number>::deserialize(deserializer)? {
            None => Ok(None),
            Some(Number::Finite(v)) => Ok(Some(v)),
            Some(Number::Text(t)) => match t.as_str() {
                "inf" => Ok(Some(f64::INFINITY)),
                "-inf" => Ok(Some(f64::NEG_INFINITY)),
                "nan" => Ok(Some(f64::NAN)),
                other => Err(serde::de::Error::custom(format!(
                    "expected a number, \"inf\", \"-inf\" or \"nan\", not {other:?}"
                ))),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stats::TestConfig;
    use crate::stats::fixture::{assert_close, case, fixtures, number};
    use crate::stats::tests::{assert_score, run, run_samples};

    fn numbers_of(value: &serde_json::Value) -> Vec<f64> {
        value.as_array().expect("an array").iter().map(number).collect()
    }

    fn flags(value: &serde_json::Value) -> Vec<bool> {
        value.as_array().expect("an array").iter().map(|v| v.as_bool().expect("a flag")).collect()
    }

    #[test]
    fn adjustments_match_scipy() {
        let mt = &fixtures()["multiple_testing"];
        let p = numbers_of(&mt["pvalues"]);
        // Bonferroni multiplies once and clips, as we do: equal to the last bit but for the
        // rounding of the product, hence 10⁻¹⁵.
        for (ours, theirs) in adjust_p_values(&p, Correction::Bonferroni).iter().zip(numbers_of(&mt["bonferroni"])) {
            assert_close(*ours, theirs, 1e-15, "Bonferroni");
        }
        // Benjamini–Hochberg: p·(m/i) then a running minimum, as scipy's false_discovery_control.
        let bh = adjust_p_values(&p, Correction::BenjaminiHochberg);
        for (ours, theirs) in bh.iter().zip(numbers_of(&mt["benjamini_hochberg"])) {
            assert_close(*ours, theirs, 1e-15, "Benjamini–Hochberg");
        }
        assert_eq!(bh.len(), p.len());
        assert_eq!(adjust_p_values(&p, Correction::None), p);
    }

    #[test]
    fn corrected_verdicts_match_the_fixtures() {
        let mt = &fixtures()["multiple_testing"];
        let names = mt["cases"].as_array().expect("case names");
        let config = TestConfig { min_rows: 20, ..TestConfig::default() };
        let tests: Vec<ColumnTest> =
            names.iter().map(|n| run(case(n.as_str().expect("a name")), None, &config)).collect();
        for ((test, method), p) in
            tests.iter().zip(mt["methods"].as_array().expect("methods")).zip(numbers_of(&mt["pvalues"]))
        {
            assert_eq!(test.method.name(), method);
            assert_score(test, p, &format!("{} p-value", test.method));
        }
        for (correction, key) in [
            (Correction::None, "drift_unadjusted"),
            (Correction::Bonferroni, "drift_bonferroni"),
            (Correction::BenjaminiHochberg, "drift_benjamini_hochberg"),
        ] {
            let mut corrected = tests.clone();
            apply_correction(&mut corrected, correction);
            let drifted: Vec<bool> = corrected.iter().map(|t| t.drifted).collect();
            assert_eq!(drifted, flags(&mt[key]), "{correction:?}");
            let adjusted = corrected.iter().all(|t| t.adjusted_p_value.is_some());
            assert_eq!(adjusted, correction != Correction::None, "{correction:?}");
        }
    }

    #[test]
    fn dataset_share_matches_evidently() {
        let datasets = fixtures()["datasets"].as_array().expect("datasets");
        for dataset in datasets {
            let expected = &dataset["expected"];
            let config = TestConfig::default();
            let mut tests = Vec::new();
            for (column, samples) in dataset["columns"].as_object().expect("columns") {
                let numeric = samples["kind"] == "numeric";
                let test = run_samples(numeric, false, &samples["reference"], &samples["current"], None, &config)
                    .expect("a supported method");
                let e = &expected["columns"][column];
                assert_eq!(test.method.name(), e["method"], "column {column}");
                assert_score(&test, number(&e["score"]), &format!("column {column}"));
                assert_eq!(test.drifted, e["drift"] == true, "column {column}");
                tests.push(test);
            }
            let result = dataset_drift(&tests, number(&dataset["drift_share"]));
            assert_eq!(result.drifted as u64, expected["drifted_columns"].as_u64().expect("a count"));
            assert_eq!(result.share, number(&expected["share_of_drifted_columns"]));
            assert_eq!(result.dataset_drift, expected["dataset_drift"] == true, "{}", dataset["name"]);
            assert_eq!((result.checked, result.insufficient), (4, 0));
        }
        assert_eq!(datasets.len(), 2);
    }

    #[test]
    fn insufficient_columns_are_left_out_of_the_share_and_the_correction() {
        let config = TestConfig::default();
        let drifted = run(case("num_small_shift"), None, &config);
        let stable = run(case("num_small_same"), None, &config);
        let missing = run(case("num_current_all_missing"), None, &config);
        // 1 drifted of 2 checked: a share of 0.5, dataset drift at 0.5 (≥), not at 0.6.
        let tests = [drifted, stable, missing];
        let result = dataset_drift(&tests, 0.5);
        assert_eq!((result.checked, result.drifted, result.insufficient, result.share), (2, 1, 1, 0.5));
        assert!(result.dataset_drift && !dataset_drift(&tests, 0.6).dataset_drift);
        // Nothing checked: no dataset drift, even with a share threshold of 0.
        let none = dataset_drift(&[missing], 0.0);
        assert_eq!((none.checked, none.share, none.dataset_drift), (0, 0.0, false));
        // The correction skips the insufficient column: m = 2.
        let mut corrected = tests;
        apply_correction(&mut corrected, Correction::Bonferroni);
        assert_eq!(corrected[2].adjusted_p_value, None);
        assert_eq!(corrected[0].adjusted_p_value, drifted.p_value.map(|p| (2.0 * p).min(1.0)));
    }

    #[test]
    fn benjamini_hochberg_by_hand() {
        // m = 4: 0.01·4/1 = 0.04, 0.02·4/2 = 0.04, 0.03·4/3 = 0.04, 0.5·4/4 = 0.5; and a NaN as 1.
        let adjusted = adjust_p_values(&[0.5, 0.03, 0.01, 0.02], Correction::BenjaminiHochberg);
        let expected = [0.5, 0.04, 0.04, 0.04];
        assert!(adjusted.iter().zip(expected).all(|(a, e)| (a - e).abs() < 1e-15), "{adjusted:?}");
        assert_eq!(adjust_p_values(&[f64::NAN, 0.01], Correction::Bonferroni), vec![1.0, 0.02]);
    }
}

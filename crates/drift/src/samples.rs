//! Drift between two sets of rows held as samples: each feature of the contract tested with
//! the method the field's defaults choose (docs/drift-methods.md), then the dataset verdict.
//!
//! This is the exact path: every value is kept. `mlops drift` reads CSV or JSON Lines files
//! into [`Samples`] and writes the [`DriftReport`] as JSON and HTML.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::stats::{ColumnTest, DatasetDrift, Override, TestConfig, apply_correction, dataset_drift};
use mlops_contract::validate::Value;
use mlops_contract::{ColumnType, Contract};

/// The values of one feature.
#[derive(Debug, Clone, PartialEq)]
pub enum Column {
    /// Numbers; missing values are NaN.
    Numeric { values: Vec<f64>, integer: bool },
    /// Labels; missing values are `None`.
    Categorical(Vec<Option<String>>),
}

/// The values of the contract's features over a set of rows.
#[derive(Debug, Clone, PartialEq)]
pub struct Samples {
    /// Features in contract order, with their values.
    pub columns: Vec<(String, Column)>,
    /// Valid rows read.
    pub rows: u64,
    /// Rows the contract rejected (left out).
    pub rejected: u64,
}

/// The columns a drift check tests: the contract's features, or every numeric and categorical
/// column when it names none. Timestamps and free text are not tested.
pub(crate) fn tested(contract: &Contract) -> Vec<(usize, &mlops_contract::Column)> {
    let wanted = |name: &str| contract.features.is_empty() || contract.features.iter().any(|f| f == name);
    contract
        .columns
        .iter()
        .enumerate()
        .filter(|(_, c)| wanted(&c.name) && !matches!(c.kind, ColumnType::Timestamp | ColumnType::String))
        .collect()
}

impl Samples {
    pub fn new(contract: &Contract) -> Samples {
        let columns = tested(contract)
            .into_iter()
            .map(|(_, c)| {
                let column = match c.kind {
                    ColumnType::Float => Column::Numeric { values: Vec::new(), integer: false },
                    ColumnType::Int => Column::Numeric { values: Vec::new(), integer: true },
                    _ => Column::Categorical(Vec::new()),
                };
                (c.name.clone(), column)
            })
            .collect();
        Samples { columns, rows: 0, rejected: 0 }
    }

    /// Adds one valid row (values in contract column order).
    pub fn add_row(&mut self, contract: &Contract, values: &[Value]) {
        self.rows += 1;
        for ((_, column), (i, _)) in self.columns.iter_mut().zip(tested(contract)) {
            push(column, &values[i]);
        }
    }

    /// Counts a row the contract rejected.
    pub fn add_rejected(&mut self) {
        self.rejected += 1;
    }
}

fn push(column: &mut Column, value: &Value) {
    match column {
        Column::Numeric { values, .. } => values.push(value.as_f64().unwrap_or(f64::NAN)),
        Column::Categorical(labels) => labels.push(match value {
            Value::Null => None,
            Value::Text(t) => Some(crate::profile::profiled_label(t).into_owned()),
            v => Some(v.to_text()),
        }),
    }
}

/// How the drift of one feature was tested.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FeatureDrift {
    pub column: String,
    /// `numeric` or `categorical`.
    pub kind: String,
    #[serde(flatten)]
    pub test: ColumnTest,
    /// Missing values of the reference (nulls, and non-finite numbers). `None` in reports
    /// written before the count was kept.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub missing_reference: Option<u64>,
    /// Missing values of the current data, as for the reference.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub missing_current: Option<u64>,
    /// Distinct values of the reference: exact while the profile (or sample) holds them all,
    /// else the HyperLogLog estimate. `None` in reports written before it was kept.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub distinct_reference: Option<f64>,
    /// Distinct values of the current data, as for the reference.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub distinct_current: Option<f64>,
}

/// How recent each side's rows are, by the contract's event-time column.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Freshness {
    /// The event-time column.
    pub column: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reference_earliest: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reference_latest: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub current_earliest: Option<String>,
    /// The newest event time of the current data: how fresh the data checked is.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub current_latest: Option<String>,
}

impl Column {
    /// The distinct values, missing ones left out.
    pub fn distinct(&self) -> f64 {
        let n = match self {
            Column::Numeric { values, .. } => {
                let mut v: Vec<u64> =
                    values.iter().filter(|v| v.is_finite()).map(|v| if *v == 0.0 { 0 } else { v.to_bits() }).collect();
                v.sort_unstable();
                v.dedup();
                v.len()
            }
            Column::Categorical(labels) => labels.iter().flatten().collect::<std::collections::BTreeSet<_>>().len(),
        };
        n as f64
    }

    /// The missing values: NaN (or other non-finite) numbers, absent labels.
    pub fn missing(&self) -> u64 {
        let n = match self {
            Column::Numeric { values, .. } => values.iter().filter(|v| !v.is_finite()).count(),
            Column::Categorical(labels) => labels.iter().filter(|l| l.is_none()).count(),
        };
        n as u64
    }
}

/// The outcome of a drift check: one test per feature and the dataset verdict.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DriftReport {
    pub dataset: String,
    pub dataset_drift: bool,
    pub drift_share: f64,
    /// Drifted share of the tested features.
    pub share: f64,
    pub drifted: usize,
    pub checked: usize,
    pub insufficient: usize,
    pub reference_rows: u64,
    pub current_rows: u64,
    pub columns: Vec<FeatureDrift>,
    /// The event times of both sides, when the contract names an event-time column and the
    /// profiles know them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub freshness: Option<Freshness>,
}

/// Tests every feature of `current` against `reference` (both read with the same contract),
/// with per-column overrides by column name.
pub fn compare(
    dataset: &str,
    reference: &Samples,
    current: &Samples,
    config: &TestConfig,
    overrides: &BTreeMap<String, Override>,
) -> Result<DriftReport> {
    let mut features = Vec::with_capacity(reference.columns.len());
    for ((name, r), (_, c)) in reference.columns.iter().zip(&current.columns) {
        let column = overrides.get(name);
        let (kind, test) = match (r, c) {
            (Column::Numeric { values: r, integer }, Column::Numeric { values: c, .. }) => {
                ("numeric", crate::stats::test_numeric(r, c, *integer, column, config))
            }
            (Column::Categorical(r), Column::Categorical(c)) => {
                ("categorical", crate::stats::test_categorical(r, c, column, config))
            }
            _ => return Err(Error::Profile(format!("column {name:?} has different types in the two samples"))),
        };
        let test = test.map_err(|e| Error::Method(format!("column {name:?}: {e}")))?;
        features.push(FeatureDrift {
            column: name.clone(),
            kind: kind.to_string(),
            test,
            distinct_reference: Some(r.distinct()),
            distinct_current: Some(c.distinct()),
            missing_reference: Some(r.missing()),
            missing_current: Some(c.missing()),
        });
    }
    Ok(finish(dataset, features, config, reference.rows, current.rows))
}

/// The report of feature tests: the multiple-testing correction, then the dataset verdict.
pub(crate) fn finish(
    dataset: &str,
    mut features: Vec<FeatureDrift>,
    config: &TestConfig,
    reference_rows: u64,
    current_rows: u64,
) -> DriftReport {
    let mut tests: Vec<ColumnTest> = features.iter().map(|f| f.test).collect();
    apply_correction(&mut tests, config.correction);
    for (feature, test) in features.iter_mut().zip(tests.iter()) {
        feature.test = *test;
    }
    let DatasetDrift { checked, drifted, insufficient, share, drift_share, dataset_drift } =
        dataset_drift(&tests, config.drift_share);
    DriftReport {
        dataset: dataset.to_string(),
        dataset_drift,
        drift_share,
        share,
        drifted,
        checked,
        insufficient,
        reference_rows,
        current_rows,
        columns: features,
        freshness: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn contract() -> Contract {
        Contract::from_yaml(
            "dataset: d\nfeatures: [x, k]\ncolumns:\n  - {name: x, type: float}\n  - {name: k, type: category}\n  - {name: t, type: timestamp}\n",
            "t.yaml",
        )
        .expect("contract")
    }

    fn samples(rows: impl Iterator<Item = (f64, &'static str)>) -> Samples {
        let c = contract();
        let mut s = Samples::new(&c);
        for (x, k) in rows {
            s.add_row(&c, &[Value::Float(x), Value::Text(k.into()), Value::Text("2026-01-01".into())]);
        }
        s
    }

    #[test]
    fn a_shifted_feature_drifts_and_the_verdicts_follow_the_defaults() {
        let reference = samples((0..400).map(|i| (f64::from(i % 97), if i % 2 == 0 { "a" } else { "b" })));
        let current = samples((0..400).map(|i| (f64::from(i % 97) + 30.0, if i % 2 == 0 { "a" } else { "b" })));
        let report = compare("d", &reference, &current, &TestConfig::default(), &BTreeMap::new()).expect("comparable");
        let by_name: BTreeMap<&str, &FeatureDrift> = report.columns.iter().map(|f| (f.column.as_str(), f)).collect();
        assert_eq!(by_name.len(), 2, "the timestamp is not tested");
        assert_eq!(by_name["x"].test.method.name(), "ks", "small reference, many values");
        assert!(by_name["x"].test.drifted);
        assert_eq!(by_name["k"].test.method.name(), "z", "two labels on a small reference");
        assert!(!by_name["k"].test.drifted);
        assert_eq!((report.drifted, report.checked), (1, 2));
        assert!(report.dataset_drift, "1 of 2 reaches the 0.5 share");
    }

    #[test]
    fn each_feature_counts_its_missing_values_and_older_reports_still_read() {
        let c = contract();
        let mut reference = samples((0..100).map(|i| (f64::from(i), "a")));
        reference.add_row(&c, &[Value::Null, Value::Null, Value::Text("2026-01-01".into())]);
        let mut current = samples((0..100).map(|i| (f64::from(i), "b")));
        for _ in 0..3 {
            current.add_row(&c, &[Value::Null, Value::Text("a".into()), Value::Text("2026-01-01".into())]);
        }
        let report = compare("d", &reference, &current, &TestConfig::default(), &BTreeMap::new()).expect("comparable");
        let missing: Vec<(Option<u64>, Option<u64>)> =
            report.columns.iter().map(|f| (f.missing_reference, f.missing_current)).collect();
        assert_eq!(missing, [(Some(1), Some(3)), (Some(1), Some(0))]);

        let mut json = serde_json::to_value(&report).expect("JSON");
        assert_eq!(json["columns"][0]["missing_current"], 3);
        for column in json["columns"].as_array_mut().expect("columns") {
            let column = column.as_object_mut().expect("object");
            column.remove("missing_reference");
            column.remove("missing_current");
        }
        let older: DriftReport = serde_json::from_value(json).expect("a report without the counts");
        assert!(older.columns.iter().all(|f| f.missing_reference.is_none() && f.missing_current.is_none()));
    }
}

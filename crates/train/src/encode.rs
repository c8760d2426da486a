//! From contract rows to the numbers the trees split on, exactly as the exported graph
//! computes them: numbers (integers and booleans too) as 32-bit floats, categories as their
//! position in a label list, and missing or unknown values as NaN.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use mlops_contract::validate::Value;
use mlops_contract::{ColumnType, Contract};

use crate::error::{Error, Result};

/// Labels kept per categorical feature: the most frequent ones; the others are encoded as
/// missing, so that a column of identifiers cannot make the model grow with the data.
pub const MAX_LABELS: usize = 1000;

/// How one feature is encoded.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "kind")]
pub enum Encoding {
    /// A float input: the value as a 32-bit float.
    Numeric,
    /// A string input: the label's position in `labels`, NaN for any other label.
    Categorical { labels: Vec<String> },
}

/// One model input: a contract feature and its encoding.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Feature {
    pub name: String,
    pub encoding: Encoding,
    /// The feature's position among the contract's columns.
    #[serde(skip)]
    column: usize,
}

/// The features of a model in the contract's feature order.
#[derive(Debug, Clone, PartialEq)]
pub struct Encoder {
    pub features: Vec<Feature>,
}

/// The text of a value, for labels.
pub fn label_of(value: &Value) -> Option<String> {
    match value {
        Value::Null => None,
        Value::Text(s) => Some(s.to_string()),
        other => Some(other.to_text()),
    }
}

impl Encoder {
    /// The encoding of each of the contract's features: categories take the contract's
    /// `allowed` labels, or the labels seen in `rows` (the [`MAX_LABELS`] most frequent,
    /// sorted); every other type is numeric.
    pub fn fit(contract: &Contract, rows: &[&[Value]]) -> Result<Encoder> {
        if contract.features.is_empty() {
            return Err(Error::Invalid(format!("the contract of {} names no features", contract.dataset)));
        }
        let mut features = Vec::new();
        for name in &contract.features {
            let column = contract
                .columns
                .iter()
                .position(|c| &c.name == name)
                .ok_or_else(|| Error::Invalid(format!("feature {name:?} is not a column of the contract")))?;
            let spec = &contract.columns[column];
            let encoding = match spec.kind {
                ColumnType::Float | ColumnType::Int | ColumnType::Bool => Encoding::Numeric,
                ColumnType::Category | ColumnType::String => Encoding::Categorical {
                    labels: match &spec.allowed {
                        Some(allowed) => allowed.clone(),
                        None => frequent_labels(rows.iter().map(|r| &r[column])),
                    },
                },
                ColumnType::Timestamp => {
                    return Err(Error::Invalid(format!(
                        "feature {name:?} is a timestamp; the built-in trainer takes numbers and categories"
                    )));
                }
            };
            features.push(Feature { name: name.clone(), encoding, column });
        }
        Ok(Encoder { features })
    }

    /// Encodes rows (values in contract column order) as a column-major matrix of
    /// `rows.len()` rows by one column per feature.
    pub fn matrix(&self, rows: &[&[Value]]) -> Vec<f64> {
        let mut data = Vec::with_capacity(rows.len() * self.features.len());
        for feature in &self.features {
            let index: Option<BTreeMap<&str, usize>> = match &feature.encoding {
                Encoding::Numeric => None,
                Encoding::Categorical { labels } => {
                    Some(labels.iter().enumerate().map(|(i, l)| (l.as_str(), i)).collect())
                }
            };
            for row in rows {
                let value = &row[feature.column];
                data.push(match &index {
                    None => numeric(value),
                    Some(index) => {
                        label_of(value).and_then(|l| index.get(l.as_str()).map(|&i| i as f64)).unwrap_or(f64::NAN)
                    }
                });
            }
        }
        data
    }
}

/// A number as the model's float input receives it: through f64 to f32, as predict converts
/// it; booleans as 0 and 1; null as NaN.
fn numeric(value: &Value) -> f64 {
    let v = match value {
        Value::Float(f) => *f,
        Value::Int(i) => *i as f64,
        Value::Bool(b) => f64::from(u8::from(*b)),
        Value::Null => f64::NAN,
        Value::Text(t) => t.trim().parse::<f64>().unwrap_or(f64::NAN),
    };
    f64::from(v as f32)
}

/// The most frequent labels, at most [`MAX_LABELS`], sorted.
fn frequent_labels<'a>(values: impl Iterator<Item = &'a Value>) -> Vec<String> {
    let mut counts: BTreeMap<String, u64> = BTreeMap::new();
    for label in values.filter_map(label_of) {
        *counts.entry(label).or_insert(0) += 1;
    }
    let mut by_count: Vec<(String, u64)> = counts.into_iter().collect();
    by_count.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    by_count.truncate(MAX_LABELS);
    let mut labels: Vec<String> = by_count.into_iter().map(|(l, _)| l).collect();
    labels.sort();
    labels
}

/// What the model predicts: classes by name, or a number.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "kind")]
pub enum Target {
    Classes { column: String, labels: Vec<String> },
    Number { column: String },
}

impl Target {
    /// The contract's target: classes for a category, string, bool or int column (the
    /// `allowed` labels, `false`/`true`, or the labels seen, sorted), a number for a float.
    pub fn fit(contract: &Contract, rows: &[Vec<Value>], regression: Option<bool>) -> Result<(Target, usize)> {
        let name = contract
            .target
            .clone()
            .ok_or_else(|| Error::Invalid(format!("the contract of {} names no target", contract.dataset)))?;
        let column = contract
            .columns
            .iter()
            .position(|c| c.name == name)
            .ok_or_else(|| Error::Invalid(format!("target {name:?} is not a column of the contract")))?;
        let spec = &contract.columns[column];
        let numeric = matches!(spec.kind, ColumnType::Float | ColumnType::Int);
        let regression = regression.unwrap_or(spec.kind == ColumnType::Float);
        if regression && !numeric {
            return Err(Error::Invalid(format!("target {name:?} is not numeric: it cannot be regressed")));
        }
        let target = if regression {
            Target::Number { column: name }
        } else {
            let labels = match (&spec.allowed, spec.kind) {
                (Some(allowed), _) => allowed.clone(),
                (None, ColumnType::Bool) => vec!["false".into(), "true".into()],
                (None, _) => {
                    let mut seen: Vec<String> = rows.iter().filter_map(|r| label_of(&r[column])).collect();
                    seen.sort();
                    seen.dedup();
                    seen
                }
            };
            Target::Classes { column: name, labels }
        };
        Ok((target, column))
    }

    /// The training label of a value: its class index, or the number; `None` for a null or a
    /// label not among the classes.
    pub fn encode(&self, value: &Value) -> Option<f64> {
        match self {
            Target::Classes { labels, .. } => {
                let label = label_of(value)?;
                labels.iter().position(|l| *l == label).map(|i| i as f64)
            }
            Target::Number { .. } => value.as_f64(),
        }
    }
}

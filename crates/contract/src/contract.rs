//! Data contracts: the columns of a dataset, their types and rules.

use std::collections::HashSet;
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// A dataset's contract, read from YAML.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Contract {
    /// Dataset name; also the folder under `raw/` that feeds it.
    pub dataset: String,
    /// Contract version, recorded with every batch and model.
    #[serde(default = "default_version")]
    pub version: u32,
    /// The label column, if the dataset carries one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target: Option<String>,
    /// The model's input columns, in the order the model expects them.
    #[serde(default)]
    pub features: Vec<String>,
    /// A timestamp column giving each row's event time; curated rows are partitioned by its
    /// date (rows without one go to the ingest date).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub event_time: Option<String>,
    /// A column naming each row (an order number, a customer id): predict captures it as the
    /// inference id, and ground truth of another dataset joins on it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// Every column of the dataset.
    pub columns: Vec<Column>,
    /// How the dataset's CSV files are written.
    #[serde(default, skip_serializing_if = "CsvFormat::is_default")]
    pub csv: CsvFormat,
}

fn default_version() -> u32 {
    1
}

/// The dialect of a dataset's CSV files.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CsvFormat {
    /// The field delimiter, one ASCII character (`,` by default; `;` and tab are common).
    #[serde(default = "default_delimiter")]
    pub delimiter: char,
    /// Whether files start with a header line; without one, columns come in contract order.
    #[serde(default = "default_header")]
    pub header: bool,
    /// Field texts read as a missing value, beside the empty field (pandas writes `NA` or
    /// `NaN`; others write `null` or `N/A`). Compared after trimming, case included.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub null_values: Vec<String>,
    /// Whether an int column takes a whole number written as a float (`4.0`, `-2.`, `1e3`),
    /// as pandas writes an integer column that has gaps.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub whole_floats: bool,
}

fn default_delimiter() -> char {
    ','
}

fn default_header() -> bool {
    true
}

impl Default for CsvFormat {
    fn default() -> Self {
        CsvFormat {
            delimiter: default_delimiter(),
            header: default_header(),
            null_values: Vec::new(),
            whole_floats: false,
        }
    }
}

impl CsvFormat {
    fn is_default(&self) -> bool {
        *self == CsvFormat::default()
    }

    /// Whether a (trimmed) field text stands for a missing value.
    pub fn is_null(&self, text: &str) -> bool {
        text.is_empty() || self.null_values.iter().any(|n| n == text)
    }
}

/// One column of a contract.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Column {
    pub name: String,
    #[serde(rename = "type")]
    pub kind: ColumnType,
    /// Whether an empty value is allowed.
    #[serde(default)]
    pub nullable: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max: Option<f64>,
    /// The only values a category or string column may take.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub allowed: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
}

/// The type of a column's values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ColumnType {
    Float,
    Int,
    Bool,
    Category,
    String,
    Timestamp,
}

impl ColumnType {
    /// Whether values of this type are numbers (and so take min/max and histograms).
    pub fn is_numeric(self) -> bool {
        matches!(self, ColumnType::Float | ColumnType::Int)
    }

    pub fn name(self) -> &'static str {
        match self {
            ColumnType::Float => "float",
            ColumnType::Int => "int",
            ColumnType::Bool => "bool",
            ColumnType::Category => "category",
            ColumnType::String => "string",
            ColumnType::Timestamp => "timestamp",
        }
    }
}

impl Contract {
    /// Reads and checks a contract file.
    pub fn load(path: &Path) -> Result<Contract> {
        let text =
            std::fs::read_to_string(path).map_err(|e| Error::Read { path: path.display().to_string(), source: e })?;
        Contract::from_yaml(&text, &path.display().to_string())
    }

    /// Parses and checks a contract; `file` names the source in error messages.
    pub fn from_yaml(text: &str, file: &str) -> Result<Contract> {
        let contract: Contract = serde_norway::from_str(text).map_err(|e| Error::Invalid {
            file: file.to_string(),
            message: match e.location() {
                Some(loc) => format!("line {}, column {}: {e}", loc.line(), loc.column()),
                None => e.to_string(),
            },
        })?;
        contract.check().map_err(|message| Error::Invalid { file: file.to_string(), message })?;
        Ok(contract)
    }

    /// Serialises the contract back to YAML.
    pub fn to_yaml(&self) -> String {
        // A contract holds only strings, numbers and lists; serialising it cannot fail.
        serde_norway::to_string(self).unwrap_or_default()
    }

    /// Looks a column up by name.
    pub fn column(&self, name: &str) -> Option<&Column> {
        self.columns.iter().find(|c| c.name == name)
    }

    /// The position among the columns of each feature, in model order (a feature the contract
    /// does not declare is left out; `check` refuses such contracts).
    pub fn feature_positions(&self) -> Vec<usize> {
        self.features.iter().filter_map(|f| self.columns.iter().position(|c| &c.name == f)).collect()
    }

    /// The feature columns in model order.
    pub fn feature_columns(&self) -> impl Iterator<Item = &Column> {
        self.features.iter().filter_map(|f| self.column(f))
    }

    /// The contract of the model's inputs alone: the feature columns in feature order, without
    /// target, id or event time. Rows read against it hold exactly what a model is scored on,
    /// in the order predict's validation yields them.
    pub fn features_only(&self) -> Contract {
        Contract {
            target: None,
            event_time: None,
            id: None,
            columns: self.feature_columns().cloned().collect(),
            ..self.clone()
        }
    }

    fn check(&self) -> std::result::Result<(), String> {
        if !is_path_segment(&self.dataset) {
            return Err(format!(
                "dataset name {:?} must be non-empty and use only letters, digits, '-', '_' and '.'",
                self.dataset
            ));
        }
        if self.columns.is_empty() {
            return Err("no columns are declared".into());
        }
        let mut seen = HashSet::new();
        for column in &self.columns {
            if column.name.trim().is_empty() {
                return Err("a column has an empty name".into());
            }
            if !seen.insert(column.name.as_str()) {
                return Err(format!("column {:?} is declared twice", column.name));
            }
            column.check().map_err(|rule| format!("column {:?}: {rule}", column.name))?;
        }
        if let Some(target) = &self.target
            && self.column(target).is_none()
        {
            return Err(format!("target {target:?} is not a declared column"));
        }
        if let Some(name) = &self.event_time {
            match self.column(name) {
                None => return Err(format!("event_time {name:?} is not a declared column")),
                Some(c) if c.kind != ColumnType::Timestamp => {
                    return Err(format!("event_time {name:?} must be a timestamp column, not {}", c.kind.name()));
                }
                Some(_) => {}
            }
        }
        if let Some(id) = &self.id {
            if self.column(id).is_none() {
                return Err(format!("id {id:?} is not a declared column"));
            }
            if self.features.contains(id) || self.target.as_ref() == Some(id) {
                return Err(format!("id {id:?} must be neither a feature nor the target"));
            }
        }
        if !self.csv.delimiter.is_ascii() || matches!(self.csv.delimiter, '"' | '\n' | '\r') {
            return Err(format!(
                "csv.delimiter {:?} must be one ASCII character other than a quote or newline",
                self.csv.delimiter
            ));
        }
        let mut seen = HashSet::new();
        for feature in &self.features {
            if self.column(feature).is_none() {
                return Err(format!("feature {feature:?} is not a declared column"));
            }
            if !seen.insert(feature.as_str()) {
                return Err(format!("feature {feature:?} is listed twice"));
            }
            if Some(feature) == self.target.as_ref() {
                return Err(format!("feature {feature:?} is also the target"));
            }
        }
        Ok(())
    }
}

impl Column {
    fn check(&self) -> std::result::Result<(), String> {
        if (self.min.is_some() || self.max.is_some()) && !self.kind.is_numeric() {
            return Err(format!("min/max apply to float and int columns, not {}", self.kind.name()));
        }
        for (rule, bound) in [("min", self.min), ("max", self.max)] {
            if bound.is_some_and(|b| !b.is_finite()) {
                return Err(format!("{rule} must be a finite number"));
            }
        }
        if let (Some(min), Some(max)) = (self.min, self.max)
            && min > max
        {
            return Err(format!("min {min} is greater than max {max}"));
        }
        if let Some(allowed) = &self.allowed {
            if !matches!(self.kind, ColumnType::Category | ColumnType::String) {
                return Err(format!("allowed values apply to category and string columns, not {}", self.kind.name()));
            }
            if allowed.is_empty() {
                return Err("allowed is an empty list".into());
            }
        }
        Ok(())
    }
}

/// Whether `s` can stand alone as one segment of an S3 key.
pub fn is_path_segment(s: &str) -> bool {
    !s.is_empty()
        && s != "."
        && s != ".."
        && s.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = "dataset: d\nfeatures: [x]\ncolumns:\n  - {name: x, type: float, min: 0, max: 1}\n  - {name: y, type: category, allowed: [a, b]}\n";

    #[test]
    fn reads_a_contract() {
        let c = Contract::from_yaml(GOOD, "c.yaml").expect("valid contract");
        assert_eq!(c.dataset, "d");
        assert_eq!(c.version, 1);
        assert_eq!(c.feature_columns().count(), 1);
        assert!(!c.column("x").expect("x").nullable);
    }

    #[test]
    fn round_trips_through_yaml() {
        let c = Contract::from_yaml(GOOD, "c.yaml").expect("valid contract");
        let again = Contract::from_yaml(&c.to_yaml(), "again.yaml").expect("round trip");
        assert_eq!(c, again);
    }

    fn error_of(yaml: &str) -> String {
        Contract::from_yaml(yaml, "bad.yaml").expect_err("contract must be rejected").to_string()
    }

    #[test]
    fn errors_name_file_column_and_rule() {
        let e = error_of("dataset: d\ncolumns:\n  - {name: x, type: float, min: 5, max: 1}\n");
        assert_eq!(e, "contract bad.yaml: column \"x\": min 5 is greater than max 1");
        let e = error_of("dataset: d\ncolumns:\n  - {name: x, type: category, min: 1}\n");
        assert!(e.contains("column \"x\": min/max apply to float and int columns"), "{e}");
        let e = error_of("dataset: d\nfeatures: [z]\ncolumns:\n  - {name: x, type: int}\n");
        assert!(e.contains("feature \"z\" is not a declared column"), "{e}");
        let e = error_of("dataset: d\ncolumns:\n  - {name: x, type: decimal}\n");
        assert!(e.starts_with("contract bad.yaml: line 3"), "{e}");
        assert!(e.contains("decimal"), "{e}");
        let e = error_of("dataset: ../etc\ncolumns:\n  - {name: x, type: int}\n");
        assert!(e.contains("dataset name"), "{e}");
        let e = error_of("dataset: d\ncolumns:\n  - {name: x, type: int}\n  - {name: x, type: int}\n");
        assert!(e.contains("declared twice"), "{e}");
    }
}

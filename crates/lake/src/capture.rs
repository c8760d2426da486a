//! Data capture: what predict answered, one JSON line per instance, delivered by Amazon Data
//! Firehose under `capture/<model>/dt=YYYY-MM-DD/`.
//!
//! A line holds the instance's values under the contract's column names, typed as the
//! contract types them, so that the rows reader takes a capture file as it takes any JSON
//! Lines batch of the dataset; beside them, `capture` (when, which request, which model
//! version and variant, and the inference id that ground truth joins on) and `prediction`
//! (the scorer's outputs for the row). A contract column named `capture` or `prediction` is
//! shadowed by them.

use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// Where a capture line came from.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CaptureMeta {
    pub at: DateTime<Utc>,
    pub request_id: String,
    /// The key ground truth joins on: the value of the contract's id column when the instance
    /// has one, otherwise `<request_id>:<index of the instance>`.
    pub inference_id: String,
    pub model: String,
    pub model_version: u32,
    pub variant: String,
}

/// One captured instance.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CaptureLine {
    pub capture: CaptureMeta,
    pub prediction: Map<String, Value>,
    /// The instance's values, by contract column name.
    #[serde(flatten)]
    pub values: Map<String, Value>,
}

/// The inference id of instance `index` of a request without an id column.
pub fn inference_id(request_id: &str, index: usize) -> String {
    format!("{request_id}:{index}")
}

/// The prefix of a model's captures.
pub fn prefix(model: &str) -> String {
    format!("capture/{model}/")
}

/// The day of a capture key (`capture/<model>/dt=YYYY-MM-DD/…`).
pub fn day_of(model: &str, key: &str) -> Option<NaiveDate> {
    let rest = key.strip_prefix(&prefix(model))?;
    let day = rest.split('/').next()?.strip_prefix("dt=")?;
    NaiveDate::parse_from_str(day, "%Y-%m-%d").ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_line_round_trips_with_its_values_flat() {
        let text = r#"{"island":"Biscoe","bill_length_mm":45.1,"capture":{"at":"2026-12-01T10:00:00Z","request_id":"r1","inference_id":"r1:0","model":"penguins","model_version":2,"variant":"champion"},"prediction":{"class":"Gentoo"}}"#;
        let line: CaptureLine = serde_json::from_str(text).expect("line");
        assert_eq!(line.capture.inference_id, "r1:0");
        assert_eq!(line.values["island"], "Biscoe");
        assert!(!line.values.contains_key("capture") && !line.values.contains_key("prediction"));
        let back: Value = serde_json::to_value(&line).expect("JSON");
        assert_eq!(back["bill_length_mm"], 45.1);
        assert_eq!(
            day_of("penguins", "capture/penguins/dt=2026-12-01/s-1.jsonl"),
            NaiveDate::from_ymd_opt(2026, 12, 1)
        );
        assert_eq!(day_of("penguins", "capture/other/dt=2026-12-01/s-1.jsonl"), None);
    }
}

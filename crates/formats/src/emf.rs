//! CloudWatch embedded metric format: one JSON log line that CloudWatch Logs turns into
//! metrics (<https://docs.aws.amazon.com/AmazonCloudWatch/latest/monitoring/CloudWatch_Embedded_Metric_Format_Specification.html>).

use chrono::{DateTime, Duration, Utc};
use serde_json::{Map, Value, json};
use sha2::{Digest, Sha256};

/// The longest dimension value written: CloudWatch takes 1,024 characters; names this long
/// are kept apart by the digest [`dimension_value`] appends.
pub const DIMENSION_CHARS: usize = 250;

/// A dimension value CloudWatch accepts: printable ASCII of at most [`DIMENSION_CHARS`]
/// characters, unchanged; any other text becomes its printable ASCII characters (others as
/// `_`), cut to 240, then `~` and 8 hex digits of the SHA-256 of the original, so that distinct
/// names stay distinct (`température_c` → `temp_rature_c~…`).
pub fn dimension_value(text: &str) -> String {
    let printable = |c: char| c.is_ascii() && !c.is_ascii_control();
    if text.len() <= DIMENSION_CHARS && !text.is_empty() && text.chars().all(printable) {
        return text.to_string();
    }
    let mapped: String = text.chars().map(|c| if printable(c) { c } else { '_' }).take(240).collect();
    let digest = hex::encode(&Sha256::digest(text.as_bytes())[..4]);
    format!("{mapped}~{digest}")
}

/// A timestamp CloudWatch keeps: metrics more than 14 days old or more than 2 hours ahead are
/// dropped, so such a time (a replayed event's) is replaced by `now`.
pub fn timestamp_ms(at: DateTime<Utc>, now: DateTime<Utc>) -> i64 {
    let keeps = at > now - Duration::days(14) + Duration::minutes(5) && at < now + Duration::hours(2);
    if keeps { at.timestamp_millis() } else { now.timestamp_millis() }
}

/// One metric of a line: its name, CloudWatch unit and value.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Metric<'a> {
    pub name: &'a str,
    pub unit: &'a str,
    pub value: f64,
}

/// An EMF line in `namespace` at `timestamp_ms`, with one dimension set (`dimensions`, whose
/// values become properties of the line, through [`dimension_value`]), the metrics, and
/// further properties that are logged but are not dimensions.
pub fn line(
    namespace: &str,
    timestamp_ms: i64,
    dimensions: &[(&str, &str)],
    metrics: &[Metric<'_>],
    properties: &[(&str, Value)],
) -> String {
    let mut root = Map::new();
    root.insert(
        "_aws".into(),
        json!({"Timestamp": timestamp_ms, "CloudWatchMetrics": [{
            "Namespace": namespace,
            "Dimensions": [dimensions.iter().map(|(k, _)| *k).collect::<Vec<_>>()],
            "Metrics": metrics.iter().map(|m| json!({"Name": m.name, "Unit": m.unit})).collect::<Vec<_>>(),
        }]}),
    );
    for (k, v) in dimensions {
        root.insert((*k).into(), Value::from(dimension_value(v)));
    }
    for (k, v) in properties {
        root.insert((*k).into(), v.clone());
    }
    for m in metrics {
        // Counts are written as integers, other values as they are.
        let value =
            if m.value.fract() == 0.0 && m.value.abs() < 9.0e15 { json!(m.value as i64) } else { json!(m.value) };
        root.insert(m.name.into(), value);
    }
    Value::Object(root).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_line_names_its_dimensions_and_metrics() {
        let text = line(
            "NS",
            5,
            &[("Dataset", "d")],
            &[Metric { name: "Rows", unit: "Count", value: 3.0 }],
            &[("ModelVersion", json!(2))],
        );
        let v: Value = serde_json::from_str(&text).expect("JSON");
        assert_eq!(v["_aws"]["CloudWatchMetrics"][0]["Dimensions"], json!([["Dataset"]]));
        assert_eq!(v["_aws"]["CloudWatchMetrics"][0]["Metrics"], json!([{"Name": "Rows", "Unit": "Count"}]));
        assert_eq!(v["Dataset"], "d");
        assert_eq!(v["Rows"], 3, "whole numbers are written as integers");
        assert_eq!(v["ModelVersion"], 2);
        assert_eq!(v["_aws"]["Timestamp"], 5);
    }

    #[test]
    fn dimension_values_are_printable_ascii_bounded_and_distinct() {
        assert_eq!(dimension_value("bill_length_mm"), "bill_length_mm");
        let accented = dimension_value("température_c");
        assert!(accented.starts_with("temp_rature_c~") && accented.len() == "temp_rature_c~".len() + 8, "{accented}");
        assert_ne!(accented, dimension_value("tempérâture_c"));
        for text in ["", "a\tb", &"x".repeat(300), &"é".repeat(2000), "日本語"] {
            let v = dimension_value(text);
            assert!(!v.is_empty() && v.len() <= DIMENSION_CHARS, "{v}");
            assert!(v.chars().all(|c| c.is_ascii() && !c.is_ascii_control()), "{v}");
        }
        let line: Value =
            serde_json::from_str(&line("NS", 1, &[("Feature", "température_c")], &[], &[])).expect("JSON");
        assert_eq!(line["Feature"], accented);
    }

    #[test]
    fn timestamps_stay_within_what_cloudwatch_keeps() {
        let now = DateTime::parse_from_rfc3339("2026-12-01T12:00:00Z").expect("time").to_utc();
        let recent = now - Duration::hours(3);
        assert_eq!(timestamp_ms(recent, now), recent.timestamp_millis());
        for dropped in [now - Duration::days(15), now - Duration::days(400), now + Duration::hours(3)] {
            assert_eq!(timestamp_ms(dropped, now), now.timestamp_millis(), "{dropped}");
        }
    }
}

//! CloudWatch embedded metric format: one JSON log line that CloudWatch Logs turns into
//! metrics (<https://docs.aws.amazon.com/AmazonCloudWatch/latest/monitoring/CloudWatch_Embedded_Metric_Format_Specification.html>).

use serde_json::{Map, Value, json};

/// One metric of a line: its name, CloudWatch unit and value.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Metric<'a> {
    pub name: &'a str,
    pub unit: &'a str,
    pub value: f64,
}

/// An EMF line in `namespace` at `timestamp_ms`, with one dimension set (`dimensions`, whose
/// values become properties of the line), the metrics, and further properties that are logged
/// but are not dimensions.
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
        root.insert((*k).into(), Value::from(*v));
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
}

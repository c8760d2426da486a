//! CloudWatch embedded metric format: one JSON log line that CloudWatch Logs turns into
//! metrics (<https://docs.aws.amazon.com/AmazonCloudWatch/latest/monitoring/CloudWatch_Embedded_Metric_Format_Specification.html>).
//!
//! Every emitter of the project (drift-check, model quality, predict) writes its lines with
//! [`line`] or [`line_of`], and every test checks them with [`validate`], which applies the
//! specification's rules and CloudWatch's limits on what it keeps.

use chrono::{DateTime, Duration, Utc};
use std::borrow::Cow;

use serde::ser::{Serialize, SerializeMap, Serializer};
use serde_json::Value;
use sha2::{Digest, Sha256};

/// The longest dimension value written: CloudWatch takes 1,024 characters; names this long
/// are kept apart by the digest [`dimension_value`] appends.
pub const DIMENSION_CHARS: usize = 250;

/// A dimension value CloudWatch accepts: printable ASCII of at most [`DIMENSION_CHARS`]
/// characters, unchanged; any other text becomes its printable ASCII characters (others as
/// `_`), cut to 240, then `~` and 8 hex digits of the SHA-256 of the original, so that distinct
/// names stay distinct (`température_c` → `temp_rature_c~…`).
pub fn dimension_value(text: &str) -> Cow<'_, str> {
    let printable = |c: char| c.is_ascii() && !c.is_ascii_control();
    if text.len() <= DIMENSION_CHARS && !text.is_empty() && text.chars().all(printable) {
        return Cow::Borrowed(text);
    }
    let mapped: String = text.chars().map(|c| if printable(c) { c } else { '_' }).take(240).collect();
    let digest = hex::encode(&Sha256::digest(text.as_bytes())[..4]);
    Cow::Owned(format!("{mapped}~{digest}"))
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

/// A metric with several values in one line (at most [`MAX_VALUES`]; CloudWatch keeps each
/// as a sample, so percentiles of them can be graphed and alarmed on).
#[derive(Debug, Clone, PartialEq)]
pub struct Samples<'a> {
    pub name: &'a str,
    pub unit: &'a str,
    pub values: Vec<f64>,
}

/// Most values one metric may carry in a line.
pub const MAX_VALUES: usize = 100;
/// Most metrics one directive may define.
pub const MAX_METRICS: usize = 100;
/// Most dimensions one dimension set may name.
pub const MAX_DIMENSIONS: usize = 30;
/// The units CloudWatch takes (`StandardUnit`).
pub const UNITS: &[&str] = &[
    "Seconds",
    "Microseconds",
    "Milliseconds",
    "Bytes",
    "Kilobytes",
    "Megabytes",
    "Gigabytes",
    "Terabytes",
    "Bits",
    "Kilobits",
    "Megabits",
    "Gigabits",
    "Terabits",
    "Percent",
    "Count",
    "Bytes/Second",
    "Kilobytes/Second",
    "Megabytes/Second",
    "Gigabytes/Second",
    "Terabytes/Second",
    "Bits/Second",
    "Kilobits/Second",
    "Megabits/Second",
    "Gigabits/Second",
    "Terabits/Second",
    "Count/Second",
    "None",
];

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
    line_of(namespace, timestamp_ms, dimensions, metrics, &[], properties)
}

/// [`line`] with metrics of several values as well (each cut to [`MAX_VALUES`]).
///
/// The line is serialised straight from the arguments, without a JSON tree: predict writes
/// one per request. A member named twice is written once, with the last value given (metrics
/// over properties over dimensions), as a JSON object would keep it.
pub fn line_of(
    namespace: &str,
    timestamp_ms: i64,
    dimensions: &[(&str, &str)],
    metrics: &[Metric<'_>],
    samples: &[Samples<'_>],
    properties: &[(&str, Value)],
) -> String {
    let root = Root { namespace, timestamp_ms, dimensions, metrics, samples, properties };
    // Serialising strings, numbers and JSON values into a String cannot fail.
    serde_json::to_string(&root).unwrap_or_default()
}

/// The members of one line, in the order they are written.
struct Root<'a> {
    namespace: &'a str,
    timestamp_ms: i64,
    dimensions: &'a [(&'a str, &'a str)],
    metrics: &'a [Metric<'a>],
    samples: &'a [Samples<'a>],
    properties: &'a [(&'a str, Value)],
}

impl Root<'_> {
    /// The names of the root's members, in order: `_aws`, then the dimensions, the properties,
    /// the metrics and the samples.
    fn names(&self) -> impl Iterator<Item = &str> {
        std::iter::once("_aws")
            .chain(self.dimensions.iter().map(|(k, _)| *k))
            .chain(self.properties.iter().map(|(k, _)| *k))
            .chain(self.metrics.iter().map(|m| m.name))
            .chain(self.samples.iter().map(|m| m.name))
    }

    /// Whether the member at `at` (in [`Root::names`] order) is named again later.
    fn named_again(&self, at: usize, name: &str) -> bool {
        self.names().skip(at + 1).any(|later| later == name)
    }
}

impl Serialize for Root<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(None)?;
        let mut at = 0;
        let mut keep = |name: &str| {
            let kept = !self.named_again(at, name);
            at += 1;
            kept
        };
        if keep("_aws") {
            map.serialize_entry("_aws", &Aws(self))?;
        }
        for (k, v) in self.dimensions {
            if keep(k) {
                map.serialize_entry(k, &dimension_value(v))?;
            }
        }
        for (k, v) in self.properties {
            if keep(k) {
                map.serialize_entry(k, v)?;
            }
        }
        for m in self.metrics {
            if keep(m.name) {
                map.serialize_entry(m.name, &Number(m.value))?;
            }
        }
        for m in self.samples {
            if keep(m.name) {
                map.serialize_entry(m.name, &Values(&m.values))?;
            }
        }
        map.end()
    }
}

/// The `_aws` member: the timestamp and the one directive.
struct Aws<'a>(&'a Root<'a>);

impl Serialize for Aws<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let root = self.0;
        let mut map = serializer.serialize_map(Some(2))?;
        map.serialize_entry("Timestamp", &root.timestamp_ms)?;
        map.serialize_entry("CloudWatchMetrics", &[Directive(root)])?;
        map.end()
    }
}

/// The directive: the namespace, the one dimension set and the metric definitions.
struct Directive<'a>(&'a Root<'a>);

impl Serialize for Directive<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let root = self.0;
        let mut map = serializer.serialize_map(Some(3))?;
        map.serialize_entry("Namespace", root.namespace)?;
        map.serialize_entry("Dimensions", &[DimensionNames(root.dimensions)])?;
        map.serialize_entry("Metrics", &Definitions(root))?;
        map.end()
    }
}

/// The one dimension set: the dimensions' names.
struct DimensionNames<'a>(&'a [(&'a str, &'a str)]);

impl Serialize for DimensionNames<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_seq(self.0.iter().map(|(k, _)| k))
    }
}

/// The metric definitions: the metrics', then the samples'.
struct Definitions<'a>(&'a Root<'a>);

impl Serialize for Definitions<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let root = self.0;
        let metrics = root.metrics.iter().map(|m| (m.name, m.unit));
        let samples = root.samples.iter().map(|m| (m.name, m.unit));
        serializer.collect_seq(metrics.chain(samples).map(|(name, unit)| Definition { name, unit }))
    }
}

#[derive(serde::Serialize)]
struct Definition<'a> {
    #[serde(rename = "Name")]
    name: &'a str,
    #[serde(rename = "Unit")]
    unit: &'a str,
}

/// The values of a [`Samples`], the first [`MAX_VALUES`] of them.
struct Values<'a>(&'a [f64]);

impl Serialize for Values<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_seq(self.0.iter().take(MAX_VALUES).map(|v| Number(*v)))
    }
}

/// A metric value: counts are written as integers, other values as they are (a value that
/// is not finite as `null`, as serde_json writes it).
struct Number(f64);

impl Serialize for Number {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let value = self.0;
        if value.fract() == 0.0 && value.abs() < 9.0e15 {
            serializer.serialize_i64(value as i64)
        } else {
            serializer.serialize_f64(value)
        }
    }
}

/// Checks one log line against the embedded metric format specification and the limits of
/// what CloudWatch keeps, as of `now`; the error names the first rule broken.
///
/// The rules: the line is one JSON object whose `_aws` member holds a `Timestamp` (whole
/// milliseconds, within the 14 days before and 2 hours after `now`) and a non-empty
/// `CloudWatchMetrics` array of directives. Each directive has a `Namespace` (1–255
/// characters, not starting with `AWS/`), `Dimensions` (an array of dimension sets, each an
/// array of at most 30 names) and `Metrics` (at most 100 definitions, each with a `Name`, a
/// `Unit` from CloudWatch's list if any, and a `StorageResolution` of 1 or 60 if any; no name
/// twice). Every name a directive refers to is a member of the root: a dimension's value is a
/// string of 1–1,024 printable ASCII characters not starting with `:` (names likewise, at most
/// 250), and a metric's value is a number or an array of at most 100 numbers.
pub fn validate(line: &str, now: DateTime<Utc>) -> Result<(), String> {
    let root: Value = serde_json::from_str(line).map_err(|e| format!("not one JSON object: {e}"))?;
    let root = root.as_object().ok_or("the line is not a JSON object")?;
    let aws = root.get("_aws").and_then(Value::as_object).ok_or("no _aws object")?;
    let timestamp = aws.get("Timestamp").and_then(Value::as_i64).ok_or("_aws.Timestamp is not whole milliseconds")?;
    let at = DateTime::<Utc>::from_timestamp_millis(timestamp).ok_or("_aws.Timestamp is out of range")?;
    if at < now - Duration::days(14) || at > now + Duration::hours(2) {
        return Err(format!("_aws.Timestamp {at} is outside the 14 days before and 2 hours after {now}"));
    }
    let directives = aws.get("CloudWatchMetrics").and_then(Value::as_array).ok_or("no _aws.CloudWatchMetrics array")?;
    if directives.is_empty() {
        return Err("_aws.CloudWatchMetrics is empty".into());
    }
    let ascii = |s: &str, max: usize| {
        !s.is_empty()
            && s.chars().count() <= max
            && !s.starts_with(':')
            && s.chars().all(|c| c.is_ascii() && !c.is_ascii_control())
    };
    for (i, d) in directives.iter().enumerate() {
        let at = format!("CloudWatchMetrics[{i}]");
        let namespace = d.get("Namespace").and_then(Value::as_str).ok_or(format!("{at}.Namespace is not a string"))?;
        if namespace.is_empty()
            || namespace.chars().count() > 255
            || namespace.starts_with("AWS/")
            || !ascii(namespace, 255)
        {
            return Err(format!("{at}.Namespace {namespace:?} is not a namespace CloudWatch takes"));
        }
        let sets = d.get("Dimensions").and_then(Value::as_array).ok_or(format!("{at}.Dimensions is not an array"))?;
        for (j, set) in sets.iter().enumerate() {
            let set = set.as_array().ok_or(format!("{at}.Dimensions[{j}] is not an array"))?;
            if set.len() > MAX_DIMENSIONS {
                return Err(format!("{at}.Dimensions[{j}] names {} dimensions (at most {MAX_DIMENSIONS})", set.len()));
            }
            for name in set {
                let name = name.as_str().ok_or(format!("{at}.Dimensions[{j}] holds a non-string"))?;
                if !ascii(name, 250) {
                    return Err(format!("dimension name {name:?} is not 1-250 printable ASCII characters"));
                }
                let value = root.get(name).ok_or(format!("dimension {name} is not a member of the root"))?;
                let value = value.as_str().ok_or(format!("dimension {name} is not a string"))?;
                if !ascii(value, 1024) {
                    return Err(format!("dimension {name} = {value:?} is not 1-1024 printable ASCII characters"));
                }
            }
        }
        let metrics = d.get("Metrics").and_then(Value::as_array).ok_or(format!("{at}.Metrics is not an array"))?;
        if metrics.len() > MAX_METRICS {
            return Err(format!("{at}.Metrics defines {} metrics (at most {MAX_METRICS})", metrics.len()));
        }
        let mut seen = std::collections::BTreeSet::new();
        for m in metrics {
            let name = m.get("Name").and_then(Value::as_str).ok_or(format!("{at}: a metric has no Name"))?;
            if name.is_empty() || name.chars().count() > 1024 || !seen.insert(name) {
                return Err(format!("{at}: metric name {name:?} is empty, too long or defined twice"));
            }
            if let Some(unit) = m.get("Unit")
                && !unit.as_str().is_some_and(|u| UNITS.contains(&u))
            {
                return Err(format!("metric {name}: unit {unit} is not one CloudWatch takes"));
            }
            if let Some(r) = m.get("StorageResolution")
                && !matches!(r.as_i64(), Some(1 | 60))
            {
                return Err(format!("metric {name}: StorageResolution {r} is neither 1 nor 60"));
            }
            match root.get(name) {
                Some(Value::Number(_)) => {}
                Some(Value::Array(values)) if values.len() <= MAX_VALUES && values.iter().all(Value::is_number) => {}
                Some(other) => {
                    return Err(format!("metric {name} = {other} is not a number or up to {MAX_VALUES} numbers"));
                }
                None => return Err(format!("metric {name} is not a member of the root")),
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

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
    fn a_member_named_twice_is_written_once_with_its_last_value() {
        let text = line_of(
            "NS",
            5,
            &[("Rows", "a dimension"), ("Model", "m")],
            &[Metric { name: "Rows", unit: "Count", value: 3.0 }, Metric { name: "Score", unit: "None", value: 0.5 }],
            &[Samples { name: "Score", unit: "None", values: vec![1.5, 2.0] }],
            &[("Model", json!("a property"))],
        );
        for (member, value) in [("Rows", "3"), ("Model", "\"a property\""), ("Score", "[1.5,2]")] {
            let key = format!("\"{member}\":");
            assert_eq!(text.matches(&key).count(), 1, "{member} once in {text}");
            assert!(text.contains(&format!("{key}{value}")), "{member} = {value} in {text}");
        }
        let v: Value = serde_json::from_str(&text).expect("JSON");
        assert_eq!(v["_aws"]["CloudWatchMetrics"][0]["Dimensions"], json!([["Rows", "Model"]]));
    }

    #[test]
    fn values_that_are_not_whole_or_not_finite_are_written_as_serde_json_writes_them() {
        let metric = |name, value| Metric { name, unit: "None", value };
        let text =
            line("NS", 5, &[], &[metric("a", 0.25), metric("b", f64::NAN), metric("c", -2.0), metric("d", 1e17)], &[]);
        let v: Value = serde_json::from_str(&text).expect("JSON");
        assert_eq!((&v["a"], &v["b"], &v["c"], &v["d"]), (&json!(0.25), &Value::Null, &json!(-2), &json!(1e17)));
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
        assert_eq!(line["Feature"], *accented);
    }

    #[test]
    fn validation_applies_the_specification_rules() {
        let now = Utc::now();
        let ts = now.timestamp_millis();
        let good = line_of(
            "NS",
            ts,
            &[("Feature", "température_c")],
            &[Metric { name: "Rows", unit: "Count", value: 3.0 }],
            &[Samples { name: "Latency", unit: "Milliseconds", values: (0..150).map(f64::from).collect() }],
            &[],
        );
        validate(&good, now).expect("a line of ours is valid");
        let v: Value = serde_json::from_str(&good).expect("JSON");
        assert_eq!(v["Latency"].as_array().map(Vec::len), Some(MAX_VALUES));
        let broken = [
            (
                json!({"_aws": {"Timestamp": ts, "CloudWatchMetrics": [{"Namespace": "NS", "Dimensions": [["F"]], "Metrics": []}]}, "F": "temp\u{e9}"}),
                "ASCII",
            ),
            (
                json!({"_aws": {"Timestamp": ts, "CloudWatchMetrics": [{"Namespace": "NS", "Dimensions": [["F"]], "Metrics": []}]}}),
                "member",
            ),
            (
                json!({"_aws": {"Timestamp": ts - 15 * 86_400_000, "CloudWatchMetrics": [{"Namespace": "NS", "Dimensions": [], "Metrics": []}]}}),
                "14 days",
            ),
            (
                json!({"_aws": {"Timestamp": ts, "CloudWatchMetrics": [{"Namespace": "NS", "Dimensions": [], "Metrics": [{"Name": "M", "Unit": "Widgets"}]}]}, "M": 1}),
                "unit",
            ),
            (
                json!({"_aws": {"Timestamp": ts, "CloudWatchMetrics": [{"Namespace": "NS", "Dimensions": [], "Metrics": [{"Name": "M"}]}]}, "M": "1"}),
                "not a number",
            ),
            (
                json!({"_aws": {"Timestamp": ts, "CloudWatchMetrics": [{"Namespace": "AWS/Lambda", "Dimensions": [], "Metrics": []}]}}),
                "Namespace",
            ),
            (
                json!({"_aws": {"Timestamp": ts, "CloudWatchMetrics": [{"Namespace": "NS", "Dimensions": [(0..31).map(|i| format!("d{i}")).collect::<Vec<_>>()], "Metrics": []}]}}),
                "at most 30",
            ),
        ];
        for (doc, says) in broken {
            let doc = doc.to_string();
            let e = validate(&doc, now).expect_err(&doc);
            assert!(e.contains(says), "{e} (expected {says:?})");
        }
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

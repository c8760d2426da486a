//! Reading `{"instances": [...]}` against the contract's features.

use axum::http::StatusCode;
use mlops_contract::json_row::{JsonKind, JsonRow, RowReader};
use mlops_contract::validate::{Value, bounded, check_json};
use mlops_contract::{Column, Contract};
use serde::Serialize;
use serde::de::{self, DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};

use crate::error::ApiError;

/// One problem with a request: where (a JSON path) and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Detail {
    pub path: String,
    pub reason: String,
}

/// Validated instances: per instance, the contract's feature values in feature order, and
/// the value of the contract's id column when the instance has one.
#[derive(Debug)]
pub struct Batch {
    pub rows: Vec<Vec<Value>>,
    pub ids: Vec<Option<String>>,
}

/// Most problems one 400 lists; a last detail counts the rest.
pub const MAX_DETAILS: usize = 20;

/// The problems of a request: the first [`MAX_DETAILS`], and how many more there were.
#[derive(Debug, Default)]
struct Details {
    listed: Vec<Detail>,
    more: usize,
}

impl Details {
    fn push(&mut self, detail: Detail) {
        if self.listed.len() < MAX_DETAILS {
            self.listed.push(detail);
        } else {
            self.more += 1;
        }
    }

    fn extend(&mut self, details: impl Iterator<Item = Detail>) {
        for d in details {
            self.push(d);
        }
    }
}

/// Parses and validates a request body. Every invalid field is reported, not only the first,
/// up to [`MAX_DETAILS`] of them with a count of the rest, so that an answer never outgrows the
/// request that caused it.
///
/// The body is walked once without being built as a JSON document: per instance only the
/// feature values are kept, and instances beyond `max_instances` are only counted. Memory per
/// request is then bounded by `max_instances` times the features, whatever the body holds.
pub fn parse(contract: &Contract, body: &[u8], max_instances: usize) -> Result<Batch, ApiError> {
    let bad = |message: &str| ApiError::new(StatusCode::BAD_REQUEST, message);
    let features: Vec<&Column> = contract.feature_columns().collect();
    let id_column = contract.id.as_deref().and_then(|id| contract.column(id));
    // The contract's other columns (target, id, event time) may come along; they are not
    // unknown, only not used. The id column is kept after the features, for the capture.
    let reader = RowReader::with_known(
        features.iter().copied().chain(id_column),
        contract.columns.iter().map(|c| c.name.as_str()),
    );
    let mut de = serde_json::Deserializer::from_slice(body);
    let parsed = BodySeed { reader: &reader, max_instances }
        .deserialize(&mut de)
        .and_then(|parsed| de.end().map(|()| parsed))
        .map_err(|e| bad(&format!("the body is not valid JSON: {e}")))?;
    let usage = "the body must be {\"instances\": [{feature: value, …}, …]} or {\"instance\": {feature: value, …}}";
    let (instances, count) = match parsed {
        Some(Body { instances: Some(Instances::List(list, count)), instance: None }) => (list, count),
        Some(Body { instances: Some(Instances::NotAList), instance: None }) => {
            return Err(bad("\"instances\" must be an array of objects"));
        }
        Some(Body { instances: None, instance: Some(one) }) => (vec![one], 1),
        _ => return Err(bad(usage)),
    };
    if count == 0 {
        return Err(bad("\"instances\" is empty"));
    }
    if count > max_instances {
        return Err(ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!("{count} instances exceed the limit of {max_instances} per request"),
        ));
    }
    // The message of an unknown field, made when the first one is met.
    let mut takes: Option<String> = None;
    let mut rows = Vec::with_capacity(instances.len());
    let mut ids = Vec::with_capacity(instances.len());
    let mut details = Details::default();
    for (i, instance) in instances.iter().enumerate() {
        let Ok(fields) = instance else {
            details
                .push(Detail { path: format!("instances[{i}]"), reason: "must be an object of feature values".into() });
            continue;
        };
        if !fields.unknown.is_empty() {
            let takes = takes.get_or_insert_with(|| {
                bounded(format!("unknown field; the model takes {}", contract.features.join(", ")))
            });
            details.extend(
                fields
                    .unknown
                    .iter()
                    .map(|name| Detail { path: format!("instances[{i}].{name}"), reason: takes.clone() }),
            );
        }
        details.more += fields.unknown_count - fields.unknown.len();
        let mut row = Vec::with_capacity(features.len());
        for (column, value) in features.iter().zip(&fields.values) {
            match check_json(column, value.as_ref().unwrap_or(&serde_json::Value::Null)) {
                Ok(v) => row.push(v),
                Err(reasons) => {
                    let path = format!("instances[{i}].{}", column.name);
                    details.extend(reasons.into_iter().map(|r| Detail {
                        path: path.clone(),
                        reason: if value.is_none() && r.rule == "nullable" {
                            "is required".to_string()
                        } else {
                            r.message
                        },
                    }));
                }
            }
        }
        rows.push(row);
        let id = id_column.zip(fields.values.get(features.len()).and_then(Option::as_ref));
        ids.push(match id {
            Some((column, value)) => match check_json(column, value) {
                Ok(Value::Null) => None,
                Ok(Value::Text(text)) => Some(text.into()),
                Ok(Value::Int(n)) => Some(n.to_string()),
                Ok(Value::Float(x)) => Some(x.to_string()),
                Ok(Value::Bool(b)) => Some(b.to_string()),
                Err(reasons) => {
                    let path = format!("instances[{i}].{}", column.name);
                    details.extend(reasons.into_iter().map(|r| Detail { path: path.clone(), reason: r.message }));
                    None
                }
            },
            None => None,
        });
    }
    if !details.listed.is_empty() {
        let mut e = bad("some instances are invalid");
        if details.more > 0 {
            details
                .listed
                .push(Detail { path: String::new(), reason: format!("{} more problems not listed", details.more) });
        }
        e.details = details.listed;
        return Err(e);
    }
    Ok(Batch { rows, ids })
}

/// What a request body held, as far as predict reads it.
struct Body {
    instances: Option<Instances>,
    instance: Option<Result<JsonRow, JsonKind>>,
}

enum Instances {
    /// The first `max_instances` instances, and how many there were in all.
    List(Vec<Result<JsonRow, JsonKind>>, usize),
    NotAList,
}

/// Reads a body: an object (`Some`) with `instances` or `instance`, other keys ignored.
struct BodySeed<'r, 'c> {
    reader: &'r RowReader<'c>,
    max_instances: usize,
}

impl<'de> DeserializeSeed<'de> for BodySeed<'_, '_> {
    type Value = Option<Body>;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Option<Body>, D::Error> {
        deserializer.deserialize_any(self)
    }
}

/// Visits a value that is not the shape wanted: drained, and answered with `$none`.
macro_rules! other_kinds {
    ($none:expr) => {
        fn visit_bool<E: de::Error>(self, _: bool) -> Result<Self::Value, E> {
            Ok($none)
        }
        fn visit_i64<E: de::Error>(self, _: i64) -> Result<Self::Value, E> {
            Ok($none)
        }
        fn visit_u64<E: de::Error>(self, _: u64) -> Result<Self::Value, E> {
            Ok($none)
        }
        fn visit_f64<E: de::Error>(self, _: f64) -> Result<Self::Value, E> {
            Ok($none)
        }
        fn visit_str<E: de::Error>(self, _: &str) -> Result<Self::Value, E> {
            Ok($none)
        }
        fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
            Ok($none)
        }
    };
}

impl<'de> Visitor<'de> for BodySeed<'_, '_> {
    type Value = Option<Body>;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("a JSON object")
    }

    other_kinds!(None);

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Option<Body>, A::Error> {
        while seq.next_element::<IgnoredAny>()?.is_some() {}
        Ok(None)
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Option<Body>, A::Error> {
        let mut body = Body { instances: None, instance: None };
        while let Some(key) = map.next_key::<TopKey>()? {
            match key {
                TopKey::Instances => {
                    body.instances =
                        Some(map.next_value_seed(InstancesSeed {
                            reader: self.reader,
                            max_instances: self.max_instances,
                        })?);
                }
                TopKey::Instance => body.instance = Some(map.next_value_seed(self.reader.seed())?),
                TopKey::Other => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        Ok(Some(body))
    }
}

/// A top-level key of a body, read without copying it.
enum TopKey {
    Instances,
    Instance,
    Other,
}

impl<'de> serde::Deserialize<'de> for TopKey {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<TopKey, D::Error> {
        struct KeyVisitor;
        impl Visitor<'_> for KeyVisitor {
            type Value = TopKey;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a key")
            }
            fn visit_str<E: de::Error>(self, key: &str) -> Result<TopKey, E> {
                Ok(match key {
                    "instances" => TopKey::Instances,
                    "instance" => TopKey::Instance,
                    _ => TopKey::Other,
                })
            }
        }
        deserializer.deserialize_str(KeyVisitor)
    }
}

struct InstancesSeed<'r, 'c> {
    reader: &'r RowReader<'c>,
    max_instances: usize,
}

impl<'de> DeserializeSeed<'de> for InstancesSeed<'_, '_> {
    type Value = Instances;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Instances, D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for InstancesSeed<'_, '_> {
    type Value = Instances;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("an array of objects")
    }

    other_kinds!(Instances::NotAList);

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Instances, A::Error> {
        while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
        Ok(Instances::NotAList)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Instances, A::Error> {
        let mut list = Vec::new();
        let mut count = 0;
        while count < self.max_instances {
            match seq.next_element_seed(self.reader.seed())? {
                Some(instance) => list.push(instance),
                None => return Ok(Instances::List(list, count)),
            }
            count += 1;
        }
        // Instances beyond the limit are only counted, for the answer.
        while seq.next_element::<IgnoredAny>()?.is_some() {
            count += 1;
        }
        Ok(Instances::List(list, count))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn contract() -> Contract {
        Contract::from_yaml(
            "dataset: d\nfeatures: [a, b]\ncolumns:\n  - {name: a, type: float, max: 10}\n  - {name: b, type: int, nullable: true}\n  - {name: label, type: category}\n",
            "t.yaml",
        )
        .expect("contract")
    }

    #[test]
    fn builds_the_feature_matrix_in_contract_order() {
        let batch =
            parse(&contract(), br#"{"instances":[{"b":2,"a":1.5},{"a":3,"b":null,"label":"x"}]}"#, 10).expect("valid");
        assert_eq!(batch.rows, [vec![Value::Float(1.5), Value::Int(2)], vec![Value::Float(3.0), Value::Null]]);
    }

    #[test]
    fn reports_every_problem_with_its_path() {
        let e =
            parse(&contract(), br#"{"instances":[{"a":"x","zzz":1},{"a":11},{"b":1},7]}"#, 10).expect_err("invalid");
        assert_eq!(e.status, StatusCode::BAD_REQUEST);
        let paths: Vec<(&str, &str)> = e.details.iter().map(|d| (d.path.as_str(), d.reason.as_str())).collect();
        assert_eq!(
            paths,
            [
                ("instances[0].zzz", "unknown field; the model takes a, b"),
                ("instances[0].a", "a: expected a number, got a string"),
                ("instances[1].a", "a: 11 is above the maximum 10"),
                ("instances[2].a", "is required"),
                ("instances[3]", "must be an object of feature values"),
            ]
        );
    }

    #[test]
    fn bounds_the_details_whatever_the_request() {
        let keys: serde_json::Map<String, serde_json::Value> =
            (0..45_000).map(|i| (format!("unknown_{i}"), serde_json::Value::from(1))).collect();
        let long = "k".repeat(1 << 20);
        for instance in [serde_json::Value::Object(keys), serde_json::json!({ long.clone(): 1, "a": 1 })] {
            let body = serde_json::json!({ "instances": [instance] }).to_string();
            let e = parse(&contract(), body.as_bytes(), 10).expect_err("invalid");
            assert!(e.details.len() <= MAX_DETAILS + 1, "{}", e.details.len());
            let size: usize = e.details.iter().map(|d| d.path.len() + d.reason.len()).sum();
            assert!(size < 16 << 10, "details of {size} bytes");
        }
        let body = serde_json::json!({ "instances": [serde_json::Value::Object(
            (0..45_000).map(|i| (format!("unknown_{i}"), serde_json::Value::from(1))).collect()
        )] })
        .to_string();
        let e = parse(&contract(), body.as_bytes(), 10).expect_err("invalid");
        let last = e.details.last().expect("a last detail");
        assert_eq!(last.reason, format!("{} more problems not listed", 45_000 + 1 - MAX_DETAILS));
        let body = serde_json::json!({ "instances": [{ long.clone(): 1, "a": 1 }] }).to_string();
        let e = parse(&contract(), body.as_bytes(), 10).expect_err("invalid");
        assert!(e.details[0].path.ends_with(&format!("…({} bytes)", long.len())), "{}", &e.details[0].path[..100]);
    }

    #[test]
    fn rejects_bad_shapes_and_too_many_instances() {
        let single = parse(&contract(), br#"{"instance":{"a":1}}"#, 10).expect("single instance");
        assert_eq!(single.rows.len(), 1);
        for body in [&b"nope"[..], br#"{"rows":[]}"#, br#"{"instances":{}}"#, br#"{"instances":[]}"#, br#"[1]"#] {
            assert_eq!(parse(&contract(), body, 10).expect_err("bad").status, StatusCode::BAD_REQUEST);
        }
        let e = parse(&contract(), br#"{"instances":[{"a":1},{"a":2}]}"#, 1).expect_err("too many");
        assert_eq!(e.status, StatusCode::PAYLOAD_TOO_LARGE);
    }
}

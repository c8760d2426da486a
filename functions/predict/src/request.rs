//! Reading `{"instances": [...]}` against the contract's features.

use axum::http::StatusCode;
use mlops_contract::Contract;
use mlops_contract::validate::{Value, check_json};
use serde::Serialize;

use crate::error::ApiError;

/// One problem with a request: where (a JSON path) and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Detail {
    pub path: String,
    pub reason: String,
}

/// Validated instances: per instance, the contract's feature values in feature order.
#[derive(Debug)]
pub struct Batch {
    pub rows: Vec<Vec<Value>>,
}

/// Most problems one 400 lists; a last detail counts the rest.
pub const MAX_DETAILS: usize = 20;

/// Longest field name a detail's path quotes whole.
const MAX_NAME_CHARS: usize = 64;

/// A caller's field name as a path segment, cut to [`MAX_NAME_CHARS`] characters.
fn segment(name: &str) -> String {
    if name.chars().count() <= MAX_NAME_CHARS {
        name.to_string()
    } else {
        let head: String = name.chars().take(MAX_NAME_CHARS).collect();
        format!("{head}…({} bytes)", name.len())
    }
}

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
pub fn parse(contract: &Contract, body: &[u8], max_instances: usize) -> Result<Batch, ApiError> {
    let bad = |message: &str| ApiError::new(StatusCode::BAD_REQUEST, message);
    let doc: serde_json::Value =
        serde_json::from_slice(body).map_err(|e| bad(&format!("the body is not valid JSON: {e}")))?;
    let usage = "the body must be {\"instances\": [{feature: value, …}, …]} or {\"instance\": {feature: value, …}}";
    let serde_json::Value::Object(mut fields) = doc else {
        return Err(bad(usage));
    };
    let instances = match (fields.remove("instances"), fields.remove("instance")) {
        (Some(serde_json::Value::Array(list)), None) => list,
        (Some(_), None) => return Err(bad("\"instances\" must be an array of objects")),
        (None, Some(one)) => vec![one],
        _ => return Err(bad(usage)),
    };
    if instances.is_empty() {
        return Err(bad("\"instances\" is empty"));
    }
    if instances.len() > max_instances {
        return Err(ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!("{} instances exceed the limit of {max_instances} per request", instances.len()),
        ));
    }
    let mut rows = Vec::with_capacity(instances.len());
    let mut details = Details::default();
    for (i, instance) in instances.iter().enumerate() {
        let Some(fields) = instance.as_object() else {
            details
                .push(Detail { path: format!("instances[{i}]"), reason: "must be an object of feature values".into() });
            continue;
        };
        for name in fields.keys() {
            if contract.column(name).is_none() {
                details.push(Detail {
                    path: format!("instances[{i}].{}", segment(name)),
                    reason: format!("unknown field; the model takes {}", contract.features.join(", ")),
                });
            }
        }
        let mut row = Vec::with_capacity(contract.features.len());
        for column in contract.feature_columns() {
            let path = format!("instances[{i}].{}", column.name);
            let value = fields.get(&column.name).unwrap_or(&serde_json::Value::Null);
            match check_json(column, value) {
                Ok(v) => row.push(v),
                Err(reasons) => {
                    let missing = !fields.contains_key(&column.name);
                    details.extend(reasons.into_iter().map(|r| Detail {
                        path: path.clone(),
                        reason: if missing && r.rule == "nullable" { "is required".to_string() } else { r.message },
                    }));
                }
            }
        }
        rows.push(row);
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
    Ok(Batch { rows })
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

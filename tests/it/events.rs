//! Event fidelity: every sample event in `events/` has the structure `sam local
//! generate-event` gives for its source (the generator's output is kept in
//! `events/generated/`), so `sam local invoke <Function> -e events/<file>` feeds a function
//! exactly what the cloud would.

use serde_json::Value;

use crate::common::repo;

/// Objects whose keys are data (header names, parameters), not structure.
const FREE_FORM: &[&str] = &["headers", "queryStringParameters", "pathParameters", "stageVariables"];

fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

/// Every difference of structure between `ours` and `generated`, by JSON path.
fn differences(path: &str, ours: &Value, generated: &Value, out: &mut Vec<String>) {
    if kind(ours) != kind(generated) {
        out.push(format!("{path}: {} where the generator has {}", kind(ours), kind(generated)));
        return;
    }
    let name = path.rsplit('.').next().unwrap_or(path);
    match (ours, generated) {
        (Value::Object(o), Value::Object(_)) if FREE_FORM.contains(&name) => {
            for (k, v) in o {
                if !v.is_string() {
                    out.push(format!("{path}.{k}: {} where the generator has strings", kind(v)));
                }
            }
        }
        (Value::Object(o), Value::Object(g)) => {
            for k in g.keys().filter(|k| !o.contains_key(*k)) {
                out.push(format!("{path}.{k}: missing"));
            }
            for k in o.keys().filter(|k| !g.contains_key(*k)) {
                out.push(format!("{path}.{k}: not in the generated event"));
            }
            for (k, v) in o {
                if let Some(gv) = g.get(k) {
                    differences(&format!("{path}.{k}"), v, gv, out);
                }
            }
        }
        (Value::Array(o), Value::Array(g)) => {
            if let Some(first) = g.first() {
                for (i, v) in o.iter().enumerate() {
                    differences(&format!("{path}[{i}]"), v, first, out);
                }
            }
        }
        _ => {}
    }
}

fn read(path: &std::path::Path) -> Value {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

#[test]
fn every_sample_event_has_the_generated_structure() {
    let events = repo().join("events");
    let mut checked = 0;
    for entry in std::fs::read_dir(&events).expect("events/") {
        let path = entry.expect("entry").path();
        if path.extension().is_none_or(|e| e != "json") {
            continue;
        }
        let generated = events.join("generated").join(path.file_name().expect("file name"));
        assert!(generated.exists(), "{} has no generated counterpart in events/generated/", path.display());
        let mut found = Vec::new();
        differences("$", &read(&path), &read(&generated), &mut found);
        assert!(found.is_empty(), "{}:\n{}", path.display(), found.join("\n"));
        checked += 1;
    }
    assert_eq!(checked, 5, "api-model, api-predict, s3-put, schedule and sqs-score");
}

#[test]
fn the_check_catches_a_changed_structure() {
    let generated = read(&repo().join("events/generated/s3-put.json"));
    let mut broken = generated.clone();
    broken["Records"][0]["s3"]["object"]["size"] = Value::String("1024".into());
    broken["Records"][0].as_object_mut().expect("record").remove("eventTime");
    let mut found = Vec::new();
    differences("$", &broken, &generated, &mut found);
    assert_eq!(
        found,
        ["$.Records[0].eventTime: missing", "$.Records[0].s3.object.size: string where the generator has number"]
    );
}

//! Predict's request parsing: memory bounded by the instances it scores, not by what the body
//! holds; answers to rejected requests bounded whatever the body.

use predict::request::{MAX_DETAILS, parse};

use crate::{MIB, mb, peak_of, serial};

/// API Gateway's largest request body.
const BODY_LIMIT: usize = 6 * MIB;

/// The bound: 1,000 instances of a few features, and the details of one answer.
const BOUND: usize = MIB;

/// An answer to a rejected request is at most this large.
const ANSWER_LIMIT: usize = 64 << 10;

fn contract() -> mlops_contract::Contract {
    mlops_contract::Contract::from_yaml(
        "dataset: d\nfeatures: [a, b]\ncolumns:\n  - {name: a, type: float}\n  - {name: b, type: category}\n  - {name: y, type: category}\n",
        "t.yaml",
    )
    .expect("contract")
}

/// Bodies of about `size` bytes, each hostile in its own way.
fn bodies(size: usize) -> Vec<(&'static str, String)> {
    let mut keys = String::from(r#"{"instances": [{"a": 1, "b": "x""#);
    let mut i = 0;
    while keys.len() < size - 8 {
        keys.push_str(&format!(r#","k{i}":0"#));
        i += 1;
    }
    keys.push_str("}]}");
    let nested = format!(r#"{{"instances": [{{"a": [{}], "b": "x"}}]}}"#, vec!["0"; size / 2 - 20].join(","));
    let many = format!(r#"{{"instances": [{}]}}"#, vec!["{}"; size / 3 - 10].join(","));
    let long_key = format!(r#"{{"instances": [{{"{}": 1, "a": 1, "b": "x"}}]}}"#, "k".repeat(size - 40));
    vec![("unknown keys", keys), ("a nested array", nested), ("too many instances", many), ("one long key", long_key)]
}

#[test]
fn hostile_bodies_are_parsed_in_bounded_memory_and_answered_briefly() {
    let _serial = serial();
    let contract = contract();
    for size in [BODY_LIMIT / 4, BODY_LIMIT] {
        for (what, body) in bodies(size) {
            let (answer, peak) = peak_of(|| parse(&contract, body.as_bytes(), 1000).expect_err("rejected"));
            // The answer as predict sends it.
            let json = serde_json::to_vec(&serde_json::json!({"error": answer.message, "details": answer.details}))
                .expect("JSON");
            println!("{what}, {} byte body: peak {}, answer {} bytes", body.len(), mb(peak), json.len());
            assert!(answer.details.len() <= MAX_DETAILS + 1, "{what}");
            assert!(json.len() < ANSWER_LIMIT, "{what}: an answer of {} bytes", json.len());
            assert!(peak < BOUND, "{what}: peak {} over the bound {}", mb(peak), mb(BOUND));
        }
    }
}

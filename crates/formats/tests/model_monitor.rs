//! Model Monitor's files against the schemas AWS documents (`tests/fixtures/model_monitor/`,
//! read as its README says), and the rules behind the constraints and violations.

use std::collections::BTreeMap;

use serde_json::Value as Json;

use mlops_contract::{Contract, Value};
use mlops_drift::profile::{ColumnProfile, Profile};
use mlops_drift::stats::{Method, Override, TestConfig};
use mlops_drift::{DriftReport, compare_profiles};
use mlops_formats::model_monitor::{self, completeness_tolerance};

// ---------------------------------------------------------------------------------------------
// The documented schemas.

/// What a documented schema allows at one place.
#[derive(Debug, Clone, PartialEq)]
enum Shape {
    /// The keys an object may have.
    Object(BTreeMap<String, Shape>),
    /// The shapes an array's items may take.
    Array(Vec<Shape>),
    Number,
    Bool,
    /// Any string when the schema gives one; one of those it gives when it gives more.
    Str(Vec<String>),
}

#[derive(Debug, Clone, PartialEq)]
enum Token {
    Open(char),
    Close(char),
    Colon,
    Comma,
    Pipe,
    Str(String),
    Word(String),
}

fn tokens(text: &str) -> Vec<Token> {
    let mut out = Vec::new();
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '#' => while chars.next_if(|&c| c != '\n').is_some() {},
            '{' | '[' => out.push(Token::Open(c)),
            '}' | ']' => out.push(Token::Close(c)),
            ':' => out.push(Token::Colon),
            ',' => out.push(Token::Comma),
            '|' => out.push(Token::Pipe),
            '"' => {
                let text: String = chars.by_ref().take_while(|&c| c != '"').collect();
                out.push(Token::Str(text));
            }
            c if c.is_whitespace() => {}
            c => {
                let mut word = String::from(c);
                while let Some(c) = chars.next_if(|c| c.is_alphanumeric() || matches!(c, '.' | '-' | '_')) {
                    word.push(c);
                }
                out.push(Token::Word(word));
            }
        }
    }
    out
}

struct Parser {
    tokens: Vec<Token>,
    at: usize,
}

impl Parser {
    fn peek(&self, ahead: usize) -> Option<&Token> {
        self.tokens.get(self.at + ahead)
    }

    fn next(&mut self) -> Token {
        let token = self.tokens.get(self.at).cloned().expect("the schema ends early");
        self.at += 1;
        token
    }

    fn value(&mut self) -> Shape {
        match self.next() {
            Token::Open('{') => {
                let mut members = BTreeMap::new();
                loop {
                    match self.next() {
                        Token::Close('}') => return Shape::Object(members),
                        Token::Comma => {}
                        Token::Str(key) => {
                            assert_eq!(self.next(), Token::Colon, "a colon after {key:?}");
                            let value = self.value();
                            members.insert(key, value);
                        }
                        other => panic!("{other:?} in an object"),
                    }
                }
            }
            Token::Open('[') => {
                let mut items = Vec::new();
                loop {
                    match self.peek(0) {
                        Some(Token::Close(']')) => {
                            self.at += 1;
                            return Shape::Array(items);
                        }
                        Some(Token::Comma) => self.at += 1,
                        _ => items.push(self.value()),
                    }
                }
            }
            first => {
                let mut alternatives = vec![scalar(first)];
                // `a | b`, `a || b`, `a | | b` and `a, | b` all separate alternatives.
                loop {
                    let skip = match (self.peek(0), self.peek(1)) {
                        (Some(Token::Pipe), _) => 1,
                        (Some(Token::Comma), Some(Token::Pipe)) => 2,
                        _ => break,
                    };
                    self.at += skip;
                    while self.peek(0) == Some(&Token::Pipe) {
                        self.at += 1;
                    }
                    let next = self.next();
                    alternatives.push(scalar(next));
                }
                if alternatives.len() == 1 {
                    return alternatives.remove(0);
                }
                let strings = alternatives
                    .into_iter()
                    .map(|a| match a {
                        Shape::Str(mut s) => s.remove(0),
                        other => panic!("alternatives of {other:?}"),
                    })
                    .collect();
                Shape::Str(strings)
            }
        }
    }
}

fn scalar(token: Token) -> Shape {
    match token {
        Token::Str(s) => Shape::Str(vec![s]),
        Token::Word(w) if w == "number" || w == "num" || w.parse::<f64>().is_ok() => Shape::Number,
        Token::Word(w) if w == "boolean" => Shape::Bool,
        other => panic!("{other:?} is not a value"),
    }
}

/// The documented schema of one file.
fn schema(file: &str) -> Shape {
    let path = format!("{}/tests/fixtures/model_monitor/{file}", env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    let mut parser = Parser { tokens: tokens(&text), at: 0 };
    let shape = parser.value();
    assert_eq!(parser.at, parser.tokens.len(), "{file}: text after the document");
    shape
}

fn member<'a>(shape: &'a Shape, key: &str) -> &'a Shape {
    match shape {
        Shape::Object(members) => members.get(key).unwrap_or_else(|| panic!("no {key:?} in {shape:?}")),
        other => panic!("{other:?} is not an object"),
    }
}

fn first_item(shape: &Shape) -> &Shape {
    match shape {
        Shape::Array(items) => items.first().expect("an item"),
        other => panic!("{other:?} is not an array"),
    }
}

fn alternatives(shape: &Shape) -> Vec<&str> {
    match shape {
        Shape::Str(values) => values.iter().map(String::as_str).collect(),
        other => panic!("{other:?} is not a string"),
    }
}

/// Where `value` leaves the documented `shape`: keys the schema does not have, other JSON types,
/// strings outside a documented choice. `root` is the whole file's schema, for the
/// `monitoringConfigOverrides` of a feature, which takes `monitoring_config`'s keys.
fn departures(value: &Json, shape: &Shape, root: &Shape, path: &str, out: &mut Vec<String>) {
    match (shape, value) {
        (Shape::Object(members), Json::Object(object)) => {
            for (key, v) in object {
                let at = format!("{path}.{key}");
                match members.get(key) {
                    Some(Shape::Object(m)) if m.is_empty() && key == "monitoringConfigOverrides" => {
                        departures(v, member(root, "monitoring_config"), root, &at, out)
                    }
                    Some(documented) => departures(v, documented, root, &at, out),
                    None => out.push(format!("{at} is not documented")),
                }
            }
        }
        (Shape::Array(items), Json::Array(values)) => {
            for (i, v) in values.iter().enumerate() {
                let at = format!("{path}[{i}]");
                let mut tries: Vec<Vec<String>> = items
                    .iter()
                    .map(|item| {
                        let mut found = Vec::new();
                        departures(v, item, root, &at, &mut found);
                        found
                    })
                    .collect();
                let fits = tries.iter().any(Vec::is_empty);
                match tries.first_mut() {
                    None => out.push(format!("{at}: the documented array has no items")),
                    Some(first) if !fits => out.append(first),
                    Some(_) => {}
                }
            }
        }
        (Shape::Number, Json::Number(_)) | (Shape::Bool, Json::Bool(_)) => {}
        (Shape::Str(choices), Json::String(s)) => {
            if choices.len() > 1 && !choices.contains(s) {
                out.push(format!("{path}: {s:?} is not one of {choices:?}"));
            }
        }
        (shape, value) => out.push(format!("{path}: {value} is not of the documented {shape:?}")),
    }
}

#[track_caller]
fn assert_documented(document: &Json, file: &str) {
    let root = schema(file);
    let mut found = Vec::new();
    departures(document, &root, &root, "$", &mut found);
    assert!(found.is_empty(), "{file}:\n{}", found.join("\n"));
}

const CHECK_TYPES: [&str; 6] = [
    "data_type_check",
    "completeness_check",
    "baseline_drift_check",
    "missing_column_check",
    "extra_column_check",
    "categorical_values_check",
];

#[test]
fn the_schemas_read_as_documented() {
    let violations = schema("constraint_violations.txt");
    let check_type = member(first_item(member(&violations, "violations")), "constraint_check_type");
    assert_eq!(alternatives(check_type), CHECK_TYPES);
    let constraints = schema("constraints.txt");
    let feature = first_item(member(&constraints, "features"));
    assert_eq!(alternatives(member(feature, "inferred_type")), ["Integral", "Fractional", "String", "Unknown"]);
    assert_eq!(member(member(feature, "num_constraints"), "is_non_negative"), &Shape::Bool);
    let distribution = member(member(&constraints, "monitoring_config"), "distribution_constraints");
    assert_eq!(alternatives(member(distribution, "comparison_method")), ["Simple", "Robust"]);
    assert_eq!(alternatives(member(distribution, "categorical_drift_method")), ["LInfinity", "ChiSquared"]);
    assert_eq!(member(distribution, "categorical_comparison_threshold"), &Shape::Number);
    let statistics = schema("statistics.txt");
    let Shape::Array(features) = member(&statistics, "features") else { panic!("features are an array") };
    assert_eq!(features.len(), 2, "a numeric and a string feature");
    assert_eq!(alternatives(member(&features[0], "inferred_type")), ["Fractional", "Integral"]);
    let sketch = member(member(member(member(&features[0], "numerical_statistics"), "distribution"), "kll"), "sketch");
    assert_eq!(member(sketch, "data"), &Shape::Array([4, 2, 2].map(|n| Shape::Array(vec![Shape::Number; n])).to_vec()));
    assert!(matches!(member(&features[1], "string_statistics"), Shape::Object(m) if m.contains_key("distinct_count")));
}

#[test]
fn the_schema_check_finds_what_is_not_documented() {
    let mut found = Vec::new();
    let root = schema("constraint_violations.txt");
    let unknown = serde_json::json!({"violations": [
        {"feature_name": "x", "constraint_check_type": "num_constraints_check", "description": "d"},
        {"feature_name": "x", "constraint_check_type": "completeness_check", "description": "d", "score": 1},
        {"feature_name": 3, "constraint_check_type": "completeness_check", "description": "d"},
    ]});
    departures(&unknown, &root, &root, "$", &mut found);
    assert_eq!(found.len(), 3, "{found:?}");
    let root = schema("constraints.txt");
    let method = serde_json::json!({
        "monitoring_config": {"distribution_constraints": {"comparison_method": "wasserstein"}},
        "features": [{"name": "x", "monitoringConfigOverrides": {"distribution_constraints": {"method": "ks"}}}],
    });
    found.clear();
    departures(&method, &root, &root, "$", &mut found);
    assert_eq!(found.len(), 2, "{found:?}");
}

// ---------------------------------------------------------------------------------------------
// Profiles and reports like the penguins example's: a small reference, a few missing values.

const CONTRACT: &str = "
dataset: birds
features: [x, k, b, n]
columns:
  - {name: x, type: float, nullable: true}
  - {name: k, type: category}
  - {name: b, type: bool}
  - {name: n, type: int}
  - {name: note, type: string}
  - {name: seen, type: timestamp, nullable: true}
  - {name: year, type: int}
";

fn contract() -> Contract {
    Contract::from_yaml(CONTRACT, "birds.yaml").expect("contract")
}

/// `count` rows, the first `missing` without `x`, starting at `offset` and with `n` moved by
/// `n_shift`.
fn rows(count: usize, missing: usize, offset: usize, n_shift: i64) -> Vec<Vec<Value>> {
    (offset..offset + count)
        .map(|i| {
            let x = if i - offset < missing { Value::Null } else { Value::Float(35.0 + ((i * 37) % 101) as f64 * 0.2) };
            vec![
                x,
                Value::Text(["a", "b", "c"][i % 3].into()),
                Value::Bool(i % 2 == 0),
                Value::Int(((i * 13) % 97) as i64 + n_shift),
                Value::Text(format!("note {i}").into()),
                if i % 5 == 0 { Value::Null } else { Value::Text("2026-03-01".into()) },
                Value::Int(2007 + (i % 3) as i64),
            ]
        })
        .collect()
}

struct Check {
    contract: Contract,
    baseline: Profile,
    current: Profile,
    report: DriftReport,
}

impl Check {
    fn new(
        contract: Contract,
        baseline: &[Vec<Value>],
        current: &[Vec<Value>],
        overrides: &[(&str, Override)],
    ) -> Check {
        let baseline = Profile::baseline(&contract, baseline);
        let mut profile = Profile::empty_like(&contract, &baseline);
        for row in current {
            profile.observe(&contract, row);
        }
        let overrides: BTreeMap<String, Override> = overrides.iter().map(|(n, o)| (n.to_string(), *o)).collect();
        let report =
            compare_profiles(&contract, &baseline, &profile, &TestConfig::default(), &overrides).expect("report");
        Check { contract, baseline, current: profile, report }
    }

    /// A baseline of 344 rows with 2 missing `x`, and a window of 300 with `missing`.
    fn birds(missing: usize, n_shift: i64) -> Check {
        let mut baseline = rows(344, 0, 0, 0);
        for i in [10, 200] {
            baseline[i][0] = Value::Null;
        }
        Check::new(contract(), &baseline, &rows(300, missing, 1000, n_shift), &[])
    }

    fn statistics(&self) -> Json {
        model_monitor::statistics(&self.contract, &self.current)
    }

    fn constraints(&self) -> Json {
        model_monitor::constraints(&self.contract, &self.baseline, &self.report)
    }

    fn violations(&self) -> Json {
        model_monitor::violations(&self.report, &self.baseline, &self.current)
    }

    /// Every file, checked against its documented schema.
    fn assert_documented(&self) {
        assert_documented(&self.statistics(), "statistics.txt");
        assert_documented(&model_monitor::statistics(&self.contract, &self.baseline), "statistics.txt");
        assert_documented(&self.constraints(), "constraints.txt");
        assert_documented(&self.violations(), "constraint_violations.txt");
    }
}

fn feature<'a>(document: &'a Json, name: &str) -> &'a Json {
    document["features"]
        .as_array()
        .expect("features")
        .iter()
        .find(|f| f["name"] == name)
        .unwrap_or_else(|| panic!("no feature {name} in {document}"))
}

/// `(feature, check type)` of each violation.
fn found(violations: &Json) -> Vec<(String, String)> {
    violations["violations"]
        .as_array()
        .expect("violations")
        .iter()
        .map(|v| {
            let text = |key: &str| v[key].as_str().unwrap_or_else(|| panic!("{key} in {v}")).to_string();
            (text("feature_name"), text("constraint_check_type"))
        })
        .collect()
}

#[test]
fn a_small_drop_of_completeness_is_no_violation_and_a_large_one_is() {
    // 342 of 344 values (0.9942) in the baseline, 297 of 300 (0.9900) in the window: within
    // three standard errors of the baseline's completeness over 300 rows (0.0132).
    let small = Check::birds(3, 0);
    let tolerance = completeness_tolerance(342.0 / 344.0, 300);
    assert!((tolerance - 0.013_16).abs() < 1e-4, "{tolerance}");
    assert!(
        !found(&small.violations()).iter().any(|(_, check)| check == "completeness_check"),
        "{}",
        small.violations()
    );
    small.assert_documented();
    // 240 of 300 (0.80) is far below.
    let large = Check::birds(60, 0);
    let completeness: Vec<(String, String)> =
        found(&large.violations()).into_iter().filter(|(_, check)| check == "completeness_check").collect();
    assert_eq!(completeness, [("x".to_string(), "completeness_check".to_string())]);
    large.assert_documented();
    // The constraint is the baseline's completeness; the tolerance is never below one point.
    assert_eq!(feature(&large.constraints(), "x")["completeness"], 342.0 / 344.0);
    assert_eq!(completeness_tolerance(1.0, 1000), 0.01);
    assert_eq!(completeness_tolerance(342.0 / 344.0, 1_000_000), 0.01);
}

#[test]
fn violations_are_of_the_documented_check_types() {
    // The window's `n` is shifted below zero, where the baseline has no value: that breaks
    // `is_non_negative`, which no documented check type names.
    let check = Check::birds(60, -50);
    let violations = found(&check.violations());
    assert!(
        violations.iter().any(|(f, c)| (f.as_str(), c.as_str()) == ("n", "baseline_drift_check")),
        "{violations:?}"
    );
    for (feature, check_type) in &violations {
        assert!(CHECK_TYPES.contains(&check_type.as_str()), "{feature}: {check_type}");
    }
    assert_eq!(feature(&check.constraints(), "n")["num_constraints"]["is_non_negative"], true);
    check.assert_documented();
    // Labels outside the baseline's domain, a column the baseline lacks and one the window lacks.
    let mut check = Check::birds(0, 0);
    let ColumnProfile::Categorical(k) = check.current.columns.get_mut("k").expect("k") else {
        panic!("k is a category")
    };
    for _ in 0..5 {
        k.add("z");
    }
    let extra = check.current.columns["x"].clone();
    check.current.columns.insert("extra".into(), extra);
    check.current.columns.remove("year");
    let mut violations = found(&check.violations());
    violations.sort();
    let expected =
        [("extra", "extra_column_check"), ("k", "categorical_values_check"), ("year", "missing_column_check")];
    assert_eq!(violations, expected.map(|(f, c)| (f.to_string(), c.to_string())));
    assert_documented(&check.violations(), "constraint_violations.txt");
}

#[test]
fn constraints_carry_the_thresholds_and_methods_of_the_tests_run() {
    let check = Check::birds(3, 0);
    let method = |name: &str| check.report.columns.iter().find(|f| f.column == name).expect(name).test.method;
    assert_eq!(
        [method("x"), method("n"), method("k"), method("b")],
        [Method::Ks, Method::Ks, Method::Chisquare, Method::Z]
    );
    let constraints = check.constraints();
    let distribution = &constraints["monitoring_config"]["distribution_constraints"];
    // Both numeric features ran KS at 0.05; both categorical ones a p-value test at 0.05, but only
    // one of them chi-square, which is written for that feature alone.
    assert_eq!(
        distribution,
        &serde_json::json!({
            "perform_comparison": "Enabled",
            "comparison_threshold": 0.05,
            "comparison_method": "Robust",
            "categorical_comparison_threshold": 0.05,
        })
    );
    let overrides = |name: &str| feature(&constraints, name).get("monitoringConfigOverrides").cloned();
    assert_eq!(
        overrides("k"),
        Some(serde_json::json!({"distribution_constraints": {"categorical_drift_method": "ChiSquared"}}))
    );
    assert_eq!((overrides("x"), overrides("n"), overrides("b")), (None, None, None));
    // Columns the check does not test are not compared.
    let disabled = Some(serde_json::json!({"distribution_constraints": {"perform_comparison": "Disabled"}}));
    for name in ["note", "seen", "year"] {
        assert_eq!(overrides(name), disabled, "{name}");
    }
    check.assert_documented();

    // A per-column method and threshold: the numeric features now differ, so the method is per
    // feature and the threshold the first of the equally common ones.
    let psi = Override { method: Some(Method::Psi), threshold: Some(0.2) };
    let mut baseline = rows(344, 0, 0, 0);
    baseline[10][0] = Value::Null;
    let check = Check::new(contract(), &baseline, &rows(300, 3, 1000, 0), &[("n", psi)]);
    let constraints = check.constraints();
    let distribution = &constraints["monitoring_config"]["distribution_constraints"];
    assert_eq!(
        (&distribution["comparison_threshold"], distribution.get("comparison_method")),
        (&serde_json::json!(0.05), None)
    );
    let overrides = |name: &str| feature(&constraints, name).get("monitoringConfigOverrides").cloned();
    assert_eq!(overrides("x"), Some(serde_json::json!({"distribution_constraints": {"comparison_method": "Robust"}})));
    assert_eq!(overrides("n"), Some(serde_json::json!({"distribution_constraints": {"comparison_threshold": 0.2}})));
    check.assert_documented();
}

#[test]
fn every_column_has_one_type_in_every_file() {
    let check = Check::birds(3, 0);
    let (statistics, constraints) = (check.statistics(), check.constraints());
    let expected = [
        ("x", "Fractional"),
        ("k", "String"),
        ("b", "String"),
        ("n", "Integral"),
        ("note", "String"),
        ("seen", "String"),
        ("year", "Integral"),
    ];
    for (name, kind) in expected {
        assert_eq!(feature(&statistics, name)["inferred_type"], kind, "{name} statistics");
        assert_eq!(feature(&constraints, name)["inferred_type"], kind, "{name} constraints");
        let stats = feature(&statistics, name);
        assert!(stats.get("numerical_statistics").is_none() || kind != "String", "{name}: {stats}");
        assert!(stats.get("string_statistics").is_none() || kind == "String", "{name}: {stats}");
    }
    // A bool is the labels false and true.
    let b = feature(&statistics, "b");
    let labels: Vec<&Json> = b["string_statistics"]["distribution"]["categorical"]["buckets"]
        .as_array()
        .expect("buckets")
        .iter()
        .map(|l| &l["value"])
        .collect();
    assert_eq!(labels, ["false", "true"]);
    assert_eq!(feature(&constraints, "b")["string_constraints"]["domains"], serde_json::json!(["false", "true"]));
    // Free text and timestamps are not profiled: a required one is present in every row, an
    // optional one's counts are unknown.
    assert_eq!(
        feature(&statistics, "note")["string_statistics"],
        serde_json::json!({"common": {"num_present": 300, "num_missing": 0}})
    );
    assert_eq!(feature(&constraints, "note")["completeness"].as_f64(), Some(1.0));
    assert_eq!(feature(&statistics, "seen").get("string_statistics"), None);
    assert_eq!(feature(&constraints, "seen").get("completeness"), None);
    let names: Vec<&Json> = statistics["features"].as_array().expect("features").iter().map(|f| &f["name"]).collect();
    assert_eq!(names, ["x", "k", "b", "n", "note", "seen", "year"], "contract order");
}

/// Σ over levels of items × 2^level: the values a sketch's levels stand for.
fn weight(data: &Json) -> u64 {
    data.as_array()
        .expect("levels")
        .iter()
        .enumerate()
        .map(|(h, level)| level.as_array().expect("items").len() as u64 * (1 << h))
        .sum()
}

#[test]
fn the_kll_sketch_is_written_level_by_level() {
    // While the sketch holds every value, it has one level of them all.
    let check = Check::birds(3, 0);
    let statistics = check.statistics();
    let stats = &feature(&statistics, "x")["numerical_statistics"];
    let sketch = &stats["distribution"]["kll"]["sketch"];
    assert_eq!(sketch["parameters"], serde_json::json!({"c": 2.0 / 3.0, "k": 1000}));
    let ColumnProfile::Numeric(x) = &check.current.columns["x"] else { panic!("x is numeric") };
    let values = x.sorted_values().expect("exact values");
    assert_eq!(sketch["data"], serde_json::json!([values]));

    // Beyond k values it compacts: each level's items stand for twice as many values as the
    // level below's, and together for every value.
    let contract = Contract::from_yaml(
        "dataset: ids\nfeatures: [id, v]\ncolumns:\n  - {name: id, type: category}\n  - {name: v, type: float}\n",
        "ids.yaml",
    )
    .expect("contract");
    let many = |offset: usize| -> Vec<Vec<Value>> {
        (offset..offset + 5000)
            .map(|i| vec![Value::Text(format!("id{}", i % 1200).into()), Value::Float(((i * 7919) % 5000) as f64)])
            .collect()
    };
    let check = Check::new(contract, &many(0), &many(77), &[]);
    let statistics = check.statistics();
    let stats = &feature(&statistics, "v")["numerical_statistics"];
    let data = &stats["distribution"]["kll"]["sketch"]["data"];
    assert!(data.as_array().expect("levels").len() > 1, "compacted");
    assert_eq!(weight(data), 5000);
    let (min, max) = (stats["min"].as_f64().expect("min"), stats["max"].as_f64().expect("max"));
    for item in data.as_array().expect("levels").iter().flat_map(|l| l.as_array().expect("items")) {
        let item = item.as_f64().expect("a number");
        assert!((min..=max).contains(&item), "{item}");
    }

    // 1,200 labels are more than a profile counts exactly: estimated buckets, no distinct count,
    // no domain and no categorical_values_check.
    let id = &feature(&statistics, "id")["string_statistics"];
    assert!(id.get("distinct_count").is_none(), "{id}");
    assert!(!id["distribution"]["categorical"]["buckets"].as_array().expect("buckets").is_empty());
    assert!(feature(&check.constraints(), "id").get("string_constraints").is_none());
    assert!(!found(&check.violations()).iter().any(|(_, c)| c == "categorical_values_check"));
    // Large references are tested with distances, which no documented method names.
    let distribution = &check.constraints()["monitoring_config"]["distribution_constraints"];
    assert_eq!(
        distribution,
        &serde_json::json!({
            "perform_comparison": "Enabled",
            "comparison_threshold": 0.1,
            "categorical_comparison_threshold": 0.1,
        })
    );
    check.assert_documented();
}

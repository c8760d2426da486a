//! The drift check's results in SageMaker Model Monitor's file formats: `statistics.json` of the
//! current window, `constraints.json` of the baseline and the tests run, and
//! `constraint_violations.json`, with only the fields and check types AWS documents
//! (`tests/fixtures/model_monitor/`).
//!
//! - `int` is `Integral`, `float` is `Fractional`, and `bool` (profiled as the labels `false` and
//!   `true`), `category`, `string` and `timestamp` are `String`, in every file.
//! - A numeric distribution is 10 buckets and the KLL sketch: `data[h]` holds the items of level
//!   `h`, each standing for 2^h values, and `c` is DataSketches' capacity decay, 2/3. Free text
//!   and timestamps are not profiled: their counts are written only when the contract requires a
//!   value. Beyond 1,000 labels a category's counts are its frequent-items sketch's estimates,
//!   with no `distinct_count` and no `domains`, since the sketch keeps only the frequent labels.
//! - Drift thresholds are those of the tests run (a p-value for ks, chisquare and z, a distance
//!   otherwise): per kind of feature the one most features used, and per feature in
//!   `monitoringConfigOverrides` where it differs. Of the documented methods, `Robust` (the
//!   two-sample KS test) is ks and `ChiSquared` is chisquare; a method is written per kind when
//!   every feature of that kind used it, else per feature, and never for the other methods.
//!   Features the check does not test have `perform_comparison` disabled.
//! - `completeness` is the baseline's, and a `completeness_check` violation needs a drop beyond
//!   [`completeness_tolerance`]. No documented check type names a broken `is_non_negative`, so no
//!   violation is written for it; `data_type_check` never applies, as the contract types every
//!   value of a valid row.

use serde_json::{Map, Value, json};

use mlops_contract::{Column, ColumnType, Contract};
use mlops_drift::profile::{CategoricalProfile, ColumnProfile, NumericProfile, Profile};
use mlops_drift::stats::{Method, Verdict};
use mlops_drift::{DriftReport, FeatureDrift};

/// Buckets per numeric distribution.
pub const BUCKETS: usize = 10;

/// The least drop of completeness below the constraint's that is a `completeness_check`
/// violation, whatever the window's size.
pub const COMPLETENESS_TOLERANCE: f64 = 0.01;

/// Standard errors of the baseline's completeness over the current window's rows that a drop
/// must exceed to be a `completeness_check` violation.
pub const COMPLETENESS_STANDARD_ERRORS: f64 = 3.0;

/// The share of a category's current values outside the baseline's domain above which it is a
/// `categorical_values_check` violation (`domain_content_threshold`): none, so one value is enough.
pub const DOMAIN_CONTENT_THRESHOLD: f64 = 0.0;

/// The share of values of another type above which a feature would be a `data_type_check`
/// violation (`datatype_check_threshold`): never, since the contract types every value.
pub const DATATYPE_CHECK_THRESHOLD: f64 = 1.0;

/// DataSketches' KLL capacity decay from one level to the next, down from the top level's `k`.
const KLL_CAPACITY_DECAY: f64 = 2.0 / 3.0;

/// Model Monitor's type of a column: from the contract, else from how it is profiled.
fn inferred_type(column: Option<&Column>, profile: Option<&ColumnProfile>) -> &'static str {
    match (column.map(|c| c.kind), profile) {
        (Some(ColumnType::Int), _) => "Integral",
        (Some(ColumnType::Float), _) | (None, Some(ColumnProfile::Numeric(_))) => "Fractional",
        _ => "String",
    }
}

/// A column's name, its contract and its profile.
type Described<'a> = (&'a str, Option<&'a Column>, Option<&'a ColumnProfile>);

/// The columns a file describes: the contract's in its order, then any column of the profile
/// that the contract does not name.
fn columns<'a>(contract: &'a Contract, profile: &'a Profile) -> Vec<Described<'a>> {
    let mut out: Vec<_> =
        contract.columns.iter().map(|c| (c.name.as_str(), Some(c), profile.columns.get(&c.name))).collect();
    out.extend(
        profile
            .columns
            .iter()
            .filter(|(name, _)| contract.column(name).is_none())
            .map(|(n, p)| (n.as_str(), None, Some(p))),
    );
    out
}

/// `statistics.json` of a profile of `contract`'s dataset.
pub fn statistics(contract: &Contract, profile: &Profile) -> Value {
    let features: Vec<Value> = columns(contract, profile)
        .into_iter()
        .map(|(name, column, stats)| {
            let kind = inferred_type(column, stats);
            match stats {
                Some(ColumnProfile::Numeric(n)) => {
                    json!({"name": name, "inferred_type": kind, "numerical_statistics": numerical_statistics(n)})
                }
                Some(ColumnProfile::Categorical(c)) => {
                    json!({"name": name, "inferred_type": kind, "string_statistics": string_statistics(c)})
                }
                None => {
                    let mut feature = json!({"name": name, "inferred_type": kind});
                    if column.is_some_and(|c| !c.nullable) {
                        let key = if kind == "String" { "string_statistics" } else { "numerical_statistics" };
                        feature[key] = json!({"common": {"num_present": profile.rows, "num_missing": 0}});
                    }
                    feature
                }
            }
        })
        .collect();
    json!({"version": 0.0, "dataset": {"item_count": profile.rows}, "features": features})
}

fn numerical_statistics(n: &NumericProfile) -> Value {
    let mut stats = json!({
        "common": {"num_present": n.count, "num_missing": n.nulls},
        "sum": n.mean * n.count as f64,
    });
    let (Some(lo), Some(hi)) = (n.min, n.max) else {
        // No value: no mean, spread or range to write, and an empty sketch.
        return stats;
    };
    stats["mean"] = json!(n.mean);
    stats["std_dev"] = json!(n.population_std());
    stats["min"] = json!(lo);
    stats["max"] = json!(hi);
    let view = n.sketch.view();
    let width = (hi - lo) / BUCKETS as f64;
    let buckets: Vec<Value> = (0..BUCKETS)
        .map(|i| {
            let a = lo + width * i as f64;
            let b = if i + 1 == BUCKETS { hi } else { lo + width * (i + 1) as f64 };
            let below = if i == 0 { 0.0 } else { view.rank(a, true) };
            let upto = if i + 1 == BUCKETS { 1.0 } else { view.rank(b, true) };
            json!({"lower_bound": a, "upper_bound": b, "count": ((upto - below) * n.count as f64).round()})
        })
        .collect();
    let mut kll = json!({"buckets": buckets});
    kll["sketch"] = json!({"parameters": {"c": KLL_CAPACITY_DECAY, "k": n.sketch.k()}, "data": n.sketch.levels()});
    stats["distribution"] = json!({"kll": kll});
    stats
}

fn string_statistics(c: &CategoricalProfile) -> Value {
    let counts = c.label_counts();
    let buckets: Vec<Value> = counts.iter().map(|(v, n)| json!({"value": v, "count": n})).collect();
    let mut stats = json!({
        "common": {"num_present": c.count, "num_missing": c.nulls},
        "distribution": {"categorical": {"buckets": buckets}},
    });
    if c.is_exact() {
        stats["distinct_count"] = json!(counts.len());
    }
    stats
}

/// The share of a column's rows that have a value; 1 for a column of no rows.
fn completeness(column: &ColumnProfile) -> f64 {
    let (present, missing) = counts(column);
    if present + missing == 0 { 1.0 } else { present as f64 / (present + missing) as f64 }
}

/// Values present and missing.
fn counts(column: &ColumnProfile) -> (u64, u64) {
    match column {
        ColumnProfile::Numeric(n) => (n.count, n.nulls),
        ColumnProfile::Categorical(c) => (c.count, c.nulls),
    }
}

/// How far below the constraint's completeness `baseline` a column of `rows` current rows may
/// fall without a `completeness_check` violation: [`COMPLETENESS_TOLERANCE`], or
/// [`COMPLETENESS_STANDARD_ERRORS`] standard errors of a share `baseline` over `rows` rows when
/// that is more, so that the chance missing values of a small window are not reported.
pub fn completeness_tolerance(baseline: f64, rows: u64) -> f64 {
    let standard_error = if rows == 0 { 0.0 } else { (baseline * (1.0 - baseline) / rows as f64).sqrt() };
    COMPLETENESS_TOLERANCE.max(COMPLETENESS_STANDARD_ERRORS * standard_error)
}

/// The keys of `distribution_constraints` for one kind of feature.
struct DriftKeys {
    threshold: &'static str,
    method: &'static str,
}

const NUMERIC_KEYS: DriftKeys = DriftKeys { threshold: "comparison_threshold", method: "comparison_method" };
const CATEGORICAL_KEYS: DriftKeys =
    DriftKeys { threshold: "categorical_comparison_threshold", method: "categorical_drift_method" };

fn is_categorical(feature: &FeatureDrift) -> bool {
    feature.kind == "categorical"
}

/// The documented method that is the feature's test, if one is.
fn documented_method(feature: &FeatureDrift) -> Option<&'static str> {
    match (is_categorical(feature), feature.test.method) {
        (false, Method::Ks) => Some("Robust"),
        (true, Method::Chisquare) => Some("ChiSquared"),
        _ => None,
    }
}

/// What the features of one kind share: the threshold most of them used (the first met among
/// equally common ones), and the documented method if every one of them used it. `None` without
/// features.
fn shared(features: &[&FeatureDrift]) -> Option<(f64, Option<&'static str>)> {
    let first = features.first()?;
    let users = |t: f64| features.iter().filter(|f| f.test.threshold == t).count();
    let mut threshold = first.test.threshold;
    for f in features {
        if users(f.test.threshold) > users(threshold) {
            threshold = f.test.threshold;
        }
    }
    let method = documented_method(first).filter(|m| features.iter().all(|f| documented_method(f) == Some(m)));
    Some((threshold, method))
}

/// `constraints.json` of the baseline, with the drift thresholds and methods of `report`'s tests.
pub fn constraints(contract: &Contract, baseline: &Profile, report: &DriftReport) -> Value {
    let (categorical, numeric): (Vec<&FeatureDrift>, Vec<&FeatureDrift>) =
        report.columns.iter().partition(|f| is_categorical(f));
    let (numeric, categorical) = (shared(&numeric), shared(&categorical));
    let features: Vec<Value> = columns(contract, baseline)
        .into_iter()
        .map(|(name, column, profile)| {
            let mut feature = json!({"name": name, "inferred_type": inferred_type(column, profile)});
            // An unprofiled column is complete when the contract requires a value.
            if let Some(c) = profile.map(completeness).or(column.filter(|c| !c.nullable).map(|_| 1.0)) {
                feature["completeness"] = json!(c);
            }
            match profile {
                Some(ColumnProfile::Numeric(n)) => {
                    feature["num_constraints"] = json!({"is_non_negative": n.min.is_none_or(|m| m >= 0.0)});
                }
                Some(ColumnProfile::Categorical(c)) if c.is_exact() => {
                    feature["string_constraints"] = json!({"domains": c.counts.keys().collect::<Vec<_>>()});
                }
                _ => {}
            }
            let mut overrides = Map::new();
            match report.columns.iter().find(|f| f.column == name) {
                None => {
                    overrides.insert("perform_comparison".into(), json!("Disabled"));
                }
                Some(f) => {
                    let (keys, shared) =
                        if is_categorical(f) { (&CATEGORICAL_KEYS, categorical) } else { (&NUMERIC_KEYS, numeric) };
                    if shared.map(|(t, _)| t) != Some(f.test.threshold) {
                        overrides.insert(keys.threshold.into(), json!(f.test.threshold));
                    }
                    if let Some(method) = documented_method(f).filter(|_| shared.and_then(|(_, m)| m).is_none()) {
                        overrides.insert(keys.method.into(), json!(method));
                    }
                }
            }
            if !overrides.is_empty() {
                feature["monitoringConfigOverrides"] = json!({"distribution_constraints": overrides});
            }
            feature
        })
        .collect();
    let mut distribution = Map::new();
    let perform = if report.columns.is_empty() { "Disabled" } else { "Enabled" };
    distribution.insert("perform_comparison".into(), json!(perform));
    for (keys, shared) in [(&NUMERIC_KEYS, numeric), (&CATEGORICAL_KEYS, categorical)] {
        if let Some((threshold, method)) = shared {
            distribution.insert(keys.threshold.into(), json!(threshold));
            if let Some(method) = method {
                distribution.insert(keys.method.into(), json!(method));
            }
        }
    }
    json!({
        "version": 0.0,
        "features": features,
        "monitoring_config": {
            "evaluate_constraints": "Enabled",
            "emit_metrics": "Enabled",
            "datatype_check_threshold": DATATYPE_CHECK_THRESHOLD,
            "domain_content_threshold": DOMAIN_CONTENT_THRESHOLD,
            "distribution_constraints": distribution,
        }
    })
}

fn violation(name: &str, check: &str, description: String) -> Value {
    json!({"feature_name": name, "constraint_check_type": check, "description": description})
}

/// `constraint_violations.json` of the current profile against the baseline and `report`.
pub fn violations(report: &DriftReport, baseline: &Profile, current: &Profile) -> Value {
    let mut out = Vec::new();
    for feature in &report.columns {
        let t = &feature.test;
        if t.verdict == Verdict::Drift {
            let score = t.score().map_or_else(|| "none".to_string(), |s| format!("{s}"));
            let what = if t.method.is_p_value() { "p-value" } else { "distance" };
            out.push(violation(
                &feature.column,
                "baseline_drift_check",
                format!(
                    "{} {what} {score} against the threshold {} (reference {} values, current {} values)",
                    t.method.name(),
                    t.threshold,
                    t.n_reference,
                    t.n_current
                ),
            ));
        }
    }
    for (name, b) in &baseline.columns {
        let Some(c) = current.columns.get(name) else {
            out.push(violation(name, "missing_column_check", "the column is not in the current profile".into()));
            continue;
        };
        let (expected, actual) = (completeness(b), completeness(c));
        let (present, missing) = counts(c);
        let tolerance = completeness_tolerance(expected, present + missing);
        if actual < expected - tolerance {
            out.push(violation(
                name,
                "completeness_check",
                format!(
                    "completeness {actual:.4} ({present} of {} values present) is below the constraint's \
                     {expected:.4} by more than the tolerance {tolerance:.4}",
                    present + missing
                ),
            ));
        }
        if let (ColumnProfile::Categorical(b), ColumnProfile::Categorical(c)) = (b, c)
            && b.is_exact()
            && c.count > 0
        {
            let unseen: u64 =
                c.label_counts().iter().filter(|(label, _)| !b.counts.contains_key(*label)).map(|(_, n)| n).sum();
            let share = unseen as f64 / c.count as f64;
            if share > DOMAIN_CONTENT_THRESHOLD {
                out.push(violation(
                    name,
                    "categorical_values_check",
                    format!("{:.2}% of values are outside the baseline's domain", 100.0 * share),
                ));
            }
        }
    }
    for name in current.columns.keys().filter(|name| !baseline.columns.contains_key(*name)) {
        out.push(violation(name, "extra_column_check", "the column is not in the baseline".into()));
    }
    json!({"violations": out})
}

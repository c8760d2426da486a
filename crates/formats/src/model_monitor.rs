//! The drift check's results in SageMaker Model Monitor's file formats, so that tooling built on
//! them keeps working: `statistics.json` of the current window, `constraints.json` suggested from
//! the baseline, and `constraint_violations.json`.
//!
//! Numeric distributions are materialised as 10 KLL buckets, as Model Monitor's container does;
//! the sketch's compactor levels are not written (the profile carries the sketch itself in
//! DataSketches' binary format).

use serde_json::{Value, json};

use mlops_contract::{ColumnType, Contract};
use mlops_drift::DriftReport;
use mlops_drift::profile::{ColumnProfile, Profile};
use mlops_drift::stats::Verdict;

/// Buckets per numeric distribution.
pub const BUCKETS: usize = 10;

fn inferred_type(contract: &Contract, name: &str, profile: &ColumnProfile) -> &'static str {
    match (contract.column(name).map(|c| c.kind), profile) {
        (Some(ColumnType::Int), _) => "Integral",
        (_, ColumnProfile::Numeric(_)) => "Fractional",
        _ => "String",
    }
}

/// `statistics.json` of a profile.
pub fn statistics(contract: &Contract, profile: &Profile) -> Value {
    let features: Vec<Value> = profile
        .columns
        .iter()
        .map(|(name, column)| {
            let kind = inferred_type(contract, name, column);
            match column {
                ColumnProfile::Numeric(n) => {
                    let (lo, hi) = (n.min.unwrap_or(0.0), n.max.unwrap_or(0.0));
                    let view = n.sketch.view();
                    let width = (hi - lo) / BUCKETS as f64;
                    let buckets: Vec<Value> = if n.count == 0 {
                        Vec::new()
                    } else {
                        (0..BUCKETS)
                            .map(|i| {
                                let a = lo + width * i as f64;
                                let b = if i + 1 == BUCKETS { hi } else { lo + width * (i + 1) as f64 };
                                let below = if i == 0 { 0.0 } else { view.rank(a, true) };
                                let upto = if i + 1 == BUCKETS { 1.0 } else { view.rank(b, true) };
                                json!({"lower_bound": a, "upper_bound": b, "count": ((upto - below) * n.count as f64).round()})
                            })
                            .collect()
                    };
                    json!({
                        "name": name,
                        "inferred_type": kind,
                        "numerical_statistics": {
                            "common": {"num_present": n.count, "num_missing": n.nulls},
                            "mean": n.mean,
                            "sum": n.mean * n.count as f64,
                            "std_dev": if n.count == 0 { 0.0 } else { n.population_std() },
                            "min": lo,
                            "max": hi,
                            "distribution": {"kll": {"buckets": buckets, "sketch": {"parameters": {"c": 0.64, "k": f64::from(mlops_drift::profile::sketches::KLL_K)}, "data": []}}}
                        }
                    })
                }
                ColumnProfile::Categorical(c) => {
                    let counts = c.label_counts();
                    let buckets: Vec<Value> = counts.iter().map(|(v, n)| json!({"value": v, "count": n})).collect();
                    json!({
                        "name": name,
                        "inferred_type": kind,
                        "string_statistics": {
                            "common": {"num_present": c.count, "num_missing": c.nulls},
                            "distinct_count": counts.len(),
                            "distribution": {"categorical": {"buckets": buckets}}
                        }
                    })
                }
            }
        })
        .collect();
    json!({"version": 0.0, "dataset": {"item_count": profile.rows}, "features": features})
}

fn completeness(column: &ColumnProfile) -> f64 {
    let (present, missing) = match column {
        ColumnProfile::Numeric(n) => (n.count, n.nulls),
        ColumnProfile::Categorical(c) => (c.count, c.nulls),
    };
    if present + missing == 0 { 1.0 } else { present as f64 / (present + missing) as f64 }
}

/// `constraints.json` suggested from the baseline: each feature's type, its completeness, numeric
/// non-negativity and the categorical domain; drift is compared with `comparison_threshold`.
pub fn constraints(contract: &Contract, baseline: &Profile, drift_threshold: f64) -> Value {
    let features: Vec<Value> = baseline
        .columns
        .iter()
        .map(|(name, column)| {
            let mut feature = json!({
                "name": name,
                "inferred_type": inferred_type(contract, name, column),
                "completeness": completeness(column),
            });
            match column {
                ColumnProfile::Numeric(n) => {
                    feature["num_constraints"] = json!({"is_non_negative": n.min.is_none_or(|m| m >= 0.0)});
                }
                ColumnProfile::Categorical(c) if c.is_exact() => {
                    feature["string_constraints"] = json!({"domains": c.counts.keys().collect::<Vec<_>>()});
                }
                ColumnProfile::Categorical(_) => {}
            }
            feature
        })
        .collect();
    json!({
        "version": 0.0,
        "features": features,
        "monitoring_config": {
            "evaluate_constraints": "Enabled",
            "emit_metrics": "Enabled",
            "datatype_check_threshold": 1.0,
            "domain_content_threshold": 1.0,
            "distribution_constraints": {
                "perform_comparison": "Enabled",
                "comparison_threshold": drift_threshold,
                "comparison_method": "Robust"
            }
        }
    })
}

/// `constraint_violations.json`: drifted features (`baseline_drift_check`), features less complete
/// than the baseline (`completeness_check`), negative values where the baseline had none
/// (`data_type_check` is not applicable: the contract types every value), and labels outside the
/// baseline's domain (`categorical_values_check`).
pub fn violations(report: &DriftReport, baseline: &Profile, current: &Profile) -> Value {
    let mut out = Vec::new();
    for feature in &report.columns {
        let t = &feature.test;
        if t.verdict == Verdict::Drift {
            let score = t.score().map_or_else(|| "none".to_string(), |s| format!("{s}"));
            out.push(json!({
                "feature_name": feature.column,
                "constraint_check_type": "baseline_drift_check",
                "description": format!(
                    "{} score {score} against threshold {} (reference {} values, current {} values)",
                    t.method.name(), t.threshold, t.n_reference, t.n_current
                ),
            }));
        }
    }
    for (name, b) in &baseline.columns {
        let Some(c) = current.columns.get(name) else {
            out.push(json!({"feature_name": name, "constraint_check_type": "missing_column_check", "description": "the column is not in the current profile"}));
            continue;
        };
        let (expected, actual) = (completeness(b), completeness(c));
        if actual < expected {
            out.push(json!({
                "feature_name": name,
                "constraint_check_type": "completeness_check",
                "description": format!("completeness {actual:.4} is below the baseline's {expected:.4}"),
            }));
        }
        match (b, c) {
            (ColumnProfile::Numeric(b), ColumnProfile::Numeric(c))
                if b.min.is_none_or(|m| m >= 0.0) && c.min.is_some_and(|m| m < 0.0) =>
            {
                out.push(json!({
                    "feature_name": name,
                    "constraint_check_type": "num_constraints_check",
                    "description": format!("minimum {} is negative; the baseline has no negative value", c.min.unwrap_or_default()),
                }));
            }
            (ColumnProfile::Categorical(b), ColumnProfile::Categorical(c)) if b.is_exact() => {
                let unseen: u64 =
                    c.label_counts().iter().filter(|(label, _)| !b.counts.contains_key(*label)).map(|(_, n)| n).sum();
                if unseen > 0 && c.count > 0 {
                    out.push(json!({
                        "feature_name": name,
                        "constraint_check_type": "categorical_values_check",
                        "description": format!(
                            "{:.2}% of values are outside the baseline's domain",
                            100.0 * unseen as f64 / c.count as f64
                        ),
                    }));
                }
            }
            _ => {}
        }
    }
    json!({"violations": out})
}

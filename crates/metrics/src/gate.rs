//! The promotion gate: a candidate against an absolute floor and against the champion on the
//! same rows, rule by rule, as MLflow's `MetricThreshold(threshold, min_absolute_change,
//! min_relative_change, greater_is_better)`.
//!
//! A rule whose floor fails rejects the candidate (REJECT). A rule whose improvement over the
//! champion falls short holds it (HOLD): it is no worse than the floor but not better than
//! what serves. Otherwise the candidate is promoted (PROMOTE). Without a champion only floors
//! apply.

use serde::{Deserialize, Serialize};

use crate::{Metrics, greater_is_better};

/// A gate file that cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum GateError {
    #[error("{path}: {source}")]
    Yaml { path: String, source: serde_norway::Error },
    #[error("{path}: a gate needs at least one rule")]
    Empty { path: String },
}

/// One rule on one metric.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Rule {
    pub metric: String,
    /// The floor (or, when lower is better, the ceiling) the candidate must reach.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub threshold: Option<f64>,
    /// The least the candidate must improve on the champion, in the metric's units.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_absolute_change: Option<f64>,
    /// The least the candidate must improve on the champion, as a share of the champion's value.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_relative_change: Option<f64>,
    /// By default from the metric: lower is better for `log_loss`, `rmse` and `mae`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub greater_is_better: Option<bool>,
}

/// A gate (`gate.yaml`): its rules.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Gate {
    pub rules: Vec<Rule>,
}

impl Gate {
    pub fn from_yaml(text: &str, path: &str) -> Result<Gate, GateError> {
        let gate: Gate =
            serde_norway::from_str(text).map_err(|source| GateError::Yaml { path: path.to_string(), source })?;
        if gate.rules.is_empty() {
            return Err(GateError::Empty { path: path.to_string() });
        }
        Ok(gate)
    }

    /// The gate used when none is given: the candidate must be at least as good as the
    /// champion on macro-F1 (classification) or RMSE (regression).
    pub fn default_for(metrics: &Metrics) -> Gate {
        let metric = match metrics {
            Metrics::Classification(_) => "macro_f1",
            Metrics::Regression(_) => "rmse",
        };
        Gate {
            rules: vec![Rule {
                metric: metric.into(),
                threshold: None,
                min_absolute_change: Some(0.0),
                min_relative_change: None,
                greater_is_better: None,
            }],
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum Decision {
    Promote,
    Hold,
    Reject,
}

impl std::fmt::Display for Decision {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Decision::Promote => "PROMOTE",
            Decision::Hold => "HOLD",
            Decision::Reject => "REJECT",
        })
    }
}

/// What one rule made of the candidate.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Outcome {
    pub rule: Rule,
    pub candidate: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub champion: Option<f64>,
    /// `pass`, `hold` or `reject`.
    pub result: String,
    pub reason: String,
}

/// The gate's decision and every rule's outcome.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Verdict {
    pub decision: Decision,
    pub outcomes: Vec<Outcome>,
}

/// Applies a gate to a candidate's metrics and, when there is one, the champion's on the same rows.
pub fn decide(gate: &Gate, candidate: &Metrics, champion: Option<&Metrics>) -> Verdict {
    let mut decision = Decision::Promote;
    let mut outcomes = Vec::new();
    for rule in &gate.rules {
        let name = &rule.metric;
        let greater = rule.greater_is_better.unwrap_or_else(|| greater_is_better(name));
        let better = |a: f64, b: f64| if greater { a - b } else { b - a };
        let c = candidate.get(name).filter(|v| v.is_finite());
        let b = champion.and_then(|m| m.get(name)).filter(|v| v.is_finite());
        let (result, reason) = match c {
            None => ("reject", format!("the candidate has no finite {name}")),
            Some(c) => {
                let mut verdict = ("pass", String::new());
                if let Some(t) = rule.threshold {
                    if better(c, t) < 0.0 {
                        verdict = (
                            "reject",
                            format!("{name} {c:.6} is {} the threshold {t}", if greater { "below" } else { "above" }),
                        );
                    } else {
                        verdict.1 = format!("{name} {c:.6} meets the threshold {t}");
                    }
                }
                if verdict.0 == "pass" && (rule.min_absolute_change.is_some() || rule.min_relative_change.is_some()) {
                    match (champion, b) {
                        (None, _) => {
                            let note = "no champion to compare with";
                            verdict.1 =
                                if verdict.1.is_empty() { note.into() } else { format!("{}; {note}", verdict.1) };
                        }
                        (Some(_), None) => {
                            verdict = ("hold", format!("the champion has no finite {name} to compare with"))
                        }
                        (Some(_), Some(b)) => {
                            let gain = better(c, b);
                            let mut short = Vec::new();
                            if let Some(min) = rule.min_absolute_change
                                && gain < min
                            {
                                short.push(format!("improves on the champion's {b:.6} by {gain:.6}, less than {min}"));
                            }
                            if let Some(min) = rule.min_relative_change {
                                let relative = if b == 0.0 { f64::INFINITY * gain.signum() } else { gain / b.abs() };
                                if relative < min {
                                    short.push(format!(
                                        "improves on the champion's {b:.6} by {:.4}%, less than {}%",
                                        relative * 100.0,
                                        min * 100.0
                                    ));
                                }
                            }
                            verdict = if short.is_empty() {
                                ("pass", format!("{name} {c:.6} against the champion's {b:.6}: a gain of {gain:.6}"))
                            } else {
                                ("hold", format!("{name} {c:.6} {}", short.join("; ")))
                            };
                        }
                    }
                }
                verdict
            }
        };
        decision = match (decision, result) {
            (_, "reject") | (Decision::Reject, _) => Decision::Reject,
            (_, "hold") | (Decision::Hold, _) => Decision::Hold,
            _ => Decision::Promote,
        };
        outcomes.push(Outcome { rule: rule.clone(), candidate: c, champion: b, result: result.into(), reason });
    }
    Verdict { decision, outcomes }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Regression;

    fn m(rmse: f64) -> Metrics {
        Metrics::Regression(Regression { rows: 10, rmse, mae: rmse, r2: 0.5 })
    }

    #[test]
    fn floors_reject_and_improvements_hold() {
        let gate = Gate::from_yaml(
            "rules:\n  - {metric: rmse, threshold: 2.0, min_absolute_change: 0.1}\n  - {metric: r2, threshold: 0.4}\n",
            "g.yaml",
        )
        .expect("gate");
        assert_eq!(decide(&gate, &m(1.0), Some(&m(1.5))).decision, Decision::Promote);
        let hold = decide(&gate, &m(1.45), Some(&m(1.5)));
        assert_eq!(hold.decision, Decision::Hold);
        assert!(hold.outcomes[0].reason.contains("less than 0.1"), "{}", hold.outcomes[0].reason);
        let reject = decide(&gate, &m(2.5), Some(&m(3.0)));
        assert_eq!(reject.decision, Decision::Reject);
        assert!(reject.outcomes[0].reason.contains("above the threshold 2"), "{}", reject.outcomes[0].reason);
        // Without a champion only the floors apply.
        assert_eq!(decide(&gate, &m(1.9), None).decision, Decision::Promote);
        let relative =
            Gate::from_yaml("rules:\n  - {metric: rmse, min_relative_change: 0.05}\n", "g.yaml").expect("gate");
        assert_eq!(decide(&relative, &m(0.96), Some(&m(1.0))).decision, Decision::Hold);
        assert_eq!(decide(&relative, &m(0.94), Some(&m(1.0))).decision, Decision::Promote);
    }
}

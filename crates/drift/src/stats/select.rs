//! The choice of method and threshold per column (docs/drift-methods.md, section 2): Evidently's
//! default table, the methods' thresholds and comparisons, and the overrides of the drift
//! configuration.

use serde::{Deserialize, Serialize};

use super::verdict::Correction;

/// The largest reference (after dropping missing values) that counts as small.
pub const SMALL_REFERENCE_MAX: u64 = 1000;

/// The default minimum number of non-missing values in each sample.
pub const DEFAULT_MIN_ROWS: u64 = 30;

/// The default share of drifted columns at or above which the dataset has drifted.
pub const DEFAULT_DRIFT_SHARE: f64 = 0.5;

/// A drift method, by Evidently's stat-test name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Method {
    /// Two-sample Kolmogorov–Smirnov p-value; drift when `p ≤ threshold`.
    Ks,
    /// Evidently's goodness-of-fit chi-square p-value; drift when `p < threshold`.
    Chisquare,
    /// Two-proportion z-test p-value; drift when `p < threshold`.
    Z,
    /// Population stability index; drift when `PSI ≥ threshold`.
    Psi,
    /// Jensen–Shannon distance (natural log); drift when `JS ≥ threshold`.
    Jensenshannon,
    /// Wasserstein distance normalised by the reference standard deviation; drift when
    /// `W_norm ≥ threshold`.
    Wasserstein,
}

impl Method {
    /// All methods, in declaration order.
    pub const ALL: [Method; 6] =
        [Method::Ks, Method::Chisquare, Method::Z, Method::Psi, Method::Jensenshannon, Method::Wasserstein];

    /// Evidently's name of the method, as in the configuration and the reports.
    pub fn name(self) -> &'static str {
        match self {
            Method::Ks => "ks",
            Method::Chisquare => "chisquare",
            Method::Z => "z",
            Method::Psi => "psi",
            Method::Jensenshannon => "jensenshannon",
            Method::Wasserstein => "wasserstein",
        }
    }

    /// The method with that name.
    pub fn from_name(name: &str) -> Option<Method> {
        Method::ALL.into_iter().find(|m| m.name() == name)
    }

    /// Evidently's default threshold: 0.05 for the p-value tests, 0.1 for the distances.
    pub fn default_threshold(self) -> f64 {
        if self.is_p_value() { 0.05 } else { 0.1 }
    }

    /// Whether the score is a p-value (small means drift) rather than a distance.
    pub fn is_p_value(self) -> bool {
        matches!(self, Method::Ks | Method::Chisquare | Method::Z)
    }

    /// Whether the method applies to a column of this kind: every method to numeric columns;
    /// to categorical ones all but `ks` and `wasserstein`, which need ordered numbers.
    pub fn applies_to(self, kind: Kind) -> bool {
        kind == Kind::Numeric || !matches!(self, Method::Ks | Method::Wasserstein)
    }

    /// Evidently's decision on a score: `p ≤ threshold` for KS, `p < threshold` for chi-square and
    /// z, `value ≥ threshold` for the distances. A NaN score never drifts.
    pub fn drifts(self, score: f64, threshold: f64) -> bool {
        match self {
            Method::Ks => score <= threshold,
            Method::Chisquare | Method::Z => score < threshold,
            Method::Psi | Method::Jensenshannon | Method::Wasserstein => score >= threshold,
        }
    }
}

impl std::fmt::Display for Method {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// How a column is compared: as ordered numbers or as labels.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    Numeric,
    Categorical,
}

impl std::fmt::Display for Kind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Kind::Numeric => "numeric",
            Kind::Categorical => "categorical",
        })
    }
}

/// Evidently's default method (`_get_default_stattest`) from the reference size after dropping
/// missing values, and `distinct`, the number of distinct non-missing values of both samples
/// together.
///
/// | reference | kind | distinct | method |
/// |---|---|---|---|
/// | ≤ 1000 | numeric | > 5 | ks |
/// | ≤ 1000 | numeric | 3–5 | chisquare |
/// | ≤ 1000 | any | ≤ 2 | z |
/// | ≤ 1000 | categorical | > 2 | chisquare |
/// | > 1000 | numeric | > 5 | wasserstein |
/// | > 1000 | numeric | ≤ 5 | jensenshannon |
/// | > 1000 | categorical | any | jensenshannon |
pub fn default_method(kind: Kind, n_reference: u64, distinct: u64) -> Method {
    match (n_reference <= SMALL_REFERENCE_MAX, kind) {
        (true, _) if distinct <= 2 => Method::Z,
        (true, Kind::Numeric) if distinct > 5 => Method::Ks,
        (true, _) => Method::Chisquare,
        (false, Kind::Numeric) if distinct > 5 => Method::Wasserstein,
        (false, _) => Method::Jensenshannon,
    }
}

/// A method and/or threshold set for some columns; unset fields fall through to the next level.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Override {
    pub method: Option<Method>,
    pub threshold: Option<f64>,
}

impl Override {
    /// Parses `column=method` or `column=method:threshold` (e.g. `body_mass_g=psi:0.2`).
    pub fn parse_for_column(text: &str) -> Result<(String, Override), String> {
        let (column, rest) =
            text.split_once('=').ok_or_else(|| format!("{text:?} is not column=method[:threshold]"))?;
        let (column, rest) = (column.trim(), rest.trim());
        let (method, threshold) = match rest.split_once(':') {
            Some((m, t)) => (m, Some(t.parse::<f64>().map_err(|_| format!("{t:?} is not a threshold"))?)),
            None => (rest, None),
        };
        let method = Method::from_name(method).ok_or_else(|| {
            let names: Vec<&str> = Method::ALL.iter().map(|m| m.name()).collect();
            format!("{method:?} is not a method; use one of {}", names.join(", "))
        })?;
        Ok((column.to_string(), Override { method: Some(method), threshold }))
    }
}

/// The settings of the drift tests that are not per column.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TestConfig {
    /// A column with fewer non-missing values than this in either sample is `insufficient_data`.
    pub min_rows: u64,
    /// The dataset has drifted when the share of drifted columns is at least this.
    pub drift_share: f64,
    /// The multiple-testing correction of the p-value methods.
    pub correction: Correction,
    /// Method and threshold for all columns.
    pub all: Override,
    /// Method and threshold for numeric columns (Evidently's `num_stattest`).
    pub numeric: Override,
    /// Method and threshold for categorical columns (Evidently's `cat_stattest`).
    pub categorical: Override,
}

impl Default for TestConfig {
    fn default() -> Self {
        TestConfig {
            min_rows: DEFAULT_MIN_ROWS,
            drift_share: DEFAULT_DRIFT_SHARE,
            correction: Correction::None,
            all: Override::default(),
            numeric: Override::default(),
            categorical: Override::default(),
        }
    }
}

impl TestConfig {
    /// The method and threshold of a column: each resolved on its own, per column, then per
    /// kind, then for all columns, then the default method and that method's default threshold
    /// (Evidently's `resolve_stattest_threshold`). A threshold override alone keeps the default
    /// method.
    pub fn resolve(&self, kind: Kind, column: Option<&Override>, n_reference: u64, distinct: u64) -> (Method, f64) {
        let by_kind = match kind {
            Kind::Numeric => &self.numeric,
            Kind::Categorical => &self.categorical,
        };
        let levels = [column.copied().unwrap_or_default(), *by_kind, self.all];
        let method =
            levels.iter().find_map(|o| o.method).unwrap_or_else(|| default_method(kind, n_reference, distinct));
        let threshold = levels.iter().find_map(|o| o.threshold).unwrap_or_else(|| method.default_threshold());
        (method, threshold)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stats::fixture::{cases, name};

    #[test]
    fn default_method_matches_evidently_on_every_case() {
        let mut checked = 0;
        for case in cases() {
            let expected = &case["expected"];
            let Some(method) = expected["default_method"].as_str() else { continue };
            let kind = if case["kind"] == "numeric" { Kind::Numeric } else { Kind::Categorical };
            let n_reference = expected["reference_count"].as_u64().expect("a count");
            let distinct = expected["n_unique_combined"].as_u64().expect("a count");
            assert_eq!(default_method(kind, n_reference, distinct).name(), method, "{}", name(case));
            checked += 1;
        }
        assert_eq!(checked, 24, "every case Evidently could test");
    }

    #[test]
    fn default_table_boundaries() {
        use Kind::{Categorical, Numeric};
        use Method::*;
        let table = [
            ((Numeric, 1000, 6), Ks),
            ((Numeric, 1000, 5), Chisquare),
            ((Numeric, 1000, 3), Chisquare),
            ((Numeric, 1000, 2), Z),
            ((Numeric, 1000, 1), Z),
            ((Categorical, 1000, 3), Chisquare),
            ((Categorical, 1000, 2), Z),
            ((Numeric, 1001, 6), Wasserstein),
            ((Numeric, 1001, 5), Jensenshannon),
            ((Numeric, 1001, 2), Jensenshannon),
            ((Categorical, 1001, 2), Jensenshannon),
            ((Categorical, 1001, 50), Jensenshannon),
        ];
        for ((kind, n, u), method) in table {
            assert_eq!(default_method(kind, n, u), method, "{kind} column, n_R = {n}, u = {u}");
        }
    }

    #[test]
    fn thresholds_and_comparisons() {
        assert_eq!(Method::ALL.map(Method::default_threshold), [0.05, 0.05, 0.05, 0.1, 0.1, 0.1]);
        // At equality KS drifts, chi-square and z do not, the distances do.
        assert!(Method::Ks.drifts(0.05, 0.05));
        assert!(!Method::Chisquare.drifts(0.05, 0.05) && !Method::Z.drifts(0.05, 0.05));
        assert!(Method::Psi.drifts(0.1, 0.1) && Method::Jensenshannon.drifts(0.1, 0.1));
        assert!(Method::Wasserstein.drifts(0.1, 0.1) && !Method::Wasserstein.drifts(0.099, 0.1));
        assert!(!Method::Ks.drifts(f64::NAN, 0.05) && !Method::Psi.drifts(f64::NAN, 0.1));
    }

    #[test]
    fn names_round_trip_through_serde() {
        for method in Method::ALL {
            let json = serde_json::to_string(&method).expect("serialisable");
            assert_eq!(json, format!("\"{}\"", method.name()));
            assert_eq!(serde_json::from_str::<Method>(&json).expect("deserialisable"), method);
            assert_eq!(Method::from_name(method.name()), Some(method));
        }
        assert_eq!(Method::from_name("kl_div"), None);
    }

    #[test]
    fn overrides_resolve_per_column_then_kind_then_all() {
        let config = TestConfig {
            all: Override { method: Some(Method::Psi), threshold: Some(0.3) },
            numeric: Override { method: Some(Method::Jensenshannon), threshold: None },
            ..TestConfig::default()
        };
        let column = Override { method: None, threshold: Some(0.01) };
        // The numeric method, the column's threshold.
        assert_eq!(config.resolve(Kind::Numeric, Some(&column), 100, 50), (Method::Jensenshannon, 0.01));
        // No categorical override: the global method and threshold.
        assert_eq!(config.resolve(Kind::Categorical, None, 100, 50), (Method::Psi, 0.3));
        // A threshold alone keeps the default method.
        let config = TestConfig { all: Override { method: None, threshold: Some(0.2) }, ..TestConfig::default() };
        assert_eq!(config.resolve(Kind::Numeric, None, 100, 50), (Method::Ks, 0.2));
        // Nothing set: the default method and its threshold.
        assert_eq!(TestConfig::default().resolve(Kind::Numeric, None, 5000, 50), (Method::Wasserstein, 0.1));
        let parsed: TestConfig =
            serde_json::from_str(r#"{"min_rows": 10, "numeric": {"method": "psi"}}"#).expect("a configuration");
        assert_eq!((parsed.min_rows, parsed.numeric.method, parsed.drift_share), (10, Some(Method::Psi), 0.5));
    }
}

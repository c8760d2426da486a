//! Configuration from environment variables, read and checked once per cold start.

/// A missing or malformed environment variable. The message names the variable.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("configuration: environment variable {name}{problem}")]
pub struct ConfigError {
    pub name: String,
    /// What is wrong, starting with a space or a colon (e.g. ` is not set`).
    pub problem: String,
}

impl ConfigError {
    pub fn new(name: &str, problem: impl Into<String>) -> ConfigError {
        ConfigError { name: name.to_string(), problem: problem.into() }
    }

    /// The error type reported to Lambda's init/error.
    pub fn kind(&self) -> &'static str {
        "Config"
    }
}

/// Reads configuration through a lookup function, so that tests and the CLI can supply
/// values without touching the process environment.
pub struct Env<F: Fn(&str) -> Option<String>>(pub F);

impl<F: Fn(&str) -> Option<String>> std::fmt::Debug for Env<F> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Env")
    }
}

impl<F: Fn(&str) -> Option<String>> Env<F> {
    /// A variable's trimmed value, `None` when unset or empty.
    pub fn text(&self, name: &str) -> Option<String> {
        (self.0)(name).map(|v| v.trim().to_string()).filter(|v| !v.is_empty())
    }

    /// A required, non-empty variable.
    pub fn required(&self, name: &str) -> Result<String, ConfigError> {
        self.text(name).ok_or_else(|| ConfigError::new(name, " is not set"))
    }

    /// An optional variable parsed as `T`, with a default.
    pub fn parsed<T: std::str::FromStr>(&self, name: &str, default: T) -> Result<T, ConfigError> {
        match (self.0)(name) {
            Some(v) if !v.trim().is_empty() => v
                .trim()
                .parse()
                .map_err(|_| ConfigError::new(name, format!("={v:?} is not a valid {}", std::any::type_name::<T>()))),
            _ => Ok(default),
        }
    }

    /// A model version number such as `1` or `v1`.
    pub fn version(&self, name: &str) -> Result<u32, ConfigError> {
        let raw = self.required(name)?;
        match raw.trim_start_matches('v').parse::<u32>() {
            Ok(v) if v >= 1 => Ok(v),
            _ => Err(ConfigError::new(name, format!("={raw:?} is not a version number such as 1"))),
        }
    }

    /// An optional number that must be at least `min`.
    pub fn at_least<T>(&self, name: &str, default: T, min: T) -> Result<T, ConfigError>
    where
        T: std::str::FromStr + PartialOrd + std::fmt::Display,
    {
        let value = self.parsed(name, default)?;
        if value < min {
            return Err(ConfigError::new(name, format!(" must be at least {min}")));
        }
        Ok(value)
    }
}

/// The process environment.
pub fn process_env() -> Env<fn(&str) -> Option<String>> {
    Env(|name| std::env::var(name).ok())
}

/// The model version a function serves or watches.
#[derive(Debug, Clone, PartialEq)]
pub struct ModelConfig {
    pub bucket: String,
    pub model_name: String,
    pub model_version: u32,
    /// A second version of the same model scored beside the first, for comparison only.
    pub shadow_version: Option<u32>,
}

impl ModelConfig {
    /// `LAKE_BUCKET`, `MODEL_NAME`, `MODEL_VERSION` and the optional `SHADOW_MODEL_VERSION`.
    pub fn from_env<F: Fn(&str) -> Option<String>>(env: &Env<F>) -> Result<ModelConfig, ConfigError> {
        Ok(ModelConfig {
            bucket: env.required("LAKE_BUCKET")?,
            model_name: env.required("MODEL_NAME")?,
            model_version: env.version("MODEL_VERSION")?,
            shadow_version: match env.text("SHADOW_MODEL_VERSION") {
                Some(_) => Some(env.version("SHADOW_MODEL_VERSION")?),
                None => None,
            },
        })
    }
}

/// An environment of fixed pairs, for tests.
pub fn fixed(pairs: &[(&str, &str)]) -> Env<impl Fn(&str) -> Option<String> + use<>> {
    let pairs: Vec<(String, String)> = pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
    Env(move |k: &str| pairs.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_and_names_missing_or_bad_values() {
        let c = ModelConfig::from_env(&fixed(&[("LAKE_BUCKET", "b"), ("MODEL_NAME", "m"), ("MODEL_VERSION", "v3")]))
            .expect("complete");
        assert_eq!(c.model_version, 3);
        let e = ModelConfig::from_env(&fixed(&[("LAKE_BUCKET", "b"), ("MODEL_NAME", "m")])).expect_err("missing");
        assert_eq!(e.to_string(), "configuration: environment variable MODEL_VERSION is not set");
        let e = fixed(&[("N", "lots")]).parsed("N", 1usize).expect_err("bad");
        assert_eq!(e.to_string(), "configuration: environment variable N=\"lots\" is not a valid usize");
        let e = fixed(&[("N", "2")]).at_least("N", 5usize, 5).expect_err("small");
        assert_eq!(e.to_string(), "configuration: environment variable N must be at least 5");
        let e = fixed(&[("V", "0")]).version("V").expect_err("zero");
        assert!(e.to_string().contains("V=\"0\" is not a version number"), "{e}");
    }
}

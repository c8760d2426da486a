//! A/B testing: a champion and a challenger model version served by one function, each
//! request answered by one of them, sticky by a key.
//!
//! The key is the request's `x-request-key` header, else the value of the contract's id column
//! in its first instance; a request with neither is assigned at random (by its request id,
//! which is unique). The key's SHA-256, read as a number in [0, 1), below the weight sends the
//! request to the challenger: the same key always gets the same variant, and over many keys
//! the challenger's share tends to the weight. A request may pin a variant with
//! `x-target-variant: champion|challenger` (as SageMaker's `TargetVariant`), for testing.

use sha2::{Digest, Sha256};

use mlops_lambda::{ConfigError, Env};

/// The champion's variant name.
pub const CHAMPION: &str = "champion";
/// The challenger's variant name.
pub const CHALLENGER: &str = "challenger";
/// The header naming the key a request is assigned by.
pub const KEY_HEADER: &str = "x-request-key";
/// The header pinning a variant.
pub const TARGET_HEADER: &str = "x-target-variant";

/// Which model answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Variant {
    Champion,
    Challenger,
}

impl Variant {
    pub fn name(self) -> &'static str {
        match self {
            Variant::Champion => CHAMPION,
            Variant::Challenger => CHALLENGER,
        }
    }

    /// A variant by name, as `x-target-variant` gives it.
    pub fn parse(name: &str) -> Option<Variant> {
        match name.trim().to_ascii_lowercase().as_str() {
            CHAMPION => Some(Variant::Champion),
            CHALLENGER => Some(Variant::Challenger),
            _ => None,
        }
    }
}

/// `AB_MODEL_VERSION` (the challenger; unset, no A/B) and `AB_WEIGHT` (the challenger's share of
/// the keys, 0 to 1, default 0.5).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct AbConfig {
    pub version: u32,
    pub weight: f64,
}

impl AbConfig {
    pub fn from_env<F: Fn(&str) -> Option<String>>(env: &Env<F>) -> Result<Option<AbConfig>, ConfigError> {
        if env.text("AB_MODEL_VERSION").is_none() {
            return Ok(None);
        }
        let version = env.version("AB_MODEL_VERSION")?;
        let weight: f64 = env.parsed("AB_WEIGHT", 0.5)?;
        if !(0.0..=1.0).contains(&weight) {
            return Err(ConfigError::new("AB_WEIGHT", format!("={weight} is not a share between 0 and 1")));
        }
        Ok(Some(AbConfig { version, weight }))
    }
}

/// The point in [0, 1) a key maps to: the first 8 bytes of its SHA-256 over 2⁶⁴.
pub fn point(key: &str) -> f64 {
    let digest = Sha256::digest(key.as_bytes());
    let mut first = [0u8; 8];
    first.copy_from_slice(&digest[..8]);
    u64::from_be_bytes(first) as f64 / 18_446_744_073_709_551_616.0
}

/// The variant of a key: the challenger when its point falls below the weight.
pub fn assign(key: &str, weight: f64) -> Variant {
    if point(key) < weight { Variant::Challenger } else { Variant::Champion }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_same_key_gets_the_same_variant_and_the_split_follows_the_weight() {
        for weight in [0.1, 0.3, 0.5] {
            let keys: Vec<String> = (0..10_000).map(|i| format!("customer-{i}")).collect();
            let first: Vec<Variant> = keys.iter().map(|k| assign(k, weight)).collect();
            let again: Vec<Variant> = keys.iter().map(|k| assign(k, weight)).collect();
            assert_eq!(first, again, "sticky");
            let share = first.iter().filter(|v| **v == Variant::Challenger).count() as f64 / keys.len() as f64;
            // Three standard deviations of a binomial share over 10,000 keys: at most 0.015.
            let tolerance = 3.0 * (weight * (1.0 - weight) / keys.len() as f64).sqrt();
            assert!((share - weight).abs() <= tolerance, "weight {weight}: share {share}, tolerance {tolerance}");
        }
        assert!((0..1000).all(|i| assign(&format!("k{i}"), 0.0) == Variant::Champion));
        assert!((0..1000).all(|i| assign(&format!("k{i}"), 1.0) == Variant::Challenger));
    }

    #[test]
    fn variants_parse_by_name_and_bad_weights_fail_the_start() {
        assert_eq!(Variant::parse(" Challenger "), Some(Variant::Challenger));
        assert_eq!(Variant::parse("blue"), None);
        use mlops_lambda::env::fixed;
        assert_eq!(AbConfig::from_env(&fixed(&[])).expect("none"), None);
        let ab = AbConfig::from_env(&fixed(&[("AB_MODEL_VERSION", "2")])).expect("valid").expect("set");
        assert_eq!((ab.version, ab.weight), (2, 0.5));
        let e = AbConfig::from_env(&fixed(&[("AB_MODEL_VERSION", "2"), ("AB_WEIGHT", "2")])).expect_err("bad");
        assert!(e.to_string().contains("AB_WEIGHT=2 is not a share"), "{e}");
    }
}

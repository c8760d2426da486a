//! The S3 key layout of the lake and the model registry.
//!
//! ```text
//! raw/<dataset>/...                                  drop zone; only this prefix notifies ingest
//! curated/<dataset>/dt=YYYY-MM-DD/<batch>.parquet    valid rows, typed
//! quarantine/<dataset>/dt=YYYY-MM-DD/<batch>.jsonl   one line per bad row
//! profiles/<dataset>/<baseline-id>/dt=YYYY-MM-DD/<batch>.json  mergeable statistics, cut on
//!                                                    the baseline <baseline-id>
//! manifests/<dataset>/dt=YYYY-MM-DD/<batch>.json     the batch's accounting
//! models/<name>/v<N>/registration.json|model.onnx|contract.yaml|baseline.json|manifest.json
//! datasets/<dataset>/contract.yaml|baseline.json     the dataset's active contract and bins
//! reports/drift/<dataset>/<timestamp>.json
//! pipelines/<name>/<run-id>.json                     one record per retraining run
//! pipelines/<name>/<run-id>/...                      a run's snapshot, model, records
//! pipelines/<name>/running.json                      the run that holds the model's guard
//! pipelines/<name>/approvals/v<N>.json               a run waiting for a version's approval
//! pipelines/<name>/train.yaml|gate.yaml              the model's training parameters and gate
//! ```

use chrono::{DateTime, NaiveDate, Utc};
use sha2::{Digest, Sha256};

use mlops_contract::is_path_segment;

pub const RAW_PREFIX: &str = "raw/";

/// A source object under `raw/<dataset>/`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RawKey<'a> {
    pub dataset: &'a str,
    /// The rest of the key after `raw/<dataset>/`.
    pub name: &'a str,
}

/// Whether a key stays where its prefix says: not absolute, and no empty, `.` or `..` segment.
/// S3 keeps such keys literally, but file systems and some tools resolve them, so the lake
/// refuses them everywhere.
pub fn is_contained(key: &str) -> bool {
    !key.is_empty()
        && !key.starts_with('/')
        && key.split('/').all(|part| !part.is_empty() && part != "." && part != "..")
}

/// Splits `raw/<dataset>/<name>`; any other key, or one that is not [contained](is_contained),
/// is not a drop-zone object.
pub fn parse_raw_key(key: &str) -> Option<RawKey<'_>> {
    if !is_contained(key) {
        return None;
    }
    let rest = key.strip_prefix(RAW_PREFIX)?;
    let (dataset, name) = rest.split_once('/')?;
    (is_path_segment(dataset) && !name.is_empty() && !name.ends_with('/')).then_some(RawKey { dataset, name })
}

/// The batch id of a source object: its file stem and a digest of key and ETag, so a
/// redelivered event maps to the same outputs and a rewritten object to new ones.
///
/// The id never starts with `_` or `.`: readers that follow the Hive convention (Athena,
/// Spark, pyarrow datasets) skip such files, so `_export.csv` and `.hidden.csv` become
/// `export-…` and `hidden-…`, and a file with no usable stem becomes `batch-…`.
pub fn batch_id(source_key: &str, etag: &str) -> String {
    let file = source_key.rsplit('/').next().unwrap_or(source_key);
    let file = file.trim_start_matches(['.', '_', '-']);
    let stem: String = file
        .split('.')
        .next()
        .unwrap_or(file)
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() || c == '-' || c == '_' { c } else { '_' })
        .take(64)
        .collect();
    let stem = match stem.trim_start_matches(['_', '-']) {
        "" => "batch",
        stem => stem,
    };
    let digest =
        Sha256::new().chain_update(source_key).chain_update(b"\0").chain_update(etag.trim_matches('"')).finalize();
    format!("{stem}-{}", &hex::encode(digest)[..12])
}

/// Where the outputs of one batch go (curated rows: [`curated_key`], per date).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct BatchKeys {
    pub quarantine: String,
    pub profile: String,
    pub manifest: String,
}

impl BatchKeys {
    /// The keys of a batch of `dataset` ingested on `dt`, profiled on the baseline `baseline_id`.
    pub fn new(dataset: &str, baseline_id: &str, dt: NaiveDate, batch: &str) -> BatchKeys {
        let day = dt.format("%Y-%m-%d");
        BatchKeys {
            quarantine: format!("quarantine/{dataset}/dt={day}/{batch}.jsonl"),
            profile: format!("profiles/{dataset}/{baseline_id}/dt={day}/{batch}.json"),
            manifest: format!("manifests/{dataset}/dt={day}/{batch}.json"),
        }
    }
}

/// The curated Parquet object of a batch's rows dated `dt`. A batch whose rows span more
/// dates than ingest keeps open at once can have several files for a date: `part` numbers
/// them from 0, which has no suffix.
pub fn curated_key(dataset: &str, dt: NaiveDate, batch: &str, part: u32) -> String {
    let suffix = if part == 0 { String::new() } else { format!("-{part}") };
    format!("curated/{dataset}/dt={}/{batch}{suffix}.parquet", dt.format("%Y-%m-%d"))
}

/// The prefix holding every profile of a dataset, whatever baseline it was cut on.
pub fn profiles_prefix(dataset: &str) -> String {
    format!("profiles/{dataset}/")
}

/// A batch profile's key, split: the baseline it was cut on and its day.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProfileKey<'a> {
    pub baseline_id: &'a str,
    pub day: NaiveDate,
}

/// Splits `profiles/<dataset>/<baseline-id>/dt=YYYY-MM-DD/<batch>.json`.
pub fn parse_profile_key<'a>(dataset: &str, key: &'a str) -> Option<ProfileKey<'a>> {
    let rest = key.strip_prefix("profiles/")?.strip_prefix(dataset)?.strip_prefix('/')?;
    let mut parts = rest.split('/');
    let (baseline_id, day, batch) = (parts.next()?, parts.next()?, parts.next()?);
    if parts.next().is_some() || !is_path_segment(baseline_id) || !batch.ends_with(".json") {
        return None;
    }
    let day = NaiveDate::parse_from_str(day.strip_prefix("dt=")?, "%Y-%m-%d").ok()?;
    Some(ProfileKey { baseline_id, day })
}

/// The prefix of every version of a model.
pub fn model_root(name: &str) -> String {
    format!("models/{name}/")
}

/// The key of one file of a model version.
pub fn model_file(name: &str, version: u32, file: &str) -> String {
    format!("models/{name}/v{version}/{file}")
}

/// Parses the version out of a key under `models/<name>/v<N>/`.
pub fn model_version_of(name: &str, key: &str) -> Option<u32> {
    key.strip_prefix(&model_root(name))?.strip_prefix('v')?.split('/').next()?.parse().ok()
}

pub fn dataset_contract(dataset: &str) -> String {
    format!("datasets/{dataset}/contract.yaml")
}

pub fn dataset_baseline(dataset: &str) -> String {
    format!("datasets/{dataset}/baseline.json")
}

pub fn drift_report(dataset: &str, at: DateTime<Utc>) -> String {
    format!("reports/drift/{dataset}/{}.json", at.format("%Y-%m-%dT%H-%M-%SZ"))
}

/// The model-quality report of a check as of `at`.
pub fn quality_report(model: &str, at: DateTime<Utc>) -> String {
    format!("reports/quality/{model}/{}.json", at.format("%Y-%m-%dT%H-%M-%SZ"))
}

/// The record of a retraining run.
pub fn pipeline_record(name: &str, run_id: &str) -> String {
    format!("pipelines/{name}/{run_id}.json")
}

/// A file a retraining run writes (its snapshot, model, training and evaluation records).
pub fn pipeline_file(name: &str, run_id: &str, file: &str) -> String {
    format!("pipelines/{name}/{run_id}/{file}")
}

/// The guard of a model's retraining: it names the run in progress.
pub fn pipeline_guard(name: &str) -> String {
    format!("pipelines/{name}/running.json")
}

/// The request of a run waiting for the approval of `version` (its task token).
pub fn pipeline_approval_request(name: &str, version: u32) -> String {
    format!("pipelines/{name}/approvals/v{version}.json")
}

/// A model's pipeline settings: `train.yaml` (training parameters), `gate.yaml` (the gate).
pub fn pipeline_settings(name: &str, file: &str) -> String {
    format!("pipelines/{name}/{file}")
}

/// Whether a run id is usable in keys: 1 to 80 ASCII letters, digits, `-` and `_`, not
/// starting with `_` or `-` (Step Functions execution names are of this kind).
pub fn is_run_id(id: &str) -> bool {
    (1..=80).contains(&id.len())
        && id.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        && !id.starts_with(['_', '-'])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn raw_keys() {
        assert_eq!(parse_raw_key("raw/penguins/a/b.csv"), Some(RawKey { dataset: "penguins", name: "a/b.csv" }));
        assert_eq!(parse_raw_key("curated/penguins/x.csv"), None);
        assert_eq!(parse_raw_key("raw/penguins/"), None);
        assert_eq!(parse_raw_key("raw/x.csv"), None);
        assert_eq!(parse_raw_key("raw/../x.csv"), None);
        for escaping in [
            "raw/penguins/../../models/penguins/v1/manifest.json",
            "raw/penguins/./a.csv",
            "raw/penguins//a.csv",
            "/raw/penguins/a.csv",
            "raw/penguins/a/..",
        ] {
            assert_eq!(parse_raw_key(escaping), None, "{escaping}");
            assert!(!is_contained(escaping), "{escaping}");
        }
        assert!(is_contained("raw/penguins/a.b..c.csv"));
    }

    #[test]
    fn batch_ids_follow_key_and_etag() {
        for (key, stem) in [
            ("raw/p/_export.csv", "export-"),
            ("raw/p/.hidden.csv", "hidden-"),
            ("raw/p/__-.x.csv", "x-"),
            ("raw/p/ spaced name.csv", "spaced_name-"),
            ("raw/p/....csv", "csv-"),
            ("raw/p/_", "batch-"),
            ("raw/p/-", "batch-"),
        ] {
            let id = batch_id(key, "e");
            assert!(id.starts_with(stem), "{key}: {id}");
        }
        assert_ne!(batch_id("raw/p/_export.csv", "e"), batch_id("raw/p/export.csv", "e"));
        let a = batch_id("raw/p/batch-01.csv", "\"abc\"");
        assert_eq!(a, batch_id("raw/p/batch-01.csv", "abc"));
        assert!(a.starts_with("batch-01-"));
        assert_ne!(a, batch_id("raw/p/batch-01.csv", "abd"));
        assert_ne!(a, batch_id("raw/q/batch-01.csv", "abc"));
    }

    #[test]
    fn layout() {
        let dt = NaiveDate::from_ymd_opt(2026, 1, 2).expect("date");
        let keys = BatchKeys::new("p", "e1", dt, "b-1");
        assert_eq!(curated_key("p", dt, "b-1", 0), "curated/p/dt=2026-01-02/b-1.parquet");
        assert_eq!(curated_key("p", dt, "b-1", 2), "curated/p/dt=2026-01-02/b-1-2.parquet");
        assert_eq!(keys.quarantine, "quarantine/p/dt=2026-01-02/b-1.jsonl");
        assert_eq!(keys.profile, "profiles/p/e1/dt=2026-01-02/b-1.json");
        assert_eq!(parse_profile_key("p", &keys.profile), Some(ProfileKey { baseline_id: "e1", day: dt }));
        assert_eq!(parse_profile_key("p", "profiles/p/dt=2026-01-02/b-1.json"), None);
        assert_eq!(parse_profile_key("p", "profiles/pp/e1/dt=2026-01-02/b-1.json"), None);
        assert_eq!(model_file("m", 3, "model.onnx"), "models/m/v3/model.onnx");
        assert_eq!(model_version_of("m", "models/m/v12/manifest.json"), Some(12));
        assert_eq!(model_version_of("m", "models/mm/v1/manifest.json"), None);
        assert_eq!(pipeline_record("m", "r1"), "pipelines/m/r1.json");
        assert_eq!(pipeline_file("m", "r1", "model.onnx"), "pipelines/m/r1/model.onnx");
        assert!(is_run_id("0f8e-1a_b") && !is_run_id("a/b") && !is_run_id("_x") && !is_run_id(""));
    }
}

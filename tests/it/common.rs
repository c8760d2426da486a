//! Shared helpers: a fresh embedded lake per test and the penguins example.

use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};
use mlops::commands::model::{RegisterArgs, register};
use mlops_devkit::lake_server::{EmbeddedLake, ensure_bucket};
use mlops_flows::ingest::{IngestOutcome, IngestSummary};
use mlops_lake::Lake;
use mlops_lambda::Env;

pub const BUCKET: &str = "mlops-lake";

pub fn repo() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

pub fn example(file: &str) -> PathBuf {
    repo().join("examples/penguins").join(file)
}

/// An embedded lake in a temporary directory, with the bucket created.
pub struct TestLake {
    pub server: EmbeddedLake,
    pub lake: Lake,
    _dir: tempfile::TempDir,
}

impl TestLake {
    pub async fn start() -> TestLake {
        let dir = tempfile::tempdir().expect("temp dir");
        let server = EmbeddedLake::start(dir.path(), 0).await.expect("embedded lake starts");
        let client = server.client();
        ensure_bucket(&client, BUCKET).await.expect("bucket");
        TestLake { server, lake: Lake::new(client, BUCKET), _dir: dir }
    }

    /// A lake with the penguins model registered as v1.
    pub async fn with_penguins() -> TestLake {
        let t = TestLake::start().await;
        let manifest = register(
            &t.lake,
            &RegisterArgs {
                name: "penguins".into(),
                model: example("model.onnx"),
                contract: example("contract.yaml"),
                train: example("train.csv"),
                metrics: Some(example("metrics.json")),
                class_labels: Some(vec!["Adelie".into(), "Chinstrap".into(), "Gentoo".into()]),
                lineage: Default::default(),
            },
        )
        .await
        .expect("penguins registers");
        assert_eq!(manifest.version, 1);
        t
    }

    /// Publishes the penguins ground-truth dataset and ingests `file` (inference ids and
    /// species) as its batch, as a drop under `raw/penguins-labels/` would.
    pub async fn ingest_labels(&self, file: &std::path::Path) {
        let contract = mlops_contract::Contract::load(&example("labels.yaml")).expect("labels contract");
        mlops::commands::lake::publish_dataset(&self.lake, &contract, &[file.to_path_buf()])
            .await
            .expect("labels dataset");
        let bytes = std::fs::read(file).expect("labels");
        let key = "raw/penguins-labels/labels.csv";
        let size = bytes.len() as u64;
        let etag = self.lake.put(key, bytes, "text/csv").await.expect("put").expect("etag");
        let event = mlops_lambda::events::object_created(BUCKET, key, &etag, size, Utc::now()).expect("event");
        ingest::invoke(&self.lake, &Default::default(), &event).await.expect("labels ingested");
    }

    /// Puts a batch file under `raw/penguins/` and runs ingest on its notification.
    pub async fn ingest_batch(&self, file: &str, at: DateTime<Utc>) -> IngestSummary {
        let bytes = std::fs::read(example(&format!("batches/{file}"))).expect("batch file");
        let key = format!("raw/penguins/{file}");
        let size = bytes.len() as u64;
        let etag = self.lake.put(&key, bytes, "text/csv").await.expect("put").expect("etag");
        let event = mlops_lambda::events::object_created(BUCKET, &key, &etag, size, at).expect("event");
        let outcomes = ingest::invoke(&self.lake, &Default::default(), &event).await.expect("ingest succeeds");
        let mut outcomes: Vec<IngestOutcome> = serde_json::from_value(outcomes).expect("outcomes");
        match outcomes.pop() {
            Some(IngestOutcome::Ingested(summary)) => summary,
            other => panic!("expected an ingested batch, got {other:?}"),
        }
    }
}

/// Function configuration as the template sets it, without touching the process environment.
pub fn env(extra: &'static [(&'static str, &'static str)]) -> Env<impl Fn(&str) -> Option<String>> {
    Env(move |name: &str| {
        extra.iter().find(|(k, _)| *k == name).map(|(_, v)| v.to_string()).or_else(|| match name {
            "LAKE_BUCKET" => Some(BUCKET.into()),
            "MODEL_NAME" => Some("penguins".into()),
            "MODEL_VERSION" => Some("1".into()),
            _ => None,
        })
    })
}

pub fn at(rfc3339: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(rfc3339).expect("timestamp").to_utc()
}

/// The columns of a Parquet file, each with the Hive type Athena reads it as.
pub fn hive_columns(parquet: Vec<u8>) -> Vec<(String, String)> {
    let reader = parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(bytes::Bytes::from(parquet))
        .expect("Parquet");
    reader
        .schema()
        .fields()
        .iter()
        .map(|f| {
            let hive = match f.data_type() {
                arrow_schema::DataType::Float64 => "double",
                arrow_schema::DataType::Int64 => "bigint",
                arrow_schema::DataType::Boolean => "boolean",
                arrow_schema::DataType::Utf8 => "string",
                arrow_schema::DataType::Timestamp(_, _) => "timestamp",
                other => panic!("{}: no Hive type for {other}", f.name()),
            };
            (f.name().clone(), hive.to_string())
        })
        .collect()
}

//! `ingest`: S3 `ObjectCreated` events on `raw/<dataset>/` → curated, quarantine, profile.

mod config;

use aws_lambda_events::event::s3::{S3Event, S3EventRecord};
use mlops_flows::ingest::{IngestLimits, IngestOutcome, Source, ingest_object};
use mlops_lake::Lake;

pub use config::{Config, limits_from_env};

/// Failures of an invocation.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("the event is not an S3 notification: {0}")]
    Event(String),
    /// Some records failed; the others were processed. Lambda retries the event, and since
    /// ingest is idempotent the records that succeeded are rewritten unchanged.
    #[error("{failed} of {total} records failed: {messages}")]
    Records { failed: usize, total: usize, messages: String },
}

impl From<Error> for lambda_runtime::Diagnostic {
    fn from(e: Error) -> Self {
        let error_type = match e {
            Error::Event(_) => "InvalidEvent",
            Error::Records { .. } => "RecordsFailed",
        };
        lambda_runtime::Diagnostic { error_type: error_type.into(), error_message: e.to_string() }
    }
}

/// Processes every record of an S3 event, each independently of the others, within the
/// memory `limits`.
pub async fn handle(lake: &Lake, limits: &IngestLimits, event: S3Event) -> Result<Vec<IngestOutcome>, Error> {
    let total = event.records.len();
    let mut outcomes = Vec::with_capacity(total);
    let mut failures = Vec::new();
    for record in &event.records {
        match handle_record(lake, limits, record).await {
            Ok(outcome) => {
                match &outcome {
                    IngestOutcome::Ingested(s) => tracing::info!(
                        source = %s.source, batch = %s.batch, rows_read = s.counts.rows_read,
                        curated = s.counts.curated, quarantined = s.counts.quarantined,
                        batch_error = s.batch_error.as_deref().unwrap_or(""), "batch ingested"
                    ),
                    IngestOutcome::Skipped { key, reason } => tracing::warn!(%key, %reason, "object skipped"),
                }
                outcomes.push(outcome);
            }
            Err(message) => {
                tracing::error!(%message, "record failed");
                failures.push(message);
            }
        }
    }
    if failures.is_empty() {
        Ok(outcomes)
    } else {
        Err(Error::Records { failed: failures.len(), total, messages: failures.join("; ") })
    }
}

async fn handle_record(lake: &Lake, limits: &IngestLimits, record: &S3EventRecord) -> Result<IngestOutcome, String> {
    let bucket = record.s3.bucket.name.as_deref().ok_or("a record has no bucket name")?;
    let encoded = record.s3.object.key.as_deref().ok_or("a record has no object key")?;
    let key = decode_key(encoded)?;
    let etag = record.s3.object.e_tag.as_deref().filter(|e| !e.is_empty());
    let source = Source { key: &key, etag, dt: record.event_time.date_naive() };
    ingest_object(&lake.with_bucket(bucket), &source, limits).await.map_err(|e| format!("s3://{bucket}/{key}: {e}"))
}

/// S3 event keys are URL-encoded with `+` for spaces.
fn decode_key(encoded: &str) -> Result<String, String> {
    percent_encoding::percent_decode_str(&encoded.replace('+', " "))
        .decode_utf8()
        .map(|k| k.into_owned())
        .map_err(|_| format!("object key {encoded:?} does not decode to UTF-8"))
}

/// Runs one S3 event given as JSON, as Lambda would, and returns the outcomes as JSON.
pub async fn invoke(lake: &Lake, limits: &IngestLimits, event: &str) -> Result<serde_json::Value, Error> {
    let event: S3Event = serde_json::from_str(event).map_err(|e| Error::Event(e.to_string()))?;
    let outcomes = handle(lake, limits, event).await?;
    serde_json::to_value(outcomes).map_err(|e| Error::Event(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_event_keys() {
        assert_eq!(decode_key("raw/penguins/my+batch%2B1.csv"), Ok("raw/penguins/my batch+1.csv".to_string()));
        assert!(decode_key("raw/%FF.csv").is_err());
    }

    #[test]
    fn builds_events_that_decode_back() {
        let at = chrono::DateTime::parse_from_rfc3339("2026-03-04T05:06:07Z").expect("time").to_utc();
        let json = mlops_lambda::events::object_created("b", "raw/p/a b+c.csv", "\"e1\"", 12, at).expect("event");
        let event: S3Event = serde_json::from_str(&json).expect("S3 event");
        let record = &event.records[0];
        let key = decode_key(record.s3.object.key.as_deref().expect("key")).expect("decodes");
        assert_eq!(key, "raw/p/a b+c.csv");
        assert_eq!(record.s3.object.e_tag.as_deref(), Some("e1"));
        assert_eq!(record.event_time, at);
    }

    #[test]
    fn reads_the_sample_event() {
        let event: S3Event = serde_json::from_str(include_str!("../../../events/s3-put.json")).expect("S3 event");
        assert_eq!(event.records[0].s3.object.key.as_deref(), Some("raw/penguins/batch-01.csv"));
    }
}

//! Events in the shapes Lambda delivers them, built from the samples in `events/`.

/// A sample event of `events/` that does not parse (it is compiled in, so only an edit of the
/// sample can cause this).
#[derive(Debug, thiserror::Error)]
#[error("events/{file} is not valid JSON: {source}")]
pub struct SampleError {
    pub file: &'static str,
    pub source: serde_json::Error,
}

fn sample(file: &'static str, text: &str) -> Result<serde_json::Value, SampleError> {
    serde_json::from_str(text).map_err(|source| SampleError { file, source })
}

/// Characters S3 leaves unencoded in event keys, besides letters and digits.
const KEY_ENCODING: &percent_encoding::AsciiSet =
    &percent_encoding::NON_ALPHANUMERIC.remove(b'-').remove(b'_').remove(b'.').remove(b'~');

/// An `ObjectCreated:Put` notification for one object, in the shape S3 delivers (the
/// shape of `events/s3-put.json`), for local runs that stand in for the bucket notification.
pub fn object_created(
    bucket: &str,
    key: &str,
    etag: &str,
    size: u64,
    at: chrono::DateTime<chrono::Utc>,
) -> Result<String, SampleError> {
    let mut event = sample("s3-put.json", include_str!("../../../events/s3-put.json"))?;
    let record = &mut event["Records"][0];
    record["eventTime"] = at.format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string().into();
    record["s3"]["bucket"]["name"] = bucket.into();
    record["s3"]["bucket"]["arn"] = format!("arn:aws:s3:::{bucket}").into();
    let encoded: String = key
        .split('/')
        .map(|part| percent_encoding::utf8_percent_encode(part, KEY_ENCODING).to_string())
        .collect::<Vec<_>>()
        .join("/");
    record["s3"]["object"]["key"] = encoded.into();
    record["s3"]["object"]["eTag"] = etag.trim_matches('"').into();
    record["s3"]["object"]["size"] = size.into();
    Ok(event.to_string())
}

/// A scheduled EventBridge event at `at`, in the shape of `events/schedule.json`.
pub fn scheduled(at: chrono::DateTime<chrono::Utc>) -> Result<String, SampleError> {
    let mut event = sample("schedule.json", include_str!("../../../events/schedule.json"))?;
    event["time"] = at.format("%Y-%m-%dT%H:%M:%SZ").to_string().into();
    Ok(event.to_string())
}

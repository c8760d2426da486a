//! ingest: every row curated or quarantined, idempotent, records isolated.

use mlops_flows::ingest::{IngestOutcome, QuarantineRecord};

use crate::common::{BUCKET, TestLake, at};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_row_is_curated_or_quarantined_with_its_reason() {
    let t = TestLake::with_penguins().await;
    let s = t.ingest_batch("batch-02.csv", at("2026-03-01T10:00:00Z")).await;
    assert_eq!((s.counts.rows_read, s.counts.curated, s.counts.quarantined), (306, 300, 6));
    assert_eq!(s.counts.rows_read, s.counts.curated + s.counts.quarantined);
    assert_eq!(s.curated_keys.len(), 1, "no event-time column: one partition, the event's date");
    let key = &s.curated_keys[0];
    assert!(key.starts_with("curated/penguins/dt=2026-03-01/batch-02-") && key.ends_with(".parquet"), "{key}");

    // Curated rows are Parquet, typed per the contract.
    let curated = t.lake.get(key).await.expect("curated").bytes;
    let reader = parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(bytes::Bytes::from(curated))
        .expect("a Parquet file");
    let types: Vec<String> =
        reader.schema().fields().iter().map(|f| format!("{}:{}", f.name(), f.data_type())).collect();
    assert_eq!(
        types,
        [
            "species:Utf8",
            "island:Utf8",
            "bill_length_mm:Float64",
            "bill_depth_mm:Float64",
            "flipper_length_mm:Float64",
            "body_mass_g:Float64",
            "sex:Utf8",
            "year:Int64"
        ]
    );
    let rows: usize = reader.build().expect("reader").map(|b| b.expect("batch").num_rows()).sum();
    assert_eq!(rows, 300);

    let quarantine = t.lake.get(&s.quarantine_key).await.expect("quarantine").bytes;
    let records: Vec<QuarantineRecord> =
        String::from_utf8_lossy(&quarantine).lines().map(|l| serde_json::from_str(l).expect("JSON line")).collect();
    let lines: Vec<u64> = records.iter().filter_map(|r| r.line).collect();
    assert_eq!(lines, [18, 67, 124, 183, 241, 299]);
    let first: Vec<&str> = records.iter().map(|r| r.reasons[0].message.as_str()).collect();
    assert_eq!(
        first,
        [
            "bill_length_mm: \"abc\" is not a number",
            "island: \"Atlantis\" is not one of Biscoe, Dream, Torgersen",
            "body_mass_g: -3650 is below the minimum 2000",
            "flipper_length_mm: 1950 is above the maximum 250",
            "island: a value is required",
            "the row has 5 fields but the header has 8",
        ]
    );
    assert!(records.iter().all(|r| r.source == "raw/penguins/batch-02.csv" && r.raw.is_some()));

    let profile = t.lake.get(&s.profile_key).await.expect("profile").bytes;
    let profile = mlops_drift::Profile::from_json(&profile, "profile").expect("profile JSON");
    assert_eq!(profile.rows, 300);

    let manifest = t.lake.get(&s.manifest_key).await.expect("manifest").bytes;
    let manifest: mlops_flows::ingest::BatchManifest = serde_json::from_slice(&manifest).expect("manifest JSON");
    assert_eq!(manifest.counts, s.counts);
    assert_eq!(manifest.source, "raw/penguins/batch-02.csv");
    assert!(s.manifest_key.starts_with("manifests/penguins/dt=2026-03-01/batch-02-"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_redelivered_event_rewrites_the_same_objects() {
    let t = TestLake::with_penguins().await;
    let first = t.ingest_batch("batch-01.csv", at("2026-03-01T10:00:00Z")).await;
    let outputs = |t: &TestLake| {
        let lake = t.lake.clone();
        async move {
            let mut all = Vec::new();
            for prefix in ["curated/", "quarantine/", "profiles/"] {
                for key in lake.list(prefix).await.expect("list") {
                    let bytes = lake.get(&key).await.expect("get").bytes;
                    all.push((key, bytes));
                }
            }
            all
        }
    };
    let before = outputs(&t).await;
    // Same object, same ETag, same event time: the redelivery of the same notification.
    let again = t.ingest_batch("batch-01.csv", at("2026-03-01T10:00:00Z")).await;
    assert_eq!(first, again);
    assert_eq!(before, outputs(&t).await, "no new objects and identical contents");
    assert_eq!(before.len(), 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_sample_s3_event_ingests_its_object() {
    let t = TestLake::with_penguins().await;
    let bytes = std::fs::read(crate::common::example("batches/batch-01.csv")).expect("batch");
    t.lake.put("raw/penguins/batch-01.csv", bytes, "text/csv").await.expect("put");
    let out =
        ingest::invoke(&t.lake, &Default::default(), include_str!("../../events/s3-put.json")).await.expect("ingest");
    assert_eq!(out[0]["status"], "ingested", "{out}");
    assert_eq!(out[0]["counts"]["curated"], 300);
    // The profile is filed under the baseline it was cut on: v1's.
    let (v1, _) = mlops_lake::registry::load(&t.lake, "penguins", 1).await.expect("v1");
    let baseline_id = v1.manifest.baseline_id.expect("v1 records its baseline");
    let prefix = format!("profiles/penguins/{baseline_id}/dt=2026-01-01/");
    assert!(out[0]["profile_key"].as_str().expect("key").starts_with(&prefix), "{out}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn foreign_keys_are_skipped_and_one_failure_spares_the_others() {
    let t = TestLake::with_penguins().await;
    let when = at("2026-03-01T10:00:00Z");
    for key in ["notes/readme.txt", "raw/unknown-dataset/x.csv"] {
        t.lake.put(key, b"a,b\n1,2\n".to_vec(), "text/csv").await.expect("put");
        let event = mlops_lambda::events::object_created(BUCKET, key, "e", 8, when).expect("event");
        let out: Vec<IngestOutcome> =
            serde_json::from_value(ingest::invoke(&t.lake, &Default::default(), &event).await.expect("no error"))
                .expect("outcomes");
        assert!(matches!(&out[0], IngestOutcome::Skipped { key: k, .. } if k.as_str() == key), "{out:?}");
    }

    // Two records in one event: a missing object and a good one.
    let good = std::fs::read(crate::common::example("batches/batch-01.csv")).expect("batch");
    t.lake.put("raw/penguins/good.csv", good, "text/csv").await.expect("put");
    let missing: serde_json::Value = serde_json::from_str(
        &mlops_lambda::events::object_created(BUCKET, "raw/penguins/gone.csv", "e", 1, when).expect("event"),
    )
    .expect("json");
    let mut event: serde_json::Value = serde_json::from_str(
        &mlops_lambda::events::object_created(BUCKET, "raw/penguins/good.csv", "e", 1, when).expect("event"),
    )
    .expect("json");
    event["Records"].as_array_mut().expect("records").insert(0, missing["Records"][0].clone());
    let e = ingest::invoke(&t.lake, &Default::default(), &event.to_string()).await.expect_err("one record fails");
    let message = e.to_string();
    assert!(message.starts_with("1 of 2 records failed: s3://mlops-lake/raw/penguins/gone.csv"), "{message}");
    let curated = t.lake.list("curated/penguins/").await.expect("list");
    assert_eq!(curated.len(), 1, "the good record was processed");
    assert!(curated[0].contains("/good-"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keys_that_escape_their_prefix_are_refused_by_ingest_and_by_the_lake() {
    let t = TestLake::with_penguins().await;
    let manifest_key = "models/penguins/v1/manifest.json";
    let manifest = t.lake.get(manifest_key).await.expect("manifest").bytes;
    // An event naming a key that climbs out of raw/: skipped with its reason, nothing copied.
    for key in ["raw/penguins/../../models/penguins/v1/manifest.json", "raw/penguins//a.csv", "raw/penguins/./a.csv"] {
        let event =
            mlops_lambda::events::object_created(BUCKET, key, "e", 8, at("2026-03-01T10:00:00Z")).expect("event");
        let out: Vec<IngestOutcome> =
            serde_json::from_value(ingest::invoke(&t.lake, &Default::default(), &event).await.expect("no error"))
                .expect("outcomes");
        match &out[0] {
            IngestOutcome::Skipped { reason, .. } => assert!(reason.contains("'..' segment; refused"), "{reason}"),
            other => panic!("{key}: expected a refusal, got {other:?}"),
        }
    }
    assert!(t.lake.list("quarantine/").await.expect("list").is_empty(), "nothing was quarantined from models/");
    // The embedded lake refuses such keys itself (S3 would keep them literally).
    for key in ["raw/../models/penguins/v1/manifest.json", "raw/penguins/./x.csv", ".."] {
        let e = t.lake.put(key, b"overwritten".to_vec(), "text/plain").await.expect_err(key);
        assert!(e.to_string().contains("InvalidArgument") || e.to_string().contains("segment"), "{key}: {e}");
    }
    assert_eq!(t.lake.get(manifest_key).await.expect("manifest").bytes, manifest, "the registry is untouched");
}

/// A dataset with an event-time column, published with a small training file.
async fn publish_events(t: &TestLake) {
    let dir = tempfile::tempdir().expect("temp dir");
    let contract = mlops_contract::Contract::from_yaml(
        "dataset: events\nevent_time: t\ncolumns:\n  - {name: id, type: int}\n  - {name: t, type: timestamp}\n  \
         - {name: x, type: float}\n",
        "events.yaml",
    )
    .expect("contract");
    let train = dir.path().join("train.csv");
    std::fs::write(&train, "id,t,x\n1,2026-04-01T00:00:00Z,0.5\n2,2026-04-02T00:00:00Z,1.5\n").expect("train");
    mlops::commands::lake::publish_dataset(&t.lake, &contract, &[train]).await.expect("dataset");
}

async fn ingest_raw(t: &TestLake, key: &str, bytes: Vec<u8>) -> mlops_flows::ingest::IngestSummary {
    let size = bytes.len() as u64;
    let etag = t.lake.put(key, bytes, "text/csv").await.expect("put").expect("etag");
    let event =
        mlops_lambda::events::object_created(BUCKET, key, &etag, size, at("2026-04-10T10:00:00Z")).expect("event");
    let out: Vec<IngestOutcome> =
        serde_json::from_value(ingest::invoke(&t.lake, &Default::default(), &event).await.expect("ingest"))
            .expect("outcomes");
    match out.into_iter().next() {
        Some(IngestOutcome::Ingested(s)) => s,
        other => panic!("expected an ingested batch, got {other:?}"),
    }
}

/// Every row of a curated file, as (id, date of t, x).
fn curated_rows(bytes: Vec<u8>) -> Vec<(i64, String, f64)> {
    use arrow_array::cast::AsArray as _;
    use arrow_array::types::{Float64Type, Int64Type, TimestampMicrosecondType};
    let reader = parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(bytes::Bytes::from(bytes))
        .expect("a Parquet file")
        .build()
        .expect("reader");
    let mut rows = Vec::new();
    for batch in reader {
        let batch = batch.expect("batch");
        let ids = batch.column(0).as_primitive::<Int64Type>();
        let ts = batch.column(1).as_primitive::<TimestampMicrosecondType>();
        let xs = batch.column(2).as_primitive::<Float64Type>();
        for i in 0..batch.num_rows() {
            let day = chrono::DateTime::from_timestamp_micros(ts.value(i)).expect("time").date_naive();
            rows.push((ids.value(i), day.to_string(), xs.value(i)));
        }
    }
    rows
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_shuffled_batch_over_five_dates_gives_one_file_per_date_with_every_row() {
    const ROWS: i64 = 200_000;
    let t = TestLake::start().await;
    publish_events(&t).await;
    // A fixed permutation of the ids (an odd multiplier modulo a power of two, cut to ROWS),
    // so that consecutive rows fall on dates in no order at all.
    let order: Vec<i64> =
        (0..1i64 << 18).map(|i| (i * 0x9E37_79B1 + 12_345) & ((1 << 18) - 1)).filter(|&i| i < ROWS).collect();
    assert_eq!(order.len(), ROWS as usize);
    let date_of = |id: i64| format!("2026-04-0{}", 1 + id % 5);
    let mut csv = String::from("id,t,x\n");
    for &id in &order {
        csv.push_str(&format!("{id},{}T{:02}:{:02}:00Z,{}\n", date_of(id), id % 24, id % 60, id as f64 / 4.0));
    }
    let s = ingest_raw(&t, "raw/events/shuffled.csv", csv.into_bytes()).await;
    assert_eq!((s.counts.rows_read, s.counts.curated, s.counts.quarantined), (ROWS as u64, ROWS as u64, 0));
    assert_eq!(s.curated_keys.len(), 5, "at most one file per date: {:?}", s.curated_keys);
    let listed = t.lake.list("curated/events/").await.expect("list");
    assert_eq!(listed.len(), 5, "{listed:?}");

    let mut seen = 0usize;
    for key in &listed {
        let rows = curated_rows(t.lake.get(key).await.expect("curated").bytes);
        let date = &key[key.find("dt=").expect("dt") + 3..][..10];
        // The date's rows, in the order the batch gave them.
        let expected: Vec<i64> = order.iter().copied().filter(|&id| date_of(id) == date).collect();
        let ids: Vec<i64> = rows.iter().map(|r| r.0).collect();
        assert_eq!(ids, expected, "{key}");
        assert!(rows.iter().all(|(id, day, x)| day == date && *x == *id as f64 / 4.0), "{key}");
        seen += rows.len();
    }
    assert_eq!(seen, ROWS as usize);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn files_named_like_hidden_files_give_outputs_every_reader_sees() {
    let t = TestLake::start().await;
    publish_events(&t).await;
    for name in ["_export.csv", ".hidden.csv", "_.csv"] {
        let s = ingest_raw(&t, &format!("raw/events/{name}"), b"id,t,x\n7,2026-04-03T00:00:00Z,1\n".to_vec()).await;
        assert_eq!(s.counts.curated, 1, "{name}");
        for key in s.curated_keys.iter().chain([&s.quarantine_key, &s.profile_key, &s.manifest_key]) {
            let file = key.rsplit('/').next().expect("file name");
            assert!(!file.starts_with(['_', '.']), "{name} gave {key}");
        }
    }
    let curated = t.lake.list("curated/events/dt=2026-04-03/").await.expect("list");
    assert_eq!(curated.len(), 3, "{curated:?}");
    for key in curated {
        assert_eq!(curated_rows(t.lake.get(&key).await.expect("get").bytes), [(7, "2026-04-03".to_string(), 1.0)]);
    }
}

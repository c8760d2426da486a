//! Ingest's memory does not grow with the object: an object several times larger than the
//! bound is ingested by the `mlops` binary (`mlops invoke ingest`, the handler Lambda runs),
//! streaming from the embedded lake and back, and the peak resident memory it reports stays
//! under the bound.

use std::io::Write;
use std::process::Command;

use mlops_flows::ingest::{Source, ingest_bytes};

use crate::common::{BUCKET, TestLake, at, example, repo};

/// The memory bound of one thread for the limits set below: about 30 MB for the process
/// (runtime, S3 client, contract, read buffers), 8 MB of open row groups, and two 5 MB upload
/// parts for each of the two open outputs (curated and quarantine), plus what the allocator
/// keeps in its per-thread arenas, which varies from run to run (56–65 MB measured).
const ONE_THREAD_MB: u64 = 96;

/// Threads that parse, validate and profile (`INGEST_THREADS`).
const THREADS: u64 = 2;

/// What each of them adds: two chunks of half a megabyte with their rows' values (about
/// 7 MiB) and its allocator arena. With more than one thread, the curated file is also encoded
/// on a thread of its own, which holds one Arrow batch (here well under 1 MiB) and has an arena
/// too: 102–110 MB measured in all.
const PER_THREAD_MB: u64 = 16;

const BOUND_MB: u64 = ONE_THREAD_MB + THREADS * PER_THREAD_MB;

/// Five times the bound of one thread.
const OBJECT_BYTES: u64 = (5 * ONE_THREAD_MB) << 20;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ingest_memory_stays_bounded_on_two_threads_for_an_object_several_times_larger() {
    let t = TestLake::with_penguins().await;
    let key = "raw/penguins/big.csv";
    let rows = write_big_object(&t.server.root().join(BUCKET).join(key));
    let event =
        mlops_lambda::events::object_created(BUCKET, key, "big-object", OBJECT_BYTES, at("2026-05-01T00:00:00Z"))
            .expect("event");
    let dir = tempfile::tempdir().expect("temp dir");
    let event_file = dir.path().join("event.json");
    std::fs::write(&event_file, event).expect("event file");

    let out = tokio::task::block_in_place(|| {
        Command::new(env!("CARGO_BIN_EXE_mlops"))
            .current_dir(repo())
            .args(["invoke", "ingest", "--event"])
            .arg(&event_file)
            .env_clear()
            .envs(t.server.env_vars())
            .envs([("LAKE_BUCKET", BUCKET), ("INGEST_ROW_GROUP_MB", "8"), ("INGEST_PART_MB", "5")])
            // The parallel reading: two threads parse, validate and profile while this one writes.
            .env("INGEST_THREADS", THREADS.to_string())
            .output()
            .expect("mlops runs")
    });
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    let outcomes: serde_json::Value = serde_json::from_slice(&out.stdout).expect("outcomes JSON");
    let counts = &outcomes[0]["counts"];
    assert_eq!(counts["rows_read"], rows.0, "every row was read");
    assert_eq!(counts["curated"], rows.0 - rows.1);
    assert_eq!(counts["quarantined"], rows.1);

    let peak_mb: u64 = stderr
        .split("Max Memory Used: ")
        .nth(1)
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no REPORT line with the peak memory in {stderr}"));
    println!("memory bound: {OBJECT_BYTES} byte object, peak resident memory {peak_mb} MB, bound {BOUND_MB} MB");
    assert!(peak_mb < BOUND_MB, "peak memory {peak_mb} MB is over the {BOUND_MB} MB bound");

    // The outputs were large enough to go up in several parts.
    let curated = outcomes[0]["curated_keys"][0].as_str().expect("curated key");
    let head = t.lake.get(curated).await.expect("curated object");
    assert!(head.bytes.len() > 5 << 20, "curated object of {} bytes", head.bytes.len());
}

/// Writes penguins rows (about 2% invalid) into the lake's directory until the object has
/// [`OBJECT_BYTES`]; returns (rows, invalid rows).
fn write_big_object(path: &std::path::Path) -> (u64, u64) {
    let text = std::fs::read_to_string(example("batches/batch-02.csv")).expect("batch");
    let mut lines = text.lines();
    let header = lines.next().expect("header");
    let body: Vec<&str> = lines.collect();
    // The example batch's own accounting, from the in-memory pipeline, per copy of its rows.
    let contract = mlops_contract::Contract::load(&example("contract.yaml")).expect("contract");
    let baseline = mlops_drift::Profile::baseline(&contract, &[]);
    let source =
        Source { key: "raw/penguins/batch-02.csv", etag: Some("e"), dt: at("2026-05-01T00:00:00Z").date_naive() };
    let bad = ingest_bytes(&contract, &baseline, &source, None, text.as_bytes())
        .expect("in memory")
        .manifest
        .counts
        .quarantined;
    assert_eq!(bad, 6);
    std::fs::create_dir_all(path.parent().expect("parent")).expect("dirs");
    let mut file = std::io::BufWriter::new(std::fs::File::create(path).expect("object file"));
    writeln!(file, "{header}").expect("write");
    let mut written = header.len() as u64 + 1;
    let (mut rows, mut invalid) = (0u64, 0u64);
    let block: String = body.iter().map(|l| format!("{l}\n")).collect();
    while written < OBJECT_BYTES {
        file.write_all(block.as_bytes()).expect("write");
        written += block.len() as u64;
        rows += body.len() as u64;
        invalid += bad;
    }
    file.flush().expect("flush");
    (rows, invalid)
}

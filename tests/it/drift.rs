//! drift-check: drift in the shifted batch and not in the others.

use mlops_core::config::DriftCheckConfig;
use mlops_core::monitor::DriftCheck;

use crate::common::{TestLake, at, env};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn finds_drift_in_the_shifted_batch_and_not_in_the_others() {
    let t = TestLake::with_penguins().await;
    t.ingest_batch("batch-01.csv", at("2026-03-01T08:00:00Z")).await;
    t.ingest_batch("batch-02.csv", at("2026-03-01T09:00:00Z")).await;
    t.ingest_batch("batch-03-shifted.csv", at("2026-03-02T08:00:00Z")).await;
    let config = DriftCheckConfig::from_env(&env(&[("DRIFT_WINDOW_DAYS", "1")])).expect("config");

    let event = drift_check::scheduled_event(at("2026-03-01T23:00:00Z")).expect("event");
    let clean = drift_check::invoke(&t.lake, &config, &event).await.expect("check");
    assert_eq!(clean["dataset_drift"], false, "{clean}");
    assert_eq!(clean["current_rows"], 600);
    assert_eq!(clean["drifted"], serde_json::json!([]));

    let event = drift_check::scheduled_event(at("2026-03-02T23:00:00Z")).expect("event");
    let shifted = drift_check::invoke(&t.lake, &config, &event).await.expect("check");
    assert_eq!(shifted["dataset_drift"], true, "{shifted}");
    assert_eq!(shifted["drifted"], serde_json::json!(["bill_length_mm", "flipper_length_mm", "body_mass_g"]));

    let key = shifted["report_key"].as_str().expect("key");
    assert_eq!(key, "reports/drift/penguins/2026-03-02T23-00-00Z.json");
    let report: DriftCheck =
        serde_json::from_slice(&t.lake.get(key).await.expect("report").bytes).expect("report JSON");
    assert_eq!(report.window.profiles.len(), 1);
    assert_eq!(report.report.reference_rows, 344);
    let bill = report.report.columns.iter().find(|c| c.column == "bill_length_mm").expect("bill_length_mm checked");
    assert_eq!((bill.method.as_str(), bill.current_count), ("psi", 297), "300 rows, 3 without a bill length");
    // The figure prepare_data.py computes with numpy for the same bins: 1.2106.
    assert!((bill.statistic.expect("psi") - 1.2106).abs() < 5e-4, "{bill:?}");

    // A wider window merges all three batches.
    let config = DriftCheckConfig::from_env(&env(&[("DRIFT_WINDOW_DAYS", "2")])).expect("config");
    let both = drift_check::invoke(&t.lake, &config, &event).await.expect("check");
    assert_eq!(both["current_rows"], 900);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_empty_window_is_insufficient_data_not_drift() {
    let t = TestLake::with_penguins().await;
    let config = DriftCheckConfig::from_env(&env(&[])).expect("config");
    let out = drift_check::invoke(&t.lake, &config, include_str!("../../events/schedule.json")).await.expect("check");
    assert_eq!(out["dataset_drift"], false);
    assert_eq!(out["current_rows"], 0);
    let report: serde_json::Value =
        serde_json::from_slice(&t.lake.get(out["report_key"].as_str().expect("key")).await.expect("report").bytes)
            .expect("JSON");
    assert!(report["columns"].as_array().expect("columns").iter().all(|c| c["verdict"] == "insufficient_data"));
}

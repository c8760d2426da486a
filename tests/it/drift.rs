//! drift-check: drift in the shifted batch and not in the others, from the batch profiles
//! ingest wrote; windows of days and of batches; the report, its HTML page, Model Monitor's
//! files, and the DriftDetected event sent through aws-sdk-eventbridge to a local endpoint.

use drift_check::Config as DriftCheckConfig;
use mlops_devkit::event_bus::LocalEventBus;
use mlops_flows::drift_check::{DriftCheck, emf_lines};

use crate::common::{TestLake, at, env};

async fn check(t: &TestLake, bus: &LocalEventBus, config: &DriftCheckConfig, when: &str) -> serde_json::Value {
    let event = mlops_lambda::events::scheduled(at(when)).expect("event");
    drift_check::invoke(&t.lake, &bus.client(), config, &event).await.expect("check")
}

async fn json(t: &TestLake, key: &str) -> serde_json::Value {
    serde_json::from_slice(&t.lake.get(key).await.unwrap_or_else(|e| panic!("{key}: {e}")).bytes).expect("JSON")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn finds_drift_in_the_shifted_batch_and_not_in_the_others() {
    let t = TestLake::with_penguins().await;
    let bus = LocalEventBus::start(0, None).await.expect("event bus");
    t.ingest_batch("batch-01.csv", at("2026-03-01T08:00:00Z")).await;
    t.ingest_batch("batch-02.csv", at("2026-03-01T09:00:00Z")).await;
    t.ingest_batch("batch-03-shifted.csv", at("2026-03-02T08:00:00Z")).await;
    let config = DriftCheckConfig::from_env(&env(&[("DRIFT_WINDOW_DAYS", "1"), ("EVENT_BUS_NAME", "mlops-test")]))
        .expect("config");

    let clean = check(&t, &bus, &config, "2026-03-01T23:00:00Z").await;
    assert_eq!(clean["dataset_drift"], false, "{clean}");
    assert_eq!(clean["current_rows"], 600);
    assert_eq!(clean["drifted"], serde_json::json!([]));
    assert!(bus.events().is_empty(), "no event without dataset drift");

    let shifted = check(&t, &bus, &config, "2026-03-02T23:00:00Z").await;
    assert_eq!(shifted["dataset_drift"], true, "{shifted}");
    assert_eq!(shifted["drifted"], serde_json::json!(["bill_length_mm", "flipper_length_mm", "body_mass_g"]));
    let key = shifted["report_key"].as_str().expect("key");
    assert_eq!(key, "reports/drift/penguins/2026-03-02T23-00-00Z.json");

    // The reference (344 rows) is small, so numeric features are tested with KS, exactly: the
    // profiles still hold every value.
    let report: DriftCheck = serde_json::from_value(json(&t, key).await).expect("report JSON");
    assert_eq!((report.window.kind.as_str(), report.window.profiles.len()), ("days", 1));
    assert_eq!(report.report.reference_rows, 344);
    let bill = report.report.columns.iter().find(|c| c.column == "bill_length_mm").expect("bill_length_mm checked");
    assert_eq!((bill.test.method.name(), bill.test.n_current, bill.test.from_sketch), ("ks", 297, false));
    assert!(bill.test.p_value.expect("a p-value") < 1e-6, "{bill:?}");
    let island = report.report.columns.iter().find(|c| c.column == "island").expect("island checked");
    assert_eq!(island.test.method.name(), "chisquare");

    // The HTML page and Model Monitor's files sit beside the report.
    let html = String::from_utf8(t.lake.get(&report.outputs.html).await.expect("html").bytes.to_vec()).expect("UTF-8");
    assert!(html.contains("Dataset drift detected") && html.contains("<svg"), "a page with charts");
    let statistics = json(&t, &report.outputs.statistics).await;
    assert_eq!(statistics["dataset"]["item_count"], 300);
    let bill_stats =
        statistics["features"].as_array().expect("features").iter().find(|f| f["name"] == "bill_length_mm");
    let bill_stats = bill_stats.expect("bill_length_mm statistics");
    assert_eq!(bill_stats["inferred_type"], "Fractional");
    assert_eq!(bill_stats["numerical_statistics"]["common"]["num_present"], 297);
    let buckets = bill_stats["numerical_statistics"]["distribution"]["kll"]["buckets"].as_array().expect("buckets");
    let counted: f64 = buckets.iter().map(|b| b["count"].as_f64().expect("count")).sum();
    assert_eq!((buckets.len(), counted), (10, 297.0));
    let constraints = json(&t, &report.outputs.constraints).await;
    assert_eq!(constraints["monitoring_config"]["distribution_constraints"]["perform_comparison"], "Enabled");
    let violations = json(&t, &report.outputs.constraint_violations).await;
    let drift_checks: Vec<&str> = violations["violations"]
        .as_array()
        .expect("violations")
        .iter()
        .filter(|v| v["constraint_check_type"] == "baseline_drift_check")
        .map(|v| v["feature_name"].as_str().expect("name"))
        .collect();
    assert_eq!(drift_checks, ["bill_length_mm", "flipper_length_mm", "body_mass_g"]);

    // One DriftDetected event, carrying the report's key, reached the bus.
    let events = bus.events();
    assert_eq!(events.len(), 1, "{events:?}");
    assert_eq!(
        (events[0]["Source"].as_str(), events[0]["DetailType"].as_str()),
        (Some(drift_check::EVENT_SOURCE), Some("DriftDetected"))
    );
    assert_eq!(events[0]["EventBusName"], "mlops-test");
    let detail: serde_json::Value = serde_json::from_str(events[0]["Detail"].as_str().expect("detail")).expect("JSON");
    assert_eq!(detail["report_key"], key);
    assert_eq!(shifted["event_id"], events[0]["EventId"]);

    // The metrics: one line per feature and one for the dataset, in the embedded metric format.
    let lines: Vec<serde_json::Value> =
        emf_lines(&report).iter().map(|l| serde_json::from_str(l).expect("EMF JSON")).collect();
    assert_eq!(lines.len(), 7);
    let dataset = lines.last().expect("dataset line");
    assert_eq!((dataset["DatasetDrift"].as_u64(), dataset["DriftShare"].as_f64()), (Some(1), Some(0.5)));
    assert_eq!(dataset["_aws"]["CloudWatchMetrics"][0]["Namespace"], "LambdaMlops/Drift");
    // One meaning per metric name: p-values (drift when low) apart from distances (drift when
    // high), each with its threshold; the test's time was older than CloudWatch keeps, so the
    // lines are stamped now and say which time they are for.
    for l in &lines[..6] {
        let method = l["Method"].as_str().expect("method");
        let name = if ["ks", "chisquare", "z"].contains(&method) { "DriftPValue" } else { "DriftDistance" };
        assert!(l[name].is_number() && l["Threshold"].is_number() && l["Feature"].is_string(), "{l}");
        assert!(l.get("DriftScore").is_none(), "{l}");
        assert!(l["_aws"]["Timestamp"].as_i64() > Some(chrono::Utc::now().timestamp_millis() - 60_000), "{l}");
        assert_eq!(l["CheckedFor"], "2026-03-02T23:00:00+00:00", "{l}");
    }
    // Every line obeys the specification, with a feature name CloudWatch refuses as a
    // dimension value (non-ASCII, too long) as well: it is mapped, the name kept as a property.
    let now = chrono::Utc::now();
    let mut renamed = serde_json::to_value(&report).expect("JSON");
    renamed["columns"][0]["column"] = format!("température_c_{}", "x".repeat(1100)).into();
    renamed["columns"][1]["column"] = "日本語の特徴量".into();
    let renamed: DriftCheck = serde_json::from_value(renamed).expect("report");
    for line in emf_lines(&report).iter().chain(&emf_lines(&renamed)) {
        mlops_emf::validate(line, now).unwrap_or_else(|e| panic!("{e}: {line}"));
    }
    let mapped: serde_json::Value = serde_json::from_str(&emf_lines(&renamed)[0]).expect("JSON");
    assert!(mapped["Feature"].as_str().is_some_and(|f| f.starts_with("temp_rature_c_x") && f.len() <= 250), "{mapped}");
    assert!(mapped["FeatureName"].as_str().is_some_and(|f| f.starts_with("température_c_")), "{mapped}");

    // A wider window merges all three batches.
    let config = DriftCheckConfig::from_env(&env(&[("DRIFT_WINDOW_DAYS", "2")])).expect("config");
    let both = check(&t, &bus, &config, "2026-03-02T23:00:00Z").await;
    assert_eq!(both["current_rows"], 900);
    assert_eq!(bus.events().len(), 1, "no bus configured, no event");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_window_of_batches_takes_the_newest_across_days() {
    let t = TestLake::with_penguins().await;
    let bus = LocalEventBus::start(0, None).await.expect("event bus");
    t.ingest_batch("batch-01.csv", at("2026-03-01T08:00:00Z")).await;
    t.ingest_batch("batch-03-shifted.csv", at("2026-03-02T08:00:00Z")).await;
    t.ingest_batch("batch-02.csv", at("2026-03-05T09:00:00Z")).await;

    let last = DriftCheckConfig::from_env(&env(&[("DRIFT_WINDOW_BATCHES", "1")])).expect("config");
    let out = check(&t, &bus, &last, "2026-03-05T23:00:00Z").await;
    assert_eq!((out["current_rows"].as_u64(), out["dataset_drift"].as_bool()), (Some(300), Some(false)), "{out}");

    let two = DriftCheckConfig::from_env(&env(&[("DRIFT_WINDOW_BATCHES", "2")])).expect("config");
    let out = check(&t, &bus, &two, "2026-03-05T23:00:00Z").await;
    let report: DriftCheck =
        serde_json::from_value(json(&t, out["report_key"].as_str().expect("key")).await).expect("report");
    assert_eq!(report.report.current_rows, 600);
    assert_eq!((report.window.from.as_deref(), report.window.to.as_deref()), (Some("2026-03-02"), Some("2026-03-05")));
    assert!(report.window.profiles[0].contains("dt=2026-03-02"), "{:?}", report.window.profiles);

    // Asked for more batches than there are, the window takes them all.
    let many = DriftCheckConfig::from_env(&env(&[("DRIFT_WINDOW_BATCHES", "10")])).expect("config");
    assert_eq!(check(&t, &bus, &many, "2026-03-05T23:00:00Z").await["current_rows"], 900);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_empty_window_is_insufficient_data_not_drift() {
    let t = TestLake::with_penguins().await;
    let bus = LocalEventBus::start(0, None).await.expect("event bus");
    let config = DriftCheckConfig::from_env(&env(&[("EVENT_BUS_NAME", "b")])).expect("config");
    let out = drift_check::invoke(&t.lake, &bus.client(), &config, include_str!("../../events/schedule.json"))
        .await
        .expect("check");
    assert_eq!(out["dataset_drift"], false);
    assert_eq!(out["current_rows"], 0);
    let report = json(&t, out["report_key"].as_str().expect("key")).await;
    assert!(report["columns"].as_array().expect("columns").iter().all(|c| c["verdict"] == "insufficient_data"));
    assert!(bus.events().is_empty());
}

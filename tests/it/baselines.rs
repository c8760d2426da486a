//! Baselines pinned per model version: a window whose batches were profiled on two baselines
//! (before and after a new registration) is checked against either version, and concurrent
//! registrations never overwrite each other.

use std::collections::BTreeMap;

use mlops::commands::model::{RegisterArgs, register};
use mlops_drift::Profile;
use mlops_drift::stats::TestConfig;
use mlops_flows::baseline::profile_files;
use mlops_flows::drift_check::DriftCheck;

use crate::common::{TestLake, at, env, example};

fn penguins(train: &str) -> RegisterArgs {
    RegisterArgs {
        name: "penguins".into(),
        model: example("model.onnx"),
        contract: example("contract.yaml"),
        train: example(train),
        metrics: None,
        class_labels: Some(vec!["Adelie".into(), "Chinstrap".into(), "Gentoo".into()]),
        lineage: Default::default(),
    }
}

async fn baseline_of(t: &TestLake, version: u32) -> (Profile, String) {
    let (stored, _) = mlops_lake::registry::load(&t.lake, "penguins", version).await.expect("version loads");
    let baseline = Profile::from_json(&stored.baseline, "baseline").expect("baseline");
    (baseline, stored.manifest.baseline_id.expect("baseline id"))
}

async fn check(t: &TestLake, version: &'static str) -> DriftCheck {
    let pairs: &'static [(&str, &str)] = match version {
        "1" => &[("MODEL_VERSION", "1"), ("DRIFT_WINDOW_DAYS", "2")],
        _ => &[("MODEL_VERSION", "2"), ("DRIFT_WINDOW_DAYS", "2")],
    };
    let config = drift_check::Config::from_env(&env(pairs)).expect("config");
    let events = aws_sdk_eventbridge::Client::from_conf(
        aws_sdk_eventbridge::Config::builder()
            .behavior_version(aws_sdk_eventbridge::config::BehaviorVersion::latest())
            .build(),
    );
    let event = serde_json::from_str(&mlops_lambda::events::scheduled(at("2026-04-02T23:00:00Z")).expect("event"))
        .expect("scheduled event");
    let (summary, _) = drift_check::check(&t.lake, &events, &config, event).await.expect("drift check");
    let bytes = t.lake.get(&summary.report_key).await.expect("report").bytes;
    serde_json::from_slice(&bytes).expect("report JSON")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_window_spanning_a_new_registration_is_checked_against_either_version() {
    let t = TestLake::with_penguins().await;
    let (v1_baseline, v1_id) = baseline_of(&t, 1).await;
    let day1 = t.ingest_batch("batch-01.csv", at("2026-04-01T08:00:00Z")).await;
    assert!(day1.profile_key.starts_with(&format!("profiles/penguins/{v1_id}/dt=2026-04-01/")), "{day1:?}");

    // v2 is trained on shifted data: its baseline has other edges.
    let v2 = register(&t.lake, &penguins("batches/batch-03-shifted.csv")).await.expect("v2 registers");
    assert_eq!(v2.version, 2);
    let (v2_baseline, v2_id) = baseline_of(&t, 2).await;
    assert_ne!(v1_id, v2_id, "a baseline on other data has other edges");
    let day2 = t.ingest_batch("batch-02.csv", at("2026-04-02T08:00:00Z")).await;
    assert!(day2.profile_key.starts_with(&format!("profiles/penguins/{v2_id}/dt=2026-04-02/")), "{day2:?}");

    // Each version's check merges both days, re-binning the batch cut on the other baseline,
    // and gives the report that the same rows give against that version's baseline directly.
    let contract = mlops_contract::Contract::load(&example("contract.yaml")).expect("contract");
    let batches = [example("batches/batch-01.csv"), example("batches/batch-02.csv")];
    for (version, baseline, id, drift) in [("1", &v1_baseline, &v1_id, false), ("2", &v2_baseline, &v2_id, true)] {
        let report = check(&t, version).await;
        assert_eq!(report.model_version.to_string(), version);
        assert_eq!(&report.baseline_id, id);
        assert_eq!(report.window.profiles.len(), 2);
        assert_eq!(report.window.rebinned, 1, "v{version}: one batch was cut on the other baseline");
        assert_eq!(report.report.current_rows, 600);
        let direct = profile_files(&contract, &batches, Some(baseline)).expect("profile of the rows");
        let expected =
            mlops_drift::of_profiles(&contract, baseline, &direct.profile, &TestConfig::default(), &BTreeMap::new())
                .expect("drift");
        assert_eq!(report.report, expected.report, "v{version}: the same tests and verdicts as from the rows");
        assert_eq!(report.report.dataset_drift, drift, "v{version}: {:?}", report.report);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_registrations_get_two_versions_never_an_overwrite() {
    let t = TestLake::with_penguins().await;
    let (a, b) = (penguins("batches/batch-01.csv"), penguins("batches/batch-03-shifted.csv"));
    let (a, b) = tokio::join!(register(&t.lake, &a), register(&t.lake, &b));
    let (a, b) = (a.expect("first registration"), b.expect("second registration"));
    let mut versions = [a.version, b.version];
    versions.sort_unstable();
    assert_eq!(versions, [2, 3], "two versions, one each");
    assert_eq!(mlops_lake::registry::versions(&t.lake, "penguins").await.expect("versions"), [1, 2, 3]);
    for manifest in [&a, &b] {
        let (stored, _) =
            mlops_lake::registry::load(&t.lake, "penguins", manifest.version).await.expect("each version loads whole");
        assert_eq!(&stored.manifest, manifest, "v{}'s files are its own", manifest.version);
        let baseline = Profile::from_json(&stored.baseline, "baseline").expect("baseline");
        assert_eq!(Some(baseline.edges_id()), manifest.baseline_id, "v{}'s baseline is its own", manifest.version);
    }
    assert_ne!(a.baseline_id, b.baseline_id);

    // The conditional write itself: the second writer of a key is refused, the object kept.
    let key = "models/penguins/v9/registration.json";
    t.lake.put_if_absent(key, b"first".to_vec(), "application/json").await.expect("free key");
    match t.lake.put_if_absent(key, b"second".to_vec(), "application/json").await {
        Err(mlops_lake::Error::Exists { key: k, .. }) => assert_eq!(k, key),
        other => panic!("expected Exists, got {other:?}"),
    }
    assert_eq!(t.lake.get(key).await.expect("kept").bytes, b"first");
    // Many writers at once: exactly one wins.
    let attempts = (0..8).map(|i| {
        let lake = t.lake.clone();
        async move { lake.put_if_absent("race/one.json", vec![i], "application/json").await }
    });
    let results = futures_join_all(attempts).await;
    assert_eq!(results.iter().filter(|r| r.is_ok()).count(), 1, "{results:?}");
    assert!(results.iter().filter_map(|r| r.as_ref().err()).all(|e| matches!(e, mlops_lake::Error::Exists { .. })));
}

/// Runs the futures concurrently on the runtime and collects their results in order.
async fn futures_join_all<F, T>(futures: impl Iterator<Item = F>) -> Vec<T>
where
    F: std::future::Future<Output = T> + Send + 'static,
    T: Send + 'static,
{
    let handles: Vec<_> = futures.map(tokio::spawn).collect();
    let mut out = Vec::with_capacity(handles.len());
    for h in handles {
        out.push(h.await.expect("task"));
    }
    out
}

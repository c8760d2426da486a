//! `mlops demo` runs the whole loop and reports it.

use mlops::commands::demo::{DemoOptions, run};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_demo_runs_the_loop() {
    let mut out = Vec::new();
    let summary = run(&DemoOptions::from_repository(), &mut out).await.expect("demo succeeds");
    let text = String::from_utf8(out).expect("UTF-8");
    assert_eq!(summary.predictions.len(), 3, "{text}");
    let batches: Vec<(&str, u64, u64, u64)> =
        summary.batches.iter().map(|(f, c)| (f.as_str(), c.rows_read, c.curated, c.quarantined)).collect();
    assert_eq!(
        batches,
        [("batch-01.csv", 300, 300, 0), ("batch-02.csv", 306, 300, 6), ("batch-03-shifted.csv", 300, 300, 0)]
    );
    let verdicts: Vec<bool> = summary.drift.iter().map(|d| d.dataset_drift).collect();
    assert_eq!(verdicts, [false, true]);
    assert!(text.contains("line   18: bill_length_mm: \"abc\" is not a number"), "{text}");
    assert!(text.contains("dataset drift: YES (3 of 6 features)"), "{text}");
    // The drift starts the retraining state machine, which promotes v2, and predict answers
    // the same request with it.
    let retrain = summary.retrain.as_ref().expect("the drift starts a retraining run");
    assert_eq!(retrain.decision.as_deref(), Some("PROMOTE"), "{text}");
    assert_eq!((retrain.outcome.as_deref(), retrain.version), (Some("promoted"), Some(2)), "{text}");
    assert!(retrain.states.iter().any(|s| s == "Deploy"), "{:?}", retrain.states);
    assert_eq!(summary.serving, 2);
    assert_eq!(summary.predictions_after.len(), 3);
    assert!(text.contains("HTTP 200 from penguins v2"), "{text}");
    assert!(text.contains("champion v1") && text.contains("challenger"), "{text}");
    // Both versions answered captured traffic; once the labels arrive, each has its quality.
    let versions: Vec<(u32, u64)> = summary.quality.iter().map(|(v, rows, _)| (*v, *rows)).collect();
    assert_eq!(versions, [(1, 100), (2, 100)], "{text}");
    assert!(summary.quality.iter().all(|(_, _, f1)| f1.is_some_and(|f| f > 0.5)), "{text}");
    assert!(text.contains("model quality of penguins"), "{text}");
}

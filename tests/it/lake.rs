//! The embedded S3 server behind the real aws-sdk-s3.

use mlops_lake::Error;

use crate::common::TestLake;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn objects_round_trip_through_the_sdk() {
    let t = TestLake::start().await;
    let etag = t.lake.put("a/b/one.txt", b"hello".to_vec(), "text/plain").await.expect("put");
    // S3's ETag of a single-part upload is the MD5 of the content.
    assert_eq!(etag.as_deref(), Some("\"5d41402abc4b2a76b9719d911017c592\""));
    t.lake.put("a/b/two.txt", vec![0u8; 3 * 1024 * 1024], "application/octet-stream").await.expect("put big");
    t.lake.put("a/c.txt", Vec::new(), "text/plain").await.expect("put empty");
    let got = t.lake.get("a/b/one.txt").await.expect("get");
    assert_eq!(got.bytes, b"hello");
    assert_eq!(got.etag, etag);
    assert_eq!(t.lake.get("a/b/two.txt").await.expect("get big").bytes.len(), 3 * 1024 * 1024);
    assert_eq!(t.lake.list("a/b/").await.expect("list"), ["a/b/one.txt", "a/b/two.txt"]);
    assert!(t.lake.exists("a/c.txt").await.expect("head"));
    assert!(!t.lake.exists("a/missing.txt").await.expect("head"));
    match t.lake.get("a/missing.txt").await {
        Err(Error::NotFound { key, .. }) => assert_eq!(key, "a/missing.txt"),
        other => panic!("expected NotFound, got {other:?}"),
    }
}

/// Registers the penguins model once more, as the next version.
pub async fn register_again(t: &TestLake) -> mlops_lake::registry::Manifest {
    mlops::commands::model::register(
        &t.lake,
        &mlops::commands::model::RegisterArgs {
            name: "penguins".into(),
            model: crate::common::example("model.onnx"),
            contract: crate::common::example("contract.yaml"),
            train: crate::common::example("train.csv"),
            metrics: None,
            class_labels: None,
        },
    )
    .await
    .expect("another version")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn model_versions_are_numbered_and_never_overwritten() {
    let t = TestLake::with_penguins().await;
    let again = register_again(&t).await;
    assert_eq!(again.version, 2);
    assert_eq!(mlops_lake::registry::versions(&t.lake, "penguins").await.expect("versions"), [1, 2]);
    let (v1, _model) = mlops_lake::registry::load(&t.lake, "penguins", 1).await.expect("v1 still loads");
    assert_eq!(v1.manifest.class_labels.as_deref().map(<[String]>::len), Some(3));
    let baseline = mlops_drift::Profile::from_json(&v1.baseline, "v1").expect("baseline");
    assert_eq!(baseline.rows, 344, "the baseline covers every training row");
}

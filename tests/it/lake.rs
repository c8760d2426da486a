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

/// Registers the penguins model once more with a baseline of other data, as the next version.
pub async fn register_again(t: &TestLake) -> mlops_lake::registry::Manifest {
    mlops::commands::model::register(
        &t.lake,
        &mlops::commands::model::RegisterArgs {
            name: "penguins".into(),
            model: crate::common::example("model.onnx"),
            contract: crate::common::example("contract.yaml"),
            train: crate::common::example("batches/batch-01.csv"),
            metrics: None,
            class_labels: None,
            lineage: Default::default(),
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
    // The same model, contract and baseline again make no new version.
    let same = mlops::commands::model::RegisterArgs {
        name: "penguins".into(),
        model: crate::common::example("model.onnx"),
        contract: crate::common::example("contract.yaml"),
        train: crate::common::example("train.csv"),
        metrics: None,
        class_labels: Some(vec!["Adelie".into(), "Chinstrap".into(), "Gentoo".into()]),
        lineage: Default::default(),
    };
    let (existing, created) = mlops::commands::model::register_once(&t.lake, &same).await.expect("registers");
    assert_eq!((existing.version, created), (1, false));
    assert_eq!(mlops_lake::registry::versions(&t.lake, "penguins").await.expect("versions"), [1, 2]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_lake_answers_only_loopback_host_names_and_takes_its_own_credentials() {
    use mlops_devkit::lake_server::{EmbeddedLake, LakeCredentials, ensure_bucket};
    let dir = tempfile::tempdir().expect("temp dir");
    let credentials = LakeCredentials { access_key_id: "chosen".into(), secret_access_key: "chosen-secret".into() };
    let server = EmbeddedLake::start_with(dir.path(), 0, credentials).await.expect("starts");
    let client = server.client();
    ensure_bucket(&client, "own-bucket").await.expect("its own credentials are accepted");
    assert!(server.env_vars().contains(&("AWS_ACCESS_KEY_ID", "chosen".to_string())));
    // The default credentials are refused by a lake started with others.
    let stranger = mlops_lake::client::client(
        &aws_config::SdkConfig::builder()
            .behavior_version(aws_config::BehaviorVersion::latest())
            .region(aws_config::Region::new("us-east-1"))
            .endpoint_url(server.endpoint())
            .credentials_provider(aws_sdk_s3::config::SharedCredentialsProvider::new(
                aws_sdk_s3::config::Credentials::new("mlops-local", "mlops-local-secret", None, None, "test"),
            ))
            .build(),
        true,
    );
    assert!(stranger.list_objects_v2().bucket("own-bucket").send().await.is_err(), "the default pair is refused");
    // A request whose Host is not a loopback name gets 403, whatever its signature.
    let addr = server.endpoint().trim_start_matches("http://").to_string();
    let answer = tokio::task::block_in_place(|| {
        use std::io::{Read, Write};
        let mut socket = std::net::TcpStream::connect(&addr).expect("connects");
        socket
            .write_all(
                b"GET /own-bucket?list-type=2 HTTP/1.1\r\nHost: rebound.example:9000\r\nConnection: close\r\n\r\n",
            )
            .expect("request");
        let mut answer = String::new();
        socket.read_to_string(&mut answer).expect("answer");
        answer
    });
    assert!(answer.starts_with("HTTP/1.1 403"), "{answer}");
    assert!(answer.contains("addressed to 127.0.0.1"), "{answer}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_athena_tables_type_every_column_as_ingest_writes_it() {
    use mlops_formats::athena;
    let t = crate::common::TestLake::with_penguins().await;
    let s = t.ingest_batch("batch-02.csv", crate::common::at("2026-03-01T10:00:00Z")).await;
    let contract = mlops_contract::Contract::load(&crate::common::example("contract.yaml")).expect("contract");

    // Curated: the Parquet schema ingest wrote, column by column, in Hive's terms.
    let table = athena::curated(&contract, crate::common::BUCKET);
    let curated = t.lake.get(&s.curated_keys[0]).await.expect("curated").bytes;
    let written = crate::common::hive_columns(curated);
    assert_eq!(table.columns, written);
    assert!(s.curated_keys[0].starts_with(&table.location.replace("s3://mlops-lake/", "")));

    // Quarantine: every field of every record is a column of the table, of its JSON type.
    let table = athena::quarantine(&contract, crate::common::BUCKET);
    let lines = t.lake.get(&s.quarantine_key).await.expect("quarantine").bytes;
    let mut fields = std::collections::BTreeSet::new();
    for line in String::from_utf8(lines).expect("UTF-8").lines() {
        let record: serde_json::Map<String, serde_json::Value> = serde_json::from_str(line).expect("JSON");
        for (name, value) in &record {
            let (_, hive) =
                table.columns.iter().find(|(c, _)| c == name).unwrap_or_else(|| panic!("{name}: no column"));
            let fits = match value {
                serde_json::Value::String(_) => hive == "string",
                serde_json::Value::Number(n) => hive == "bigint" && n.is_u64(),
                serde_json::Value::Array(reasons) => {
                    let hive = hive.replace('`', "");
                    hive.starts_with("array<struct<")
                        && reasons.iter().all(|r| {
                            r.as_object().is_some_and(|r| {
                                r.keys().all(|k| hive.contains(&format!("{k}:string")))
                                    && r.values().all(|v| v.is_string())
                            })
                        })
                }
                _ => false,
            };
            assert!(fits, "{name} = {value} does not fit {hive}");
            fields.insert(name.clone());
        }
    }
    assert!(fields.len() >= 4, "the records used the table's columns: {fields:?}");
    assert!(s.quarantine_key.starts_with(&table.location.replace("s3://mlops-lake/", "")));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mlops_lake_tables_creates_then_updates_the_glue_tables_ingest_fills() {
    use mlops::commands::lake::{DdlArgs, put_tables};
    let t = crate::common::TestLake::with_penguins().await;
    let s = t.ingest_batch("batch-01.csv", crate::common::at("2026-03-01T10:00:00Z")).await;
    let glue = mlops_devkit::glue::LocalGlue::start(0).await.expect("local Glue");
    let args = DdlArgs {
        contract: crate::common::example("contract.yaml"),
        bucket: crate::common::BUCKET.into(),
        database: "mlops_lake_dev".into(),
        model: Some("penguins".into()),
        since: "2026-01-01".into(),
    };
    let created = put_tables(&glue.client(), &args).await.expect("tables created");
    let names = ["penguins_curated", "penguins_quarantine", "penguins_capture", "penguins_predictions"];
    assert_eq!(created, names.map(|n| (n.to_string(), true)));
    let updated = put_tables(&glue.client(), &args).await.expect("tables updated");
    assert!(updated.iter().all(|(_, created)| !created), "{updated:?}");

    // The catalog holds, through the SDK's wire format, the schema ingest writes.
    let tables = glue.tables();
    let curated = &tables[&("mlops_lake_dev".to_string(), "penguins_curated".to_string())];
    let columns: Vec<(String, String)> = curated["StorageDescriptor"]["Columns"]
        .as_array()
        .expect("columns")
        .iter()
        .map(|c| (c["Name"].as_str().expect("name").to_string(), c["Type"].as_str().expect("type").to_string()))
        .collect();
    let written = crate::common::hive_columns(t.lake.get(&s.curated_keys[0]).await.expect("curated").bytes);
    assert_eq!(columns, written);
    assert_eq!(curated["StorageDescriptor"]["Location"], "s3://mlops-lake/curated/penguins/");
    assert_eq!(curated["PartitionKeys"][0]["Name"], "dt");
    assert_eq!(curated["Parameters"]["projection.dt.type"], "date");
    assert_eq!(curated["Parameters"]["storage.location.template"], "s3://mlops-lake/curated/penguins/dt=${dt}/");
    let quarantine = &tables[&("mlops_lake_dev".to_string(), "penguins_quarantine".to_string())];
    assert_eq!(
        quarantine["StorageDescriptor"]["Columns"][4]["Type"],
        "array<struct<column:string,rule:string,message:string>>"
    );
    assert_eq!(
        quarantine["StorageDescriptor"]["SerdeInfo"]["SerializationLibrary"],
        "org.openx.data.jsonserde.JsonSerDe"
    );
    let predictions = &tables[&("mlops_lake_dev".to_string(), "penguins_predictions".to_string())];
    assert_eq!(predictions["PartitionKeys"][0]["Name"], "version");
    assert_eq!(
        predictions["Parameters"]["storage.location.template"],
        "s3://mlops-lake/predictions/penguins/v${version}/dt=${dt}/"
    );
}

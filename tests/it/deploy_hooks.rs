//! Blue/green with a check before any traffic moves: the deploy-hooks binary under the
//! emulated Runtime API, given CodeDeploy's lifecycle event, invokes a predict version
//! through aws-sdk-lambda (a local Lambda endpoint running predict's router) and reports to a
//! local CodeDeploy endpoint: Succeeded for the version that answers its registered samples
//! as registered, Failed for one that does not, or serves another model version.

use std::process::Stdio;
use std::sync::Arc;
use std::time::Duration;

use mlops_devkit::deploy::{Handler, LocalCodeDeploy, LocalLambda};
use mlops_devkit::runtime_api::{Outcome, RuntimeApi};
use tokio::process::Command;

use crate::common::{BUCKET, TestLake, env, repo};

const EVENT: &str = r#"{"DeploymentId": "d-EXAMPLE11", "LifecycleEventHookExecutionId": "exec-0001"}"#;

/// A local Lambda whose functions are predict routers by name: `predict:1` serves v1, and
/// `predict:live` (the alias) serves v1 too.
async fn lambda(t: &TestLake) -> LocalLambda {
    let config = mlops_lambda::ModelConfig::from_env(&env(&[])).expect("config");
    let mut app = predict::App::load(&t.lake, &config, predict::Limits::default()).await.expect("v1");
    app.emit = predict::Emit::Discard;
    let router = predict::router(Arc::new(app));
    let runtime = tokio::runtime::Handle::current();
    let handler: Handler = Arc::new(move |_name: String, payload: Vec<u8>| {
        let (router, runtime) = (router.clone(), runtime.clone());
        Box::pin(async move {
            let event = String::from_utf8_lossy(&payload).into_owned();
            // lambda_http's adapter is not Send: it runs on a blocking thread of its own.
            let answered = tokio::task::spawn_blocking(move || runtime.block_on(predict::invoke(router, &event)))
                .await
                .map_err(|e| e.to_string().into_bytes())?;
            match answered {
                Ok(response) => Ok(response.to_string().into_bytes()),
                Err(e) => Err(serde_json::json!({"errorMessage": e.to_string()}).to_string().into_bytes()),
            }
        })
    });
    LocalLambda::start(0, handler).await.expect("local Lambda")
}

/// Runs the hook binary once on the lifecycle event and returns what CodeDeploy was told.
async fn run_hook(t: &TestLake, hook: &str, target: &str, version: &str) -> (serde_json::Value, serde_json::Value) {
    let lambda = lambda(t).await;
    let codedeploy = LocalCodeDeploy::start(0).await.expect("local CodeDeploy");
    let api = RuntimeApi::start().await.expect("runtime API");
    let binary = std::path::PathBuf::from(env!("CARGO_BIN_EXE_mlops")).with_file_name("deploy-hooks");
    assert!(binary.exists(), "{} is not built: make test builds the binaries first", binary.display());
    let _child = Command::new(binary)
        .current_dir(repo())
        .env_clear()
        .envs(api.lambda_env("deploy-hooks"))
        .envs(t.server.env_vars())
        .envs([
            ("AWS_ENDPOINT_URL_LAMBDA", lambda.endpoint()),
            ("AWS_ENDPOINT_URL_CODEDEPLOY", codedeploy.endpoint()),
            ("HOOK", hook.to_string()),
            ("TARGET_FUNCTION", target.to_string()),
            ("LAKE_BUCKET", BUCKET.to_string()),
            ("MODEL_NAME", "penguins".to_string()),
            ("MODEL_VERSION", version.to_string()),
            ("RUST_LOG", "warn".to_string()),
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("the hook binary starts");
    let outcome =
        tokio::time::timeout(Duration::from_secs(60), api.invoke(EVENT)).await.expect("in time").expect("answer");
    let Outcome::Response(body) = outcome else { panic!("expected a response, got {outcome:?}") };
    let statuses = codedeploy.statuses();
    assert_eq!(statuses.len(), 1, "one status reported: {statuses:?}");
    assert_eq!(statuses[0]["deploymentId"], "d-EXAMPLE11");
    assert_eq!(statuses[0]["lifecycleEventHookExecutionId"], "exec-0001");
    (serde_json::from_str(&body).expect("JSON"), statuses[0].clone())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_pre_traffic_hook_passes_a_version_that_answers_as_registered_and_fails_one_that_does_not() {
    let t = TestLake::with_penguins().await;
    let samples: serde_json::Value =
        serde_json::from_slice(&t.lake.get("models/penguins/v1/samples.json").await.expect("samples").bytes)
            .expect("JSON");
    assert_eq!(samples["request"]["instances"].as_array().map(Vec::len), Some(5), "five registered instances");
    assert_eq!(samples["predictions"].as_array().map(Vec::len), Some(5));

    // The new version serves v1 and answers its samples as registered.
    let (outcome, status) = run_hook(&t, "pre-traffic", "predict:1", "1").await;
    assert_eq!(status["status"], "Succeeded", "{outcome}");
    assert!(outcome["reason"].as_str().is_some_and(|r| r.contains("5 registered samples")), "{outcome}");

    // A deployment that claims v2 while the function serves v1: no traffic moves.
    let (outcome, status) = run_hook(&t, "pre-traffic", "predict:1", "2").await;
    assert_eq!(status["status"], "Failed", "{outcome}");

    // Registered answers that the version does not give: no traffic moves.
    let mut altered = samples.clone();
    altered["predictions"][2]["probabilities"][0] = serde_json::json!(0.5);
    t.lake
        .put("models/penguins/v1/samples.json", serde_json::to_vec(&altered).expect("JSON"), "application/json")
        .await
        .expect("put");
    let (outcome, status) = run_hook(&t, "pre-traffic", "predict:1", "1").await;
    assert_eq!(status["status"], "Failed", "{outcome}");
    assert!(outcome["reason"].as_str().is_some_and(|r| r.contains("first at row 2")), "{outcome}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_post_traffic_hook_checks_the_alias_serves_the_expected_version() {
    let t = TestLake::with_penguins().await;
    let (outcome, status) = run_hook(&t, "post-traffic", "predict:live", "1").await;
    assert_eq!(status["status"], "Succeeded", "{outcome}");
    let (outcome, status) = run_hook(&t, "post-traffic", "predict:live", "3").await;
    assert_eq!(status["status"], "Failed", "{outcome}");
    assert!(outcome["reason"].as_str().is_some_and(|r| r.contains("not penguins v3")), "{outcome}");
}

//! predict: the model served through the router, compared with onnxruntime's outputs.

use std::sync::Arc;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use http_body_util::BodyExt;
use mlops_lambda::ModelConfig;
use serde_json::{Value, json};
use tower::ServiceExt;

use crate::common::{BUCKET, TestLake, env, example};

async fn router(t: &TestLake) -> axum::Router {
    let config = ModelConfig::from_env(&env(&[])).expect("config");
    let app = predict::App::load(&t.lake, &config, predict::Limits { max_instances: 50, ..Default::default() })
        .await
        .expect("model loads");
    predict::router(Arc::new(app))
}

async fn call(router: &axum::Router, method: &str, uri: &str, body: Value) -> (StatusCode, Value) {
    let request = Request::builder()
        .method(method)
        .uri(uri)
        .header("content-type", "application/json")
        .body(Body::from(body.to_string()))
        .expect("request");
    let response = router.clone().oneshot(request).await.expect("infallible");
    let status = response.status();
    let bytes = response.into_body().collect().await.expect("body").to_bytes();
    (status, serde_json::from_slice(&bytes).expect("JSON body"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn predictions_equal_onnxruntime_outputs() {
    let t = TestLake::with_penguins().await;
    let router = router(&t).await;
    let expected: Value =
        serde_json::from_slice(&std::fs::read(example("expected.json")).expect("expected.json")).expect("JSON");
    let rows = expected["rows"].as_array().expect("rows");
    let (status, body) = call(&router, "POST", "/predict", json!({"instances": rows})).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["model"], json!({"name": "penguins", "version": 1}));
    let predictions = body["predictions"].as_array().expect("predictions");
    assert_eq!(predictions.len(), rows.len());
    let classes = ["Adelie", "Chinstrap", "Gentoo"];
    for (i, p) in predictions.iter().enumerate() {
        let label = expected["label"][i].as_i64().expect("label");
        assert_eq!(p["label"].as_i64(), Some(label), "row {i}: label");
        assert_eq!(p["class"], classes[label as usize], "row {i}: class");
        let want = expected["probabilities"][i].as_array().expect("probabilities");
        let got = p["probabilities"].as_array().expect("probabilities");
        assert_eq!(got.len(), want.len());
        for (g, w) in got.iter().zip(want) {
            let (g, w) = (g.as_f64().expect("f"), w.as_f64().expect("f"));
            // Both runtimes sum the same float32 leaf weights; allow float32 rounding.
            assert!((g - w).abs() <= 1e-5 * w.abs().max(1.0), "row {i}: {g} vs onnxruntime {w}");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalid_instances_get_400_with_every_field_error() {
    let t = TestLake::with_penguins().await;
    let router = router(&t).await;
    let body = json!({"instances": [
        {"island": "Dream", "bill_length_mm": "long", "bill_depth_mm": 18.7, "flipper_length_mm": 181, "body_mass_g": 3750},
        {"bill_length_mm": 39.1, "bill_depth_mm": 18.7, "flipper_length_mm": 900, "body_mass_g": 3750, "colour": "red"},
        {"island": "Atlantis", "sex": 1}
    ]});
    let (status, body) = call(&router, "POST", "/predict", body).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body["error"], "some instances are invalid");
    assert_eq!(
        body["details"],
        json!([
            {"path": "instances[0].bill_length_mm", "reason": "bill_length_mm: expected a number, got a string"},
            {"path": "instances[1].colour", "reason": "unknown field; the model takes island, bill_length_mm, bill_depth_mm, flipper_length_mm, body_mass_g, sex"},
            {"path": "instances[1].island", "reason": "is required"},
            {"path": "instances[1].flipper_length_mm", "reason": "flipper_length_mm: 900 is above the maximum 250"},
            {"path": "instances[2].island", "reason": "island: \"Atlantis\" is not one of Biscoe, Dream, Torgersen"},
            {"path": "instances[2].sex", "reason": "sex: expected a string, got a number"}
        ])
    );
    let (status, body) =
        call(&router, "POST", "/predict", json!({"instance": {"island": "Biscoe", "sex": null}})).await;
    assert_eq!(status, StatusCode::OK, "a single instance with missing nullable features is scored: {body}");
    assert_eq!(body["predictions"].as_array().map(Vec::len), Some(1));
    let many: Vec<Value> = (0..51).map(|_| json!({"bill_length_mm": 39.1})).collect();
    let (status, body) = call(&router, "POST", "/predict", json!({"instances": many})).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE, "{body}");
    let (status, body) = call(&router, "GET", "/nowhere", Value::Null).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert!(body["error"].as_str().expect("error").contains("POST /predict"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sample_api_gateway_events_get_api_gateway_responses() {
    let t = TestLake::with_penguins().await;
    let router = router(&t).await;
    let response =
        predict::invoke(router.clone(), include_str!("../../events/api-predict.json")).await.expect("invoke");
    assert_eq!(response["statusCode"], 200, "{response}");
    assert_eq!(response["headers"]["content-type"], "application/json");
    let body: Value = serde_json::from_str(response["body"].as_str().expect("text body")).expect("JSON");
    let classes: Vec<&str> =
        body["predictions"].as_array().expect("p").iter().filter_map(|p| p["class"].as_str()).collect();
    assert_eq!(classes, ["Adelie", "Chinstrap", "Gentoo"]);

    let response = predict::invoke(router, include_str!("../../events/api-model.json")).await.expect("invoke");
    assert_eq!(response["statusCode"], 200, "{response}");
    let body: Value = serde_json::from_str(response["body"].as_str().expect("text body")).expect("JSON");
    assert_eq!(body["name"], "penguins");
    let inputs: Vec<&str> =
        body["inputs"].as_array().expect("inputs").iter().filter_map(|i| i["name"].as_str()).collect();
    assert_eq!(inputs, ["island", "bill_length_mm", "bill_depth_mm", "flipper_length_mm", "body_mass_g", "sex"]);
    assert_eq!(body["inputs"][0]["type"], "string");
    assert_eq!(body["input_layout"]["kind"], "named");
    assert_eq!(body["contract"]["dataset"], "penguins");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn load_fails_clearly_for_a_missing_or_corrupt_version() {
    let t = TestLake::with_penguins().await;
    let missing =
        ModelConfig { bucket: BUCKET.into(), model_name: "penguins".into(), model_version: 9, shadow_version: None };
    let e = predict::App::load(&t.lake, &missing, predict::Limits::default()).await.expect_err("no v9");
    assert_eq!(
        e.to_string(),
        "registry: model penguins v9 is not registered in s3://mlops-lake: models/penguins/v9/manifest.json is missing"
    );
    let mut bytes = std::fs::read(example("model.onnx")).expect("model");
    let last = bytes.len() - 1;
    bytes[last] ^= 0xff;
    t.lake.put("models/penguins/v1/model.onnx", bytes, "application/octet-stream").await.expect("put");
    let config = ModelConfig { model_version: 1, ..missing };
    let e = predict::App::load(&t.lake, &config, predict::Limits::default()).await.expect_err("corrupt");
    assert!(e.to_string().contains("model.onnx of penguins v1 has SHA-256"), "{e}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_shadow_model_never_changes_the_answer() {
    let t = TestLake::with_penguins().await;
    crate::lake::register_again(&t).await;
    let plain = router(&t).await;
    let config = ModelConfig::from_env(&env(&[("SHADOW_MODEL_VERSION", "2")])).expect("config");
    assert_eq!(config.shadow_version, Some(2));
    for budget in [std::time::Duration::from_secs(5), std::time::Duration::ZERO] {
        let limits = predict::Limits { shadow_budget: budget, ..Default::default() };
        let app = predict::App::load(&t.lake, &config, limits).await.expect("champion and shadow load");
        assert_eq!(app.shadow.as_ref().map(|s| s.manifest.version), Some(2));
        let shadowed = predict::router(Arc::new(app));
        let body = json!({"instances": [{"island": "Dream", "bill_length_mm": 46.5, "sex": "female"}]});
        let (status, with_shadow) = call(&shadowed, "POST", "/predict", body.clone()).await;
        assert_eq!(status, StatusCode::OK);
        let (_, without) = call(&plain, "POST", "/predict", body).await;
        assert_eq!(with_shadow, without, "the champion's answer, and only it, is returned");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_methods_get_the_json_error_shape() {
    let t = TestLake::with_penguins().await;
    let router = router(&t).await;
    for (method, uri, says) in [
        ("GET", "/predict", "GET is not allowed on /predict; use POST /predict"),
        ("PUT", "/predict", "PUT is not allowed on /predict; use POST /predict"),
        ("POST", "/model", "POST is not allowed on /model; use GET /model"),
    ] {
        let (status, body) = call(&router, method, uri, json!({})).await;
        assert_eq!(status, StatusCode::METHOD_NOT_ALLOWED, "{method} {uri}");
        assert_eq!(body["error"], says);
        assert_eq!(body["details"], json!([]));
    }
}

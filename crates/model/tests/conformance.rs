//! Conformance: every model in `tests/fixtures/models/` loads and reproduces onnxruntime's
//! outputs (labels exactly, scores within the fixture's tolerance).

use std::path::PathBuf;

use mlops_model::{Model, NamedTensor, TensorData};
use serde_json::Value;

fn fixtures() -> Vec<PathBuf> {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures/models");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .expect("fixtures directory")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "json") && p.file_stem().is_some_and(|s| s != "index"))
        .collect();
    files.sort();
    files
}

fn tensor(spec: &Value) -> NamedTensor {
    let shape: Vec<usize> =
        spec["shape"].as_array().expect("shape").iter().map(|d| d.as_u64().expect("dim") as usize).collect();
    let data = spec["data"].as_array().expect("data");
    let floats = || data.iter().map(|v| v.as_f64().unwrap_or(f64::NAN)).collect::<Vec<f64>>();
    let data = match spec["type"].as_str().expect("type") {
        "float" => TensorData::F32(floats().into_iter().map(|v| v as f32).collect()),
        "double" => TensorData::F64(floats()),
        "int64" => TensorData::I64(data.iter().map(|v| v.as_i64().expect("int")).collect()),
        "string" => TensorData::Str(data.iter().map(|v| v.as_str().expect("string").to_string()).collect()),
        other => panic!("unknown type {other}"),
    };
    NamedTensor { name: spec["name"].as_str().expect("name").to_string(), shape, data }
}

/// Compares one output; returns a description of the first mismatch.
fn compare(got: &NamedTensor, want: &NamedTensor, rtol: f64, atol: f64) -> Result<(), String> {
    if got.shape != want.shape {
        return Err(format!("{}: shape {:?}, onnxruntime {:?}", want.name, got.shape, want.shape));
    }
    let close = |g: f64, w: f64| (g.is_nan() && w.is_nan()) || (g - w).abs() <= atol + rtol * w.abs();
    let mismatch = match (&got.data, &want.data) {
        (TensorData::I64(g), TensorData::I64(w)) => g.iter().zip(w).position(|(g, w)| g != w),
        (TensorData::Str(g), TensorData::Str(w)) => g.iter().zip(w).position(|(g, w)| g != w),
        (TensorData::F32(g), TensorData::F32(w)) => {
            g.iter().zip(w).position(|(g, w)| !close(f64::from(*g), f64::from(*w)))
        }
        (TensorData::F64(g), TensorData::F64(w)) => g.iter().zip(w).position(|(g, w)| !close(*g, *w)),
        (g, w) => return Err(format!("{}: element types differ: {g:?} vs {w:?}", want.name)),
    };
    match mismatch {
        None => Ok(()),
        Some(i) => Err(format!(
            "{}: element {i} differs: got {:?}, onnxruntime {:?}",
            want.name,
            pick(&got.data, i),
            pick(&want.data, i)
        )),
    }
}

fn pick(data: &TensorData, i: usize) -> String {
    match data {
        TensorData::F32(v) => v[i].to_string(),
        TensorData::F64(v) => v[i].to_string(),
        TensorData::I64(v) => v[i].to_string(),
        TensorData::Str(v) => v[i].clone(),
    }
}

fn check(path: &PathBuf) -> Result<(), String> {
    let spec: Value = serde_json::from_slice(&std::fs::read(path).expect("fixture")).expect("fixture JSON");
    let bytes = std::fs::read(path.with_extension("onnx")).expect("model file");
    if spec["expect_error"].as_str() == Some("zipmap") {
        let e = Model::load(&bytes).expect_err("a ZipMap model is refused").to_string();
        return if e.contains("ZipMap") && e.contains("zipmap") { Ok(()) } else { Err(format!("unclear error: {e}")) };
    }
    let model = Model::load(&bytes).map_err(|e| e.to_string())?;
    let inputs: Vec<NamedTensor> = spec["inputs"].as_array().expect("inputs").iter().map(tensor).collect();
    let outputs = model.run(&inputs).map_err(|e| e.to_string())?;
    let rtol = spec["rtol"].as_f64().unwrap_or(1e-5);
    let atol = spec["atol"].as_f64().unwrap_or(1e-6);
    for want in spec["outputs"].as_array().expect("outputs").iter().map(tensor) {
        let got = outputs.iter().find(|o| o.name == want.name).ok_or(format!("no output {}", want.name))?;
        compare(got, &want, rtol, atol)?;
    }
    Ok(())
}

#[test]
fn every_fixture_matches_onnxruntime() {
    let files = fixtures();
    assert!(files.len() >= 20, "expected the conformance fixtures, found {}", files.len());
    let mut failures = Vec::new();
    for path in &files {
        let name = path.file_stem().and_then(|s| s.to_str()).unwrap_or_default().to_string();
        if let Err(e) = check(path) {
            failures.push(format!("{name}: {e}"));
        }
    }
    println!("conformance: {} fixtures checked, {} matched onnxruntime", files.len(), files.len() - failures.len());
    assert!(
        failures.is_empty(),
        "{} of {} fixtures differ from onnxruntime:\n{}",
        failures.len(),
        files.len(),
        failures.join("\n")
    );
}

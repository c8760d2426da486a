#!/usr/bin/env python3
"""Train the penguin species classifier and export it to ONNX.

Reads train.csv (written by prepare_data.py) and writes, next to this script:

  model.onnx     scikit-learn Pipeline (ColumnTransformer + LogisticRegression)
                 on all six features; one named input per column (`island` and
                 `sex` as strings, the four measurements as float32), outputs
                 the class index (int64) and the class probabilities (float32)
  expected.json  ONNX Runtime's outputs for 10 fixed rows, used to check
                 other runtimes against the reference implementation
  metrics.json   accuracy on a stratified 25% holdout

Run by `mlops train --command "python examples/penguins/train.py"`, it reads the
snapshot in MLOPS_TRAIN_DATA and writes the model to MLOPS_TRAIN_MODEL and the metrics
to MLOPS_TRAIN_METRICS instead (expected.json is only written for train.csv).

Classes are encoded as their index in the contract's order
[Adelie, Chinstrap, Gentoo], so the model's labels are int64 rather than
strings.

Missing values are fed to the model as NaN for the measurements and as the
empty string for `island` and `sex`; the pipeline imputes both (median for
measurements, the category "missing" for strings).
"""

from __future__ import annotations

import json
import math
import os
import sys
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pandas as pd
from skl2onnx import convert_sklearn
from skl2onnx.common.data_types import FloatTensorType, StringTensorType
from sklearn.compose import ColumnTransformer
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import train_test_split
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

HERE = Path(__file__).resolve().parent

NUMERIC = ["bill_length_mm", "bill_depth_mm", "flipper_length_mm", "body_mass_g"]
CATEGORICAL = ["island", "sex"]
# Model input order: the column order of train.csv.
FEATURES = ["island", *NUMERIC, "sex"]
TARGET = "species"
CLASSES = ["Adelie", "Chinstrap", "Gentoo"]
TARGET_OPSET = {"": 17, "ai.onnx.ml": 3}
GRAPH_NAME = "penguins_species"

# Rows of train.csv (0-based data row index, i.e. file line - 2) used for
# expected.json: all complete, covering the three species, including a few
# birds whose measurements lie between two species.
EXPECTED_ROWS = [0, 1, 19, 129, 152, 200, 276, 300]
# A real row whose `sex` is missing in the data set (a Gentoo on Biscoe).
EXPECTED_ROW_MISSING_SEX = 178
# A complete row (a male Chinstrap on Dream) with `bill_depth_mm` removed: the
# data set has no row where only one measurement is missing.
EXPECTED_ROW_MISSING_BILL_DEPTH = 285


def make_model() -> Pipeline:
    numeric = Pipeline(
        [("impute", SimpleImputer(strategy="median")), ("scale", StandardScaler())]
    )
    categorical = Pipeline(
        [
            (
                "impute",
                SimpleImputer(missing_values="", strategy="constant", fill_value="missing"),
            ),
            ("onehot", OneHotEncoder(handle_unknown="ignore", sparse_output=False)),
        ]
    )
    pre = ColumnTransformer(
        [("num", numeric, NUMERIC), ("cat", categorical, CATEGORICAL)]
    )
    return Pipeline([("pre", pre), ("clf", LogisticRegression(max_iter=1000))])


def load_frame(path: Path) -> pd.DataFrame:
    """Read train.csv with the model's conventions for missing values:
    NaN for the measurements, "" for the string columns."""
    raw = pd.read_csv(path, keep_default_na=False, dtype=str)
    df = pd.DataFrame(index=raw.index)
    for name in FEATURES:
        if name in NUMERIC:
            df[name] = pd.to_numeric(raw[name].replace("", np.nan)).astype(np.float64)
        else:
            df[name] = raw[name].astype(object)
    df[TARGET] = raw[TARGET].astype(object)
    return df


def feeds(df: pd.DataFrame) -> dict[str, np.ndarray]:
    """ONNX Runtime inputs: one [N, 1] tensor per column."""
    out = {}
    for name in FEATURES:
        if name in NUMERIC:
            out[name] = df[name].to_numpy(dtype=np.float32).reshape(-1, 1)
        else:
            values = ["" if v is None else str(v) for v in df[name]]
            out[name] = np.array(values, dtype=object).reshape(-1, 1)
    return out


def json_value(name: str, value):
    """A feature value as written to expected.json (missing -> null)."""
    if name in NUMERIC:
        return None if math.isnan(value) else float(value)
    return None if value == "" else str(value)


def main() -> int:
    # Run by `mlops train --command`, the paths come from the environment and the
    # reference outputs (for this file's fixed rows) are not written.
    external = "MLOPS_TRAIN_DATA" in os.environ
    data_path = Path(os.environ.get("MLOPS_TRAIN_DATA", HERE / "train.csv"))
    model_path = Path(os.environ.get("MLOPS_TRAIN_MODEL", HERE / "model.onnx"))
    metrics_path = Path(os.environ.get("MLOPS_TRAIN_METRICS", HERE / "metrics.json"))
    df = load_frame(data_path)
    X = df[FEATURES]
    y = df[TARGET].map({name: i for i, name in enumerate(CLASSES)})
    assert not y.isna().any(), "unknown species in train.csv"
    y = y.to_numpy(dtype=np.int64)

    # Accuracy is measured on a stratified 25% holdout with a model fitted
    # on the other 75%. The exported model is then refitted on all rows.
    X_tr, X_te, y_tr, y_te = train_test_split(
        X, y, test_size=0.25, stratify=y, random_state=0
    )
    holdout = make_model().fit(X_tr, y_tr)
    accuracy = float((holdout.predict(X_te) == y_te).mean())
    metrics = {"accuracy": accuracy, "n_train": int(len(y_tr)), "n_test": int(len(y_te))}
    metrics_path.write_text(json.dumps(metrics, indent=2) + "\n")
    print(f"holdout accuracy: {accuracy:.4f} (n_train={len(y_tr)}, n_test={len(y_te)})")

    model = make_model().fit(X, y)

    onx = convert_sklearn(
        model,
        initial_types=[
            (name, FloatTensorType([None, 1]) if name in NUMERIC else StringTensorType([None, 1]))
            for name in FEATURES
        ],
        options={id(model): {"zipmap": False}},
        target_opset=TARGET_OPSET,
        # A fixed graph name (the default is a random UUID) keeps the file
        # byte-for-byte reproducible.
        name=GRAPH_NAME,
    )
    # The converter collects opset imports in a set, so their order depends
    # on string hashing; sort them to keep the file reproducible.
    imports = sorted((i.domain, i.version) for i in onx.opset_import)
    del onx.opset_import[:]
    for domain, version in imports:
        onx.opset_import.add(domain=domain, version=version)
    model_path.write_bytes(onx.SerializeToString())
    onnx.checker.check_model(onx)
    print(f"wrote {model_path.name} ({model_path.stat().st_size} bytes)")

    sess = ort.InferenceSession(str(model_path), providers=["CPUExecutionProvider"])
    input_names = [i.name for i in sess.get_inputs()]
    output_names = [o.name for o in sess.get_outputs()]
    assert input_names == FEATURES, input_names
    assert output_names == ["label", "probabilities"], output_names

    # The ONNX model must agree with scikit-learn on every training row.
    label, probabilities = sess.run(output_names, feeds(X))
    assert label.dtype == np.int64, label.dtype
    assert probabilities.dtype == np.float32, probabilities.dtype
    sk_label = model.predict(X)
    sk_proba = model.predict_proba(X)
    n_diff = int((label != sk_label).sum())
    max_err = float(np.abs(probabilities.astype(np.float64) - sk_proba).max())
    print(f"onnxruntime vs scikit-learn on {len(X)} rows: "
          f"{n_diff} label differences, max |probability difference| {max_err:.2e}")
    if n_diff or max_err > 1e-5:
        print("CHECK FAILED: the ONNX model does not match scikit-learn")
        return 1
    if external:
        return 0

    # Reference outputs from ONNX Runtime on fixed rows.
    sample = X.iloc[EXPECTED_ROWS].copy()
    species = list(df[TARGET].iloc[EXPECTED_ROWS])
    assert all(v != "" for v in sample[CATEGORICAL].to_numpy().ravel())
    assert not sample[NUMERIC].isna().any().any(), "expected rows must be complete"
    assert set(species) == set(CLASSES), "expected rows must cover all species"

    no_sex = X.iloc[[EXPECTED_ROW_MISSING_SEX]].copy()
    assert no_sex["sex"].iloc[0] == "" and not no_sex[NUMERIC].isna().any().any()
    no_depth = X.iloc[[EXPECTED_ROW_MISSING_BILL_DEPTH]].copy()
    assert no_depth["sex"].iloc[0] != "" and not no_depth[NUMERIC].isna().any().any()
    no_depth["bill_depth_mm"] = np.nan
    sample = pd.concat([sample, no_sex, no_depth])
    species += [df[TARGET].iloc[i] for i in (EXPECTED_ROW_MISSING_SEX, EXPECTED_ROW_MISSING_BILL_DEPTH)]

    label, probabilities = sess.run(output_names, feeds(sample))

    expected = {
        "model": model_path.name,
        "inputs": FEATURES,
        "outputs": output_names,
        "class_labels": CLASSES,
        # Feature values as written in train.csv; the model sees the
        # measurements as float32. A missing value is null: fed as NaN for a
        # measurement and as "" for a string column.
        "rows": [
            {name: json_value(name, row[name]) for name in FEATURES}
            for _, row in sample.iterrows()
        ],
        "label": [int(v) for v in label],
        # float32 values widened to float64, so they round-trip exactly.
        "probabilities": [[float(p) for p in row] for row in probabilities],
    }
    (HERE / "expected.json").write_text(json.dumps(expected, indent=2) + "\n")
    print(f"wrote expected.json ({len(sample)} rows, outputs {output_names})")
    for (_, row), true, lab, probs in zip(sample.iterrows(), species, label, probabilities):
        missing = [n for n in FEATURES if json_value(n, row[n]) is None]
        note = f"  (missing: {', '.join(missing)})" if missing else ""
        print(f"  {true:<10} -> {CLASSES[lab]:<10} [{', '.join(f'{v:.4f}' for v in probs)}]{note}")

    opsets = {o.domain or "ai.onnx": o.version for o in onx.opset_import}
    op_types = sorted({(n.domain or "ai.onnx", n.op_type) for n in onx.graph.node})
    print("opset imports:", ", ".join(f"{d}={v}" for d, v in sorted(opsets.items())))
    print("op types:", ", ".join(f"{d}:{t}" for d, t in op_types))

    def describe(values) -> str:
        return ", ".join(
            f"{v.name} ({onnx.TensorProto.DataType.Name(v.type.tensor_type.elem_type)})"
            for v in values
        )

    print("graph inputs:", describe(onx.graph.input))
    print("graph outputs:", describe(onx.graph.output))
    return 0


if __name__ == "__main__":
    sys.exit(main())

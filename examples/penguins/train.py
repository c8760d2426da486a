#!/usr/bin/env python3
"""Train the penguin species classifier and export it to ONNX.

Reads train.csv (written by prepare_data.py) and writes, next to this script:

  model.onnx     RandomForestClassifier on the four numeric features; one
                 float input `features` of shape [N, 4], outputs the class
                 index (int64) and the class probabilities (float32)
  expected.json  ONNX Runtime's outputs for 8 fixed rows, used to check
                 other runtimes against the reference implementation
  metrics.json   accuracy on a stratified 25% holdout

Classes are encoded as their index in the contract's order
[Adelie, Chinstrap, Gentoo], so the model's labels are int64 rather than
strings.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pandas as pd
from skl2onnx import convert_sklearn
from skl2onnx.common.data_types import FloatTensorType
from sklearn.ensemble import RandomForestClassifier
from sklearn.model_selection import train_test_split

HERE = Path(__file__).resolve().parent

FEATURES = ["bill_length_mm", "bill_depth_mm", "flipper_length_mm", "body_mass_g"]
TARGET = "species"
CLASSES = ["Adelie", "Chinstrap", "Gentoo"]
TARGET_OPSET = {"": 17, "ai.onnx.ml": 3}

# Rows of train.csv (0-based data row index, i.e. file line - 2) used for
# expected.json: all complete, covering the three species, including a few
# birds whose measurements lie between two species.
EXPECTED_ROWS = [0, 1, 19, 129, 152, 200, 276, 300]


def make_model() -> RandomForestClassifier:
    return RandomForestClassifier(n_estimators=50, max_depth=6, random_state=0)


def main() -> int:
    df = pd.read_csv(HERE / "train.csv")
    df = df.dropna(subset=FEATURES).reset_index(drop=True)
    X = df[FEATURES].to_numpy(dtype=np.float32)
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
    (HERE / "metrics.json").write_text(json.dumps(metrics, indent=2) + "\n")
    print(f"holdout accuracy: {accuracy:.4f} (n_train={len(y_tr)}, n_test={len(y_te)})")

    clf = make_model().fit(X, y)

    onx = convert_sklearn(
        clf,
        initial_types=[("features", FloatTensorType([None, len(FEATURES)]))],
        options={id(clf): {"zipmap": False}},
        target_opset=TARGET_OPSET,
        # A fixed graph name (the default is a random UUID) keeps the file
        # byte-for-byte reproducible.
        name="penguins_species",
    )
    model_path = HERE / "model.onnx"
    model_path.write_bytes(onx.SerializeToString())
    onnx.checker.check_model(onx)
    print(f"wrote {model_path.name} ({model_path.stat().st_size} bytes)")

    # Reference outputs from ONNX Runtime on fixed rows.
    raw = pd.read_csv(HERE / "train.csv")
    sample = raw.iloc[EXPECTED_ROWS]
    assert not sample[FEATURES].isna().any().any(), "expected rows must be complete"
    assert set(sample[TARGET]) == set(CLASSES), "expected rows must cover all species"

    sess = ort.InferenceSession(str(model_path), providers=["CPUExecutionProvider"])
    input_names = [i.name for i in sess.get_inputs()]
    output_names = [o.name for o in sess.get_outputs()]
    assert input_names == ["features"], input_names
    label, probabilities = sess.run(
        output_names, {"features": sample[FEATURES].to_numpy(dtype=np.float32)}
    )
    assert label.dtype == np.int64, label.dtype
    assert probabilities.dtype == np.float32, probabilities.dtype

    expected = {
        "model": model_path.name,
        "inputs": FEATURES,
        "outputs": output_names,
        "class_labels": CLASSES,
        # Feature values as written in train.csv; the model sees them as float32.
        "rows": [
            {name: float(row[name]) for name in FEATURES}
            for _, row in sample.iterrows()
        ],
        "label": [int(v) for v in label],
        # float32 values widened to float64, so they round-trip exactly.
        "probabilities": [[float(p) for p in row] for row in probabilities],
    }
    (HERE / "expected.json").write_text(json.dumps(expected, indent=2) + "\n")
    print(f"wrote expected.json ({len(EXPECTED_ROWS)} rows, outputs {output_names})")
    for species, lab, probs in zip(sample[TARGET], label, probabilities):
        print(f"  {species:<10} -> {CLASSES[lab]:<10} [{', '.join(f'{v:.4f}' for v in probs)}]")

    opsets = {o.domain or "ai.onnx": o.version for o in onx.opset_import}
    op_types = sorted({(n.domain or "ai.onnx", n.op_type) for n in onx.graph.node})
    print("opset imports:", ", ".join(f"{d}={v}" for d, v in sorted(opsets.items())))
    print("op types:", ", ".join(f"{d}:{t}" for d, t in op_types))
    print(
        "graph outputs:",
        ", ".join(
            f"{o.name} ({onnx.TensorProto.DataType.Name(o.type.tensor_type.elem_type)})"
            for o in onx.graph.output
        ),
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())

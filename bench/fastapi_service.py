"""The prediction service a Python team would write instead of predict: FastAPI + pydantic +
onnxruntime, the same ONNX model, the same contract checks (types, ranges, allowed values,
nullability, unknown fields), the same answer (label, probabilities, class).

Run (one uvicorn worker, onnxruntime on one thread):

    MODEL=examples/penguins/model.onnx CONTRACT=examples/penguins/contract.yaml \
    CLASS_LABELS=Adelie,Chinstrap,Gentoo \
    python -m uvicorn --app-dir bench fastapi_service:app --port 8000 --workers 1 --no-access-log

`bench/saturation.py` starts it beside predict and loads both with oha.
"""
from __future__ import annotations

import os
from typing import Literal, Optional

import numpy as np
import onnxruntime as ort
import yaml
from fastapi import FastAPI
from pydantic import BaseModel, ConfigDict, Field, create_model

CONTRACT = yaml.safe_load(open(os.environ["CONTRACT"]))
COLUMNS = {c["name"]: c for c in CONTRACT["columns"]}
FEATURES: list[str] = CONTRACT["features"]
CLASS_LABELS = os.environ.get("CLASS_LABELS", "").split(",")
MAX_INSTANCES = int(os.environ.get("MAX_INSTANCES", "1000"))


def field(column: dict):
    """A pydantic field with the contract column's type, range, allowed values and nullability."""
    kind = {"float": float, "int": int, "bool": bool, "category": str, "string": str}[column["type"]]
    if column.get("allowed"):
        kind = Literal[tuple(column["allowed"])]
    bounds = {k: column[v] for k, v in (("ge", "min"), ("le", "max")) if column.get(v) is not None}
    if column.get("nullable", True):
        return (Optional[kind], Field(None, **bounds))
    return (kind, Field(..., **bounds))


# Unknown fields are refused, as predict refuses them; the target and other contract columns may come along.
Instance = create_model(
    "Instance",
    __config__=ConfigDict(extra="forbid"),
    **{name: field(COLUMNS[name]) for name in FEATURES},
    **{name: (Optional[object], None) for name in COLUMNS if name not in FEATURES},
)


class Body(BaseModel):
    instances: list[Instance] = Field(..., min_length=1, max_length=MAX_INSTANCES)  # type: ignore[valid-type]


options = ort.SessionOptions()
options.intra_op_num_threads = 1
options.inter_op_num_threads = 1
session = ort.InferenceSession(os.environ["MODEL"], options, providers=["CPUExecutionProvider"])
INPUTS = {i.name: i.type for i in session.get_inputs()}
app = FastAPI()


def column(values: list, onnx_type: str) -> np.ndarray:
    if onnx_type == "tensor(string)":
        return np.array([["" if v is None else v] for v in values], dtype=object)
    return np.array([[np.nan if v is None else v] for v in values], dtype=np.float32)


@app.post("/predict")
def predict(body: Body) -> dict:
    rows = body.instances
    feeds = {name: column([getattr(r, name) for r in rows], INPUTS[name]) for name in FEATURES}
    labels, probabilities = session.run(None, feeds)
    return {
        "model": {"name": CONTRACT["dataset"], "version": 1},
        "predictions": [
            {"label": int(label), "probabilities": [float(p) for p in probs], "class": CLASS_LABELS[int(label)]}
            for label, probs in zip(labels, probabilities)
        ],
    }

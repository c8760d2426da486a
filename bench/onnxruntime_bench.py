#!/usr/bin/env python3
"""Latency of the ONNX models in this repository under onnxruntime, on one thread.

Models:

  tests/fixtures/models/<name>.onnx   every conformance fixture, with the test
                                      rows of <name>.json (fixtures with
                                      "expect_error" are skipped)
  examples/penguins/model.onnx        reported as "penguins", with the rows of
                                      examples/penguins/expected.json

For each model, with intra- and inter-op thread pools of one thread and
sequential execution:

  model_bytes   size of the .onnx file
  load_ms       median time to create an InferenceSession from the file's
                bytes, over 20 sessions
  p50_us_1      median latency of sess.run(None, feeds) for a batch of 1 row
  p50_us_100    the same for a batch of 100 rows (the test rows repeated)

Each latency is measured after 20 warm-up runs, over at least 200 timed runs
and at least 2 seconds, with time.perf_counter_ns.

Usage, from the repository root:

  python bench/onnxruntime_bench.py --out bench/onnxruntime.json

--only NAME ... restricts the run to some models, and --min-seconds and
--min-runs change the measurement budget (for a quick smoke run).
"""

from __future__ import annotations

import argparse
import json
import math
import platform
import statistics
import sys
import time
from pathlib import Path
from typing import Callable

from benchlib import cpu_model

import numpy as np
import onnxruntime as ort

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = ROOT / "tests" / "fixtures" / "models"
PENGUINS = ROOT / "examples" / "penguins"

LOAD_RUNS = 20
WARMUP_RUNS = 20
MIN_RUNS = 200
MIN_SECONDS = 2.0
BATCH_SIZES = (1, 100)


# ---------------------------------------------------------------------------
# Inputs
# ---------------------------------------------------------------------------


def decode_fixture_input(spec: dict) -> np.ndarray:
    """One input of a fixture json: flat row-major `data`, `shape`, `type`;
    null is NaN (float and double only)."""
    kind, shape, data = spec["type"], spec["shape"], spec["data"]
    if kind == "float":
        arr = np.array([math.nan if v is None else v for v in data], dtype=np.float64)
        arr = arr.astype(np.float32)
    elif kind == "double":
        arr = np.array([math.nan if v is None else v for v in data], dtype=np.float64)
    elif kind == "int64":
        arr = np.array(data, dtype=np.int64)
    elif kind == "string":
        arr = np.array([str(v) for v in data], dtype=object)
    else:
        raise ValueError(f"input {spec['name']!r}: unsupported type {kind!r}")
    return arr.reshape(shape)


def penguins_inputs(sess: ort.InferenceSession, expected: dict) -> dict[str, np.ndarray]:
    """The rows of expected.json as one [N, 1] tensor per column: a null
    measurement is NaN, a null string is ""."""
    types = {i.name: i.type for i in sess.get_inputs()}
    rows = expected["rows"]
    feeds = {}
    for name in expected["inputs"]:
        values = [row.get(name) for row in rows]
        if types[name] == "tensor(string)":
            arr = np.array(["" if v is None else str(v) for v in values], dtype=object)
        elif types[name] == "tensor(float)":
            arr = np.array([math.nan if v is None else v for v in values], dtype=np.float64)
            arr = arr.astype(np.float32)
        elif types[name] == "tensor(double)":
            arr = np.array([math.nan if v is None else v for v in values], dtype=np.float64)
        else:
            raise ValueError(f"penguins input {name!r}: unsupported type {types[name]}")
        feeds[name] = arr.reshape(-1, 1)
    return feeds


def batch(feeds: dict[str, np.ndarray], n: int) -> dict[str, np.ndarray]:
    """The first n rows of the test rows repeated as often as needed."""
    out = {}
    for name, arr in feeds.items():
        reps = -(-n // arr.shape[0])
        tiled = np.concatenate([arr] * reps, axis=0)[:n]
        out[name] = np.ascontiguousarray(tiled)
    return out


# ---------------------------------------------------------------------------
# Measurement
# ---------------------------------------------------------------------------


def session_options() -> ort.SessionOptions:
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 1
    opts.inter_op_num_threads = 1
    opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    # Errors only. The LightGBM classifiers declare their `label` output with
    # shape [1], so every run of a larger batch would otherwise log a
    # warning, and the logging would be part of the measured time.
    opts.log_severity_level = 3
    return opts


def new_session(model: bytes) -> ort.InferenceSession:
    return ort.InferenceSession(model, session_options(), providers=["CPUExecutionProvider"])


def load_ms(model: bytes) -> float:
    times = []
    for _ in range(LOAD_RUNS):
        start = time.perf_counter_ns()
        new_session(model)
        times.append(time.perf_counter_ns() - start)
    return statistics.median(times) / 1e6


def p50_us(sess: ort.InferenceSession, feeds: dict, min_runs: int, min_seconds: float) -> tuple[float, int]:
    for _ in range(WARMUP_RUNS):
        sess.run(None, feeds)
    times = []
    budget_ns = int(min_seconds * 1e9)
    begin = time.perf_counter_ns()
    while len(times) < min_runs or time.perf_counter_ns() - begin < budget_ns:
        start = time.perf_counter_ns()
        sess.run(None, feeds)
        times.append(time.perf_counter_ns() - start)
    return statistics.median(times) / 1e3, len(times)


def models(only: set[str] | None) -> list[tuple[str, str, Path, Callable]]:
    """(name, family, model path, function building the test rows from a session)."""
    found = []
    for meta_path in sorted(FIXTURES.glob("*.json")):
        if meta_path.name == "index.json":
            continue
        model_path = meta_path.with_suffix(".onnx")
        if not model_path.exists():
            continue
        meta = json.loads(meta_path.read_text())
        if "expect_error" in meta:
            continue
        name = meta.get("name", meta_path.stem)

        def rows(sess, meta=meta):
            return {spec["name"]: decode_fixture_input(spec) for spec in meta["inputs"]}

        found.append((name, meta["family"], model_path, rows))

    expected = json.loads((PENGUINS / "expected.json").read_text())
    found.append(
        (
            "penguins",
            "penguins",
            PENGUINS / expected["model"],
            lambda sess: penguins_inputs(sess, expected),
        )
    )
    if only:
        unknown = only - {name for name, *_ in found}
        if unknown:
            raise SystemExit(f"unknown model(s): {', '.join(sorted(unknown))}")
        found = [m for m in found if m[0] in only]
    return found


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "onnxruntime.json")
    parser.add_argument("--only", nargs="+", metavar="NAME", help="measure only these models")
    parser.add_argument("--min-runs", type=int, default=MIN_RUNS)
    parser.add_argument("--min-seconds", type=float, default=MIN_SECONDS)
    parser.add_argument("--load", nargs="+", type=Path, default=[], metavar="ONNX",
                        help="also time the load of these model files")
    args = parser.parse_args()

    todo = models(set(args.only) if args.only else None)
    result = {
        "onnxruntime": ort.__version__,
        "python": platform.python_version(),
        "cpu": cpu_model(),
        "models": {},
    }
    print(f"onnxruntime {ort.__version__}, Python {platform.python_version()}, {result['cpu']}")
    print(f"one thread; load: median of {LOAD_RUNS}; run: median after {WARMUP_RUNS} warm-up runs, "
          f">= {args.min_runs} runs and >= {args.min_seconds:g} s")
    print()
    header = f"{'model':<40} {'family':<19} {'bytes':>9} {'load ms':>9} {'p50 us 1':>10} {'p50 us 100':>11}"
    print(header)
    print("-" * len(header))

    for name, family, path, make_rows in todo:
        model = path.read_bytes()
        load = load_ms(model)
        sess = new_session(model)
        rows = make_rows(sess)
        expected_names = sorted(i.name for i in sess.get_inputs())
        if sorted(rows) != expected_names:
            raise SystemExit(f"{name}: test inputs {sorted(rows)} != model inputs {expected_names}")
        entry = {"family": family, "model_bytes": len(model), "load_ms": round(load, 3)}
        for n in BATCH_SIZES:
            p50, _ = p50_us(sess, batch(rows, n), args.min_runs, args.min_seconds)
            entry[f"p50_us_{n}"] = round(p50, 2)
        result["models"][name] = entry
        print(
            f"{name:<40} {family:<19} {entry['model_bytes']:>9} {entry['load_ms']:>9.3f} "
            f"{entry['p50_us_1']:>10.1f} {entry['p50_us_100']:>11.1f}",
            flush=True,
        )

    result["load"] = {}
    for path in args.load:
        model = path.read_bytes()
        load = load_ms(model)
        result["load"][path.name] = {"model_bytes": len(model), "load_ms": round(load, 3)}
        print(f"load {path.name}: {len(model)} bytes, {load:.2f} ms")

    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print()
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

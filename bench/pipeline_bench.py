#!/usr/bin/env python3
"""Drift to a promoted model, locally: the retraining state machine's time, step by step.

For each size asked for, the bench starts `mlops serve` on an empty lake, registers the
penguins model as v1, drops three batches of that many rows in total under raw/penguins/
(the example's two ordinary batches and its shifted one, each resampled with replacement to
a third of the size, numeric values jittered by 1%), waits until ingest has curated them, and
then runs `mlops pipeline run retrain` — statemachines/retrain.asl.json executed over the
step handlers: snapshot, train (the built-in trainer), evaluate against v1 on the same
holdout, gate, register v2, promote. Wall time and peak RSS are the pipeline process's
(`wait4`); the step times come from the run's record in the lake.

    python bench/pipeline_bench.py --mlops target/release/mlops --rows 900,30000,300000

Only the Python standard library is needed.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import random
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from benchlib import ROOT, cpu_model, measure  # noqa: E402

EXAMPLE = ROOT / "examples" / "penguins"
NUMERIC = ["bill_length_mm", "bill_depth_mm", "flipper_length_mm", "body_mass_g"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def resample(source: Path, rows: int, out: Path, rng: random.Random) -> None:
    with open(source, newline="") as f:
        reader = csv.DictReader(f)
        fields = reader.fieldnames or []
        # Rows with too many or too few fields (the example's broken lines) are left out.
        records = [r for r in reader if None not in r and None not in r.values()]
    with open(out, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=fields)
        w.writeheader()
        for _ in range(rows):
            r = dict(rng.choice(records))
            for name in NUMERIC:
                try:
                    value = float(r[name])
                except (KeyError, ValueError):
                    continue
                r[name] = f"{value * (1 + rng.gauss(0, 0.01)):.1f}"
            w.writerow(r)


def wait_for(what: str, ready, timeout_s: float = 600) -> None:
    deadline = time.time() + timeout_s
    while time.time() < deadline:
        if ready():
            return
        time.sleep(0.1)
    raise SystemExit(f"timed out waiting for {what}")


def run_size(mlops: str, rows: int, work: Path) -> dict:
    lake_dir = work / f"lake-{rows}"
    lake_port, predict_port = free_port(), free_port()
    serve = subprocess.Popen(
        [mlops, "serve", "--dir", str(lake_dir), "--lake-port", str(lake_port), "--predict-port", str(predict_port),
         "--events-port", str(free_port()), "--sfn-port", str(free_port()), "--poll-ms", "100"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=ROOT)
    env = {**os.environ, "AWS_ENDPOINT_URL_S3": f"http://127.0.0.1:{lake_port}", "AWS_ACCESS_KEY_ID": "mlops-local",
           "AWS_SECRET_ACCESS_KEY": "mlops-local-secret", "AWS_REGION": "us-east-1", "LAKE_BUCKET": "mlops-lake"}
    try:
        wait_for("the lake", lambda: socket.socket().connect_ex(("127.0.0.1", lake_port)) == 0, 60)
        subprocess.run([mlops, "model", "register", "--name", "penguins", "--model", str(EXAMPLE / "model.onnx"),
                        "--contract", str(EXAMPLE / "contract.yaml"), "--train", str(EXAMPLE / "train.csv"),
                        "--class-labels", "Adelie,Chinstrap,Gentoo"], env=env, check=True, cwd=ROOT,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        rng = random.Random(rows)
        raw = lake_dir / "mlops-lake" / "raw" / "penguins"
        raw.mkdir(parents=True, exist_ok=True)
        manifests = lake_dir / "mlops-lake" / "manifests" / "penguins"
        for i, batch in enumerate(["batch-01.csv", "batch-02.csv", "batch-03-shifted.csv"]):
            staged = work / f"{rows}-{batch}"
            resample(EXAMPLE / "batches" / batch, rows // 3, staged, rng)
            staged.rename(raw / batch)
            wait_for("ingest", lambda: manifests.exists() and len(list(manifests.rglob("*.json"))) > i)
        result = measure([mlops, "pipeline", "run", "retrain", "--model", "penguins", "--champion", "1",
                          "--sfn-port", "0"], work / f"pipeline-{rows}.log", env=env)
        log = (work / f"pipeline-{rows}.log").read_text()
        if result["exit_code"] != 0:
            raise SystemExit(f"the pipeline failed:\n{log}")
        records = sorted((lake_dir / "mlops-lake" / "pipelines" / "penguins").glob("*.json"))
        record = json.loads(records[-1].read_text())
        result.update({
            "rows": rows,
            "decision": record.get("decision"),
            "outcome": record.get("outcome"),
            "version": record.get("version"),
            "record_ms": record.get("duration_ms"),
            "steps_ms": {s["name"]: round(s["duration_ms"], 1) for s in record["steps"]},
        })
        return result
    finally:
        serve.terminate()
        serve.wait()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--mlops", default=str(ROOT / "target" / "release" / "mlops"))
    ap.add_argument("--rows", default="900,30000,300000", help="comma-separated total curated rows")
    ap.add_argument("--out", type=Path, default=ROOT / "bench" / "pipeline.json")
    args = ap.parse_args()
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        for rows in [int(r) for r in args.rows.split(",")]:
            r = run_size(args.mlops, rows, Path(tmp))
            results.append(r)
            steps = "  ".join(f"{k} {v / 1e3:.2f}s" for k, v in r["steps_ms"].items())
            print(f"{rows:>8} rows: {r['wall_s']:.2f} s wall, {r['peak_rss_mib']:.0f} MiB peak, "
                  f"{r['decision']} → {r['outcome']} v{r['version']}  |  {steps}", flush=True)
    args.out.write_text(json.dumps({"cpu": cpu_model(), "results": results}, indent=2) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()

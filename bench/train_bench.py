#!/usr/bin/env python3
"""Training time, peak memory and holdout accuracy: `mlops train` beside scikit-learn's
HistGradientBoostingClassifier and LightGBM, on one core, in one run.

Generates (in a child process) synthetic tabular data with 20 numeric features (1% missing
values), a binary target and a four-class target, as CSV: a training file of each size asked
for and a 100,000-row holdout. Each tool then runs in its own process, pinned to one core
(`taskset -c 0`, one thread), with the same number of boosting rounds, depth, learning rate
and bins:

* **mlops**: `mlops train --config` (read the CSV against the contract, fit, export ONNX,
  check the export); fit time is the training record's `duration_ms` (the fit, metrics and
  export, without reading), and holdout accuracy comes from `mlops evaluate` on the holdout;
* **sklearn**: `pd.read_csv`, then `HistGradientBoostingClassifier(max_iter, max_depth,
  max_leaf_nodes=None, learning_rate, max_bins=255, early_stopping=False)`;
* **lightgbm**: `pd.read_csv`, then `LGBMClassifier(n_estimators, max_depth, num_leaves=2**depth,
  learning_rate, max_bin=255, reg_lambda=1, min_child_weight=1, min_child_samples=1,
  num_threads=1)`.

Wall time is the whole process (read + fit + write); peak memory its maximum RSS (`wait4`).

    python bench/train_bench.py --mlops target/release/mlops --rows 100000,1000000
    python bench/train_bench.py --mlops target/debug/mlops --rows 20000      # a quick run

The packages are pinned in bench/requirements-train.txt.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

FEATURES = 20
ROUNDS = 100
DEPTH = 6
RATE = 0.1
HOLDOUT = 100_000


def generate(work: Path, sizes: list[int]) -> None:
    import numpy as np
    import pandas as pd

    rng = np.random.default_rng(7)

    def frame(n: int) -> pd.DataFrame:
        x = rng.normal(size=(n, FEATURES))
        w = np.linspace(-1, 1, FEATURES)
        logit = x @ w + 0.8 * np.sin(2 * x[:, 0]) * x[:, 1] + 0.5 * (x[:, 2] > 0.5) - 0.4 * x[:, 3] ** 2
        binary = (rng.random(n) < 1 / (1 + np.exp(-logit))).astype(int)
        scores = np.stack([x[:, 4] + x[:, 5], x[:, 6] * x[:, 7], np.abs(x[:, 8]) - 0.5, x[:, 9] - x[:, 10]], axis=1)
        four = (scores + rng.normal(scale=0.7, size=scores.shape)).argmax(axis=1)
        x[rng.random(x.shape) < 0.01] = np.nan
        df = pd.DataFrame(x, columns=[f"f{i}" for i in range(FEATURES)])
        df["binary"] = np.array(["no", "yes"])[binary]
        df["four"] = np.array(["a", "b", "c", "d"])[four]
        return df

    frame(HOLDOUT).to_csv(work / "holdout.csv", index=False, float_format="%.6g")
    for n in sizes:
        frame(n).to_csv(work / f"train-{n}.csv", index=False, float_format="%.6g")
    for target, labels in [("binary", ["no", "yes"]), ("four", ["a", "b", "c", "d"])]:
        columns = "".join(f"  - {{name: f{i}, type: float, nullable: true}}\n" for i in range(FEATURES))
        other = "four" if target == "binary" else "binary"
        (work / f"{target}.yaml").write_text(
            f"dataset: synthetic\nversion: 1\ntarget: {target}\nfeatures: [{', '.join(f'f{i}' for i in range(FEATURES))}]\n"
            f"columns:\n{columns}  - {{name: {target}, type: category, allowed: [{', '.join(labels)}]}}\n"
            f"  - {{name: {other}, type: category}}\n"
        )
    (work / "train.yaml").write_text(
        f"iterations: {ROUNDS}\nmax_depth: {DEPTH}\nlearning_rate: {RATE}\nnbins: 256\nvalidation_fraction: 0.0\n"
    )


def python_worker(tool: str, train: str, holdout: str, target: str) -> None:
    import numpy as np
    import pandas as pd

    started = time.perf_counter()
    df = pd.read_csv(train)
    features = [f"f{i}" for i in range(FEATURES)]
    x, y = df[features].to_numpy(np.float32), df[target].to_numpy()
    read = time.perf_counter() - started
    fit_start = time.perf_counter()
    if tool == "sklearn":
        from sklearn.ensemble import HistGradientBoostingClassifier

        model = HistGradientBoostingClassifier(
            max_iter=ROUNDS, max_depth=DEPTH, max_leaf_nodes=None, learning_rate=RATE, max_bins=255,
            early_stopping=False, random_state=0,
        )
        model.fit(x, y)
    else:
        import lightgbm as lgb

        model = lgb.LGBMClassifier(
            n_estimators=ROUNDS, max_depth=DEPTH, num_leaves=2**DEPTH, learning_rate=RATE, max_bin=255,
            reg_lambda=1.0, min_child_weight=1.0, min_child_samples=1, num_threads=1, verbose=-1,
        )
        model.fit(x, y)
    fit = time.perf_counter() - fit_start
    h = pd.read_csv(holdout)
    accuracy = float((model.predict(h[features].to_numpy(np.float32)) == h[target].to_numpy()).mean())
    print(json.dumps({"read_s": read, "fit_s": fit, "accuracy": accuracy}))


def run(argv: list[str], env: dict | None = None) -> tuple[float, float, str]:
    """Runs a command on core 0; returns (wall seconds, peak RSS MiB, stdout)."""
    started = time.perf_counter()
    child = subprocess.Popen(["taskset", "-c", "0", *argv], stdout=subprocess.PIPE, env=env)
    out = child.stdout.read().decode() if child.stdout else ""
    _, status, usage = os.wait4(child.pid, 0)
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"{argv} failed")
    return time.perf_counter() - started, usage.ru_maxrss / 1024, out


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--generate":
        generate(Path(sys.argv[2]), [int(n) for n in sys.argv[3].split(",")])
        return
    if len(sys.argv) > 1 and sys.argv[1] == "--worker":
        python_worker(*sys.argv[2:6])
        return
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--mlops", required=True)
    parser.add_argument("--rows", default="100000,1000000")
    parser.add_argument("--dir", type=Path)
    parser.add_argument("--tools", default="mlops,sklearn,lightgbm")
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    sizes = [int(n) for n in args.rows.split(",")]
    work = args.dir or Path(tempfile.mkdtemp(prefix="train-bench-"))
    work.mkdir(parents=True, exist_ok=True)
    subprocess.run([sys.executable, __file__, "--generate", str(work), args.rows], check=True)
    env = {**os.environ, "OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    results = []
    for n in sizes:
        for target, task in [("binary", "binary"), ("four", "4 classes")]:
            train = str(work / f"train-{n}.csv")
            for tool in args.tools.split(","):
                if tool == "mlops":
                    model = work / f"m-{n}-{target}.onnx"
                    wall, rss, _ = run([args.mlops, "train", "--contract", str(work / f"{target}.yaml"), "--config",
                                        str(work / "train.yaml"), "--out", str(model), train], env)
                    record = json.loads(model.with_suffix(".training.json").read_text())
                    fit = record["duration_ms"] / 1e3
                    evaluation = work / f"e-{n}-{target}.json"
                    subprocess.run([args.mlops, "evaluate", "--model", str(model), "--contract", str(work / f"{target}.yaml"),
                                    "--json", str(evaluation), str(work / "holdout.csv")], check=True, stdout=subprocess.DEVNULL,
                                   stderr=subprocess.DEVNULL)
                    accuracy = json.loads(evaluation.read_text())["candidate"]["metrics"]["accuracy"]
                else:
                    wall, rss, out = run([sys.executable, __file__, "--worker", tool, train, str(work / "holdout.csv"), target], env)
                    worker = json.loads(out.strip().splitlines()[-1])
                    fit, accuracy = worker["fit_s"], worker["accuracy"]
                results.append({"rows": n, "task": task, "tool": tool, "wall_s": wall, "fit_s": fit, "peak_rss_mib": rss,
                                "holdout_accuracy": accuracy})
                print(f"{n} {task} {tool}: wall {wall:.1f} s, fit {fit:.1f} s, {rss:.0f} MiB, accuracy {accuracy:.4f}",
                      file=sys.stderr)
    if args.out:
        args.out.write_text(json.dumps(results, indent=1) + "\n")
    print("| rows | task | tool | fit s | wall s | peak RSS MiB | holdout accuracy | fit ÷ mlops | wall ÷ mlops | RSS ÷ mlops |")
    print("|---:|---|---|---:|---:|---:|---:|---:|---:|---:|")
    for r in results:
        base = next(b for b in results if b["rows"] == r["rows"] and b["task"] == r["task"] and b["tool"] == "mlops")
        print(f"| {r['rows']:,} | {r['task']} | {r['tool']} | {r['fit_s']:.1f} | {r['wall_s']:.1f} | {r['peak_rss_mib']:.0f} | "
              f"{r['holdout_accuracy']:.4f} | {r['fit_s'] / base['fit_s']:.2f} | {r['wall_s'] / base['wall_s']:.2f} | "
              f"{r['peak_rss_mib'] / base['peak_rss_mib']:.2f} |")


if __name__ == "__main__":
    main()

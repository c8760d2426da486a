"""Cold start of the Python alternatives to the predict binary, on this machine.

Each run is a fresh `python` process that imports its libraries, loads the example model
and answers one prediction, as a Python Lambda handler would on its first invocation; the
time is process start to the printed answer, the memory the child's peak RSS (wait4).

    python bench/python_cold_start.py --runs 10

Needs onnxruntime, scikit-learn and numpy (examples/penguins/requirements.txt).
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
EXAMPLE = os.path.join(ROOT, "examples", "penguins")

ONNXRUNTIME = f"""
import numpy as np, onnxruntime as ort
s = ort.InferenceSession({os.path.join(EXAMPLE, "model.onnx")!r}, providers=["CPUExecutionProvider"])
row = {{"island": "Biscoe", "bill_length_mm": 50.0, "bill_depth_mm": 15.2, "flipper_length_mm": 218.0, "body_mass_g": 5700.0, "sex": "male"}}
feeds = {{}}
for i in s.get_inputs():
    v = row[i.name]
    feeds[i.name] = np.array([[v]], dtype=object if isinstance(v, str) else np.float32)
print(s.run(None, feeds)[0])
"""

SKLEARN = """
import pickle, sys
model = pickle.load(open(sys.argv[1], "rb"))
import pandas as pd
row = pd.DataFrame([{"island": "Biscoe", "bill_length_mm": 50.0, "bill_depth_mm": 15.2, "flipper_length_mm": 218.0, "body_mass_g": 5700.0, "sex": "male"}])
print(model.predict(row))
"""

PICKLE_MODEL = """
import pickle, sys, pandas as pd
from sklearn.compose import ColumnTransformer
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler
df = pd.read_csv(sys.argv[1]).dropna(subset=["species"])
num = ["bill_length_mm", "bill_depth_mm", "flipper_length_mm", "body_mass_g"]
cat = ["island", "sex"]
pre = ColumnTransformer([("num", make_pipeline(SimpleImputer(), StandardScaler()), num),
                         ("cat", make_pipeline(SimpleImputer(strategy="most_frequent"), OneHotEncoder(handle_unknown="ignore")), cat)])
model = make_pipeline(pre, LogisticRegression(max_iter=1000)).fit(df[num + cat], df["species"])
pickle.dump(model, open(sys.argv[2], "wb"))
"""


def run_once(args):
    start = time.perf_counter()
    child = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    out = child.stdout.read()
    _, status, usage = os.wait4(child.pid, 0)
    elapsed = time.perf_counter() - start
    if status != 0:
        raise SystemExit(f"{args[:2]} failed: {child.stderr.read().decode()}")
    return elapsed * 1e3, usage.ru_maxrss / 1024, out.decode().strip()


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument("--json", help="write the runs here")
    args = parser.parse_args()
    pickle_path = os.path.join(ROOT, "target", "penguins-sklearn.pkl")
    os.makedirs(os.path.dirname(pickle_path), exist_ok=True)
    subprocess.run([sys.executable, "-c", PICKLE_MODEL, os.path.join(EXAMPLE, "train.csv"), pickle_path], check=True)
    cases = {
        "python + onnxruntime (ONNX model)": [sys.executable, "-c", ONNXRUNTIME],
        "python + scikit-learn (pickled pipeline, pandas input)": [sys.executable, "-c", SKLEARN, pickle_path],
    }
    results = {}
    for name, command in cases.items():
        runs = [run_once(command) for _ in range(args.runs)]
        times = sorted(r[0] for r in runs)
        rss = sorted(r[1] for r in runs)
        results[name] = {"ms": times, "rss_mb": rss, "answer": runs[0][2]}
        print(f"{name}: {args.runs} runs, process start → first answer median {statistics.median(times):.0f} ms "
              f"(min {times[0]:.0f}, max {times[-1]:.0f}); peak RSS median {statistics.median(rss):.1f} MB")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=2)


if __name__ == "__main__":
    main()

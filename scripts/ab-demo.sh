#!/usr/bin/env bash
# An A/B test end to end, locally: `mlops serve` with the example's scikit-learn model as the
# champion (v1) and the built-in trainer's as the challenger (v2) at half the keys, 300
# requests with x-request-key, their species dropped into the lake as ground truth, then
# `mlops ab report`. Needs the debug binary (cargo build --locked) and python3; MLOPS
# overrides the binary; the work goes to /tmp/abdemo.
set -euo pipefail
MLOPS=${MLOPS:+$(realpath "$MLOPS")}
cd "$(dirname "$0")/.."
MLOPS=${MLOPS:-$PWD/target/debug/mlops}
rm -rf /tmp/abdemo && mkdir -p /tmp/abdemo
"$MLOPS" train --contract examples/penguins/contract.yaml --out /tmp/abdemo/v2.onnx examples/penguins/train.csv > /tmp/abdemo/train.log 2>&1
"$MLOPS" serve --dir /tmp/abdemo/lake --lake-port 29000 --predict-port 28080 --events-port 29001 --sfn-port 29002 --firehose-port 29003 --ab-version 2 --ab-weight 0.5 > /tmp/abdemo/serve.log 2>&1 &
SERVE=$!
trap 'kill $SERVE' EXIT
sleep 3
eval "$(grep '  export' /tmp/abdemo/serve.log | sed 's/^  //')"
"$MLOPS" model register --name penguins --model examples/penguins/model.onnx --contract examples/penguins/contract.yaml --train examples/penguins/train.csv --class-labels Adelie,Chinstrap,Gentoo > /dev/null
"$MLOPS" model register --name penguins --model /tmp/abdemo/v2.onnx --contract examples/penguins/contract.yaml --train examples/penguins/train.csv --class-labels Adelie,Chinstrap,Gentoo > /dev/null
python3 - <<'PY'
import csv, json, urllib.request
rows = list(csv.DictReader(open("examples/penguins/train.csv")))
labels = [("inference_id", "species")]
seen = {}
for i in range(300):
    r = rows[i % len(rows)]
    inst = {k: (None if v in ("", "NA") else (float(v) if k not in ("island", "sex") else v)) for k, v in r.items() if k not in ("species", "year")}
    req = urllib.request.Request("http://127.0.0.1:28080/predict", data=json.dumps({"instances": [inst]}).encode(),
        headers={"content-type": "application/json", "x-request-key": f"customer-{i}", "x-request-id": f"ab-{i}"})
    body = json.load(urllib.request.urlopen(req))
    seen[body["variant"]] = seen.get(body["variant"], 0) + 1
    labels.append((f"ab-{i}:0", r["species"]))
print("answered by variant:", seen)
with open("/tmp/abdemo/labels.csv", "w", newline="") as f:
    csv.writer(f).writerows(labels)
PY
"$MLOPS" lake dataset --contract examples/penguins/labels.yaml --baseline-from /tmp/abdemo/labels.csv
sleep 2
mkdir -p /tmp/abdemo/lake/mlops-lake/raw/penguins-labels && cp /tmp/abdemo/labels.csv /tmp/abdemo/lake/mlops-lake/raw/penguins-labels/labels.csv
sleep 3
"$MLOPS" ab report --model penguins --labels penguins-labels

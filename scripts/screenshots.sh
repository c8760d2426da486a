#!/usr/bin/env bash
# Regenerates the screenshots of the HTML drift report in docs/screenshots/:
#
#   drift-penguins.png     the penguins example, as drift-check reports it in `mlops demo`: the
#                          model's baseline against the day of the shifted batch;
#   drift-100-columns.png  `mlops drift` on a generated dataset of 100 columns with names of
#                          about 200 characters, a third of them drifted, some with missing values.
#
# The reports are read in headless Chromium. Needs the debug binary (cargo build --locked -p
# mlops --bin mlops), Chromium, pngquant and python3 (Debian: apt-get install chromium pngquant).
# MLOPS and CHROMIUM override the binary and the
# browser; KEEP=dir keeps the two reports there.
set -euo pipefail

cd "$(dirname "$0")/.."
mlops=$(realpath "${MLOPS:-target/debug/mlops}")
chromium=${CHROMIUM:-chromium}
out=docs/screenshots
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
mkdir -p "$out"

# shot REPORT PNG HEIGHT: a 1400-pixel-wide screenshot of REPORT, HEIGHT pixels tall, reduced
# to a 256-colour palette by pngquant so that a page of a hundred rows stays small.
shot() {
    "$chromium" --headless --no-sandbox --disable-gpu --disable-quic --no-first-run \
        --disable-background-networking --disable-component-update --disable-sync \
        --user-data-dir="$(mktemp -d -p "$work")" --hide-scrollbars --window-size="1400,$3" \
        --screenshot="$work/shot.png" "file://$(realpath "$1")" 2>/dev/null
    pngquant --force --quality 70-95 --output "$2" "$work/shot.png"
}

# The penguins report is the one drift-check writes on the demo's second day, when the shifted
# batch arrives: the newest report in the demo's lake.
"$mlops" demo --keep "$work/demo" >/dev/null
penguins=$(find "$work/demo" -path '*/reports/drift/penguins/*.html' | sort | tail -n 1)
shot "$penguins" "$out/drift-penguins.png" 1600

wide=$work/wide
mkdir -p "$wide"
python3 - "$wide" <<'EOF'
"""A dataset of 100 columns with long names: a contract, a reference and a current batch."""
import csv
import json
import random
import sys

directory = sys.argv[1]
rng = random.Random(7)

# Names alike at both ends and told apart in the middle, names told apart at the end, and a few
# with characters HTML must escape.
middle = (
    "telemetry.fleet_vehicle_engine_control_unit.sensor_readings.aggregated_over_the_trailing_"
    "seven_day_window.{metric}_{stat}.normalised_by_the_fleet_wide_baseline_of_the_same_calendar_"
    "month_and_region"
)
ending = (
    "customer_account_lifetime_activity_summary_from_the_billing_and_support_systems_joined_on_"
    "the_account_identifier_after_deduplication_and_currency_normalisation__{metric}__segment_{k:02d}"
)
metrics = ["coolant_temperature", "oil_pressure", "battery_voltage", "fuel_rate", "rpm", "intake_air"]
stats = ["mean", "p95", "max", "stddev", "min"]
names = []
for metric in metrics:
    for stat in stats:
        names.append(middle.format(metric=metric, stat=stat))
for k in range(66):
    names.append(ending.format(metric=metrics[k % len(metrics)], k=k))
for label in ['share of "late" & <undelivered> parcels', "ratio a<b & b>c, 'quoted'", "plain_short_name", "x"]:
    names.append(label + (" (per depot, weekly)" if len(label) > 10 else ""))
names = names[:100]
assert len(set(names)) == 100

columns = []
for i, name in enumerate(names):
    kind = "category" if i % 9 == 4 else ("int" if i % 5 == 1 else "float")
    column = {"name": name, "type": kind, "nullable": i % 4 == 0}
    if kind == "category":
        column["allowed"] = ["north", "south", "east", "west", "central"]
    columns.append(column)
contract = {"dataset": "fleet-wide", "version": 1, "columns": columns}
with open(f"{directory}/contract.yaml", "w") as f:
    # JSON is YAML, and its quoting keeps every name intact.
    json.dump(contract, f, indent=1)


def value(i, column, shifted):
    drifted = shifted and i % 3 == 0
    if column["nullable"] and rng.random() < (0.12 if shifted and i % 8 == 0 else 0.03):
        return ""
    if column["type"] == "category":
        weights = [5, 3, 2, 1, 1] if not drifted else [1, 1, 2, 3, 5]
        return rng.choices(column["allowed"], weights)[0]
    centre, spread = 50 + i * 13, 5 + i % 7
    x = rng.gauss(centre + (spread * (0.6 + i / 100) if drifted else 0), spread)
    return str(round(x)) if column["type"] == "int" else f"{x:.3f}"


for file, rows, shifted in [("reference.csv", 1500, False), ("current.csv", 800, True)]:
    with open(f"{directory}/{file}", "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(names)
        for _ in range(rows):
            writer.writerow([value(i, c, shifted) for i, c in enumerate(columns)])
EOF
(
    cd "$wide"
    "$mlops" drift --contract contract.yaml --reference reference.csv --current current.csv \
        --html report.html >/dev/null
)
shot "$wide/report.html" "$out/drift-100-columns.png" 5330

if [ -n "${KEEP:-}" ]; then
    mkdir -p "$KEEP"
    cp "$penguins" "$KEEP/drift-penguins.html"
    cp "$wide/report.html" "$KEEP/drift-100-columns.html"
fi

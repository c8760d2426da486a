#!/usr/bin/env python3
"""Prepare the Palmer penguins example data.

Writes, next to this script:

  train.csv                      the full data set (344 rows), used as the
                                 training set and as the drift baseline
  batches/batch-01.csv           300-row bootstrap sample: clean incoming data
  batches/batch-02.csv           300-row bootstrap sample plus 6 rows that
                                 break the data contract (306 data rows)
  batches/batch-03-shifted.csv   300-row bootstrap sample with the numeric
                                 features shifted, as after an upstream change
  batches/README.md              what each batch contains, including the line
                                 numbers of the invalid rows in batch-02

Everything is deterministic: the samples use fixed seeds, so re-running the
script produces byte-identical files.

At the end the script reads the batches back and checks them: every row
except the planted ones satisfies the ranges in contract.yaml, the planted
rows do not, and the Population Stability Index (PSI) of each numeric
feature against train.csv is low for batch-01/02 and high for batch-03.

Data: Palmer penguins (Horst, Hill & Gorman, 2020), CC0, via the
`palmerpenguins` package.
"""

from __future__ import annotations

import csv
import math
import sys
from pathlib import Path

import numpy as np
from palmerpenguins import load_penguins

HERE = Path(__file__).resolve().parent
BATCH_DIR = HERE / "batches"

COLUMNS = [
    "species",
    "island",
    "bill_length_mm",
    "bill_depth_mm",
    "flipper_length_mm",
    "body_mass_g",
    "sex",
    "year",
]
NUMERIC = ["bill_length_mm", "bill_depth_mm", "flipper_length_mm", "body_mass_g"]
ONE_DECIMAL = {"bill_length_mm", "bill_depth_mm"}
INTEGER = {"flipper_length_mm", "body_mass_g", "year"}

BATCH_ROWS = 300
SEED_BATCH_01 = 101
SEED_BATCH_02 = 202
SEED_BATCH_03 = 303

# Upstream change simulated in batch-03: recalibrated calipers and a scale
# that is no longer tared. The offsets are chosen so that every shifted row
# still lies inside the contract's ranges (the heaviest penguin, 6300 g,
# becomes 6800 g): batch-03 is valid data that has drifted, not invalid data.
SHIFT_BILL_LENGTH_MM = 4.0
SHIFT_FLIPPER_LENGTH_MM = 8
SHIFT_BODY_MASS_G = 500

# A copy of the rules in contract.yaml, used only for the self-check below.
CONTRACT = {
    "species": {"nullable": False, "allowed": {"Adelie", "Chinstrap", "Gentoo"}},
    "island": {"nullable": False, "allowed": {"Biscoe", "Dream", "Torgersen"}},
    "bill_length_mm": {"nullable": True, "min": 25.0, "max": 70.0},
    "bill_depth_mm": {"nullable": True, "min": 10.0, "max": 30.0},
    "flipper_length_mm": {"nullable": True, "min": 150.0, "max": 250.0},
    "body_mass_g": {"nullable": True, "min": 2000.0, "max": 7000.0},
    "sex": {"nullable": True, "allowed": {"female", "male"}},
    "year": {"nullable": False, "min": 2007, "max": 2030, "int": True},
}

PSI_FLOOR = 1e-4
PSI_STABLE = 0.1
PSI_SHIFTED = 0.25


# ---------------------------------------------------------------------------
# Loading and writing
# ---------------------------------------------------------------------------


def load_records() -> list[dict]:
    """Load the data set as a list of dicts, missing values as None."""
    df = load_penguins()
    assert list(df.columns) == COLUMNS, list(df.columns)
    records = []
    for row in df.itertuples(index=False):
        rec = {}
        for name, value in zip(COLUMNS, row):
            if value is None or (isinstance(value, float) and math.isnan(value)):
                rec[name] = None
            elif name in NUMERIC or name == "year":
                rec[name] = float(value)
            else:
                rec[name] = str(value)
        records.append(rec)
    return records


def fmt(name: str, value) -> str:
    """Format one field the way it appears in the source data."""
    if value is None:
        return ""
    if name in INTEGER:
        return str(int(round(value)))
    if name in ONE_DECIMAL:
        return f"{value:.1f}"
    return str(value)


def to_fields(rec: dict) -> list[str]:
    return [fmt(name, rec[name]) for name in COLUMNS]


def write_csv(path: Path, rows: list[list[str]]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f, lineterminator="\n")
        writer.writerow(COLUMNS)
        writer.writerows(rows)


def bootstrap(records: list[dict], seed: int, n: int = BATCH_ROWS) -> list[dict]:
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, len(records), size=n)
    return [dict(records[i]) for i in idx]


def shift(rec: dict) -> dict:
    out = dict(rec)
    if out["bill_length_mm"] is not None:
        out["bill_length_mm"] = round(out["bill_length_mm"] + SHIFT_BILL_LENGTH_MM, 1)
    if out["flipper_length_mm"] is not None:
        out["flipper_length_mm"] = out["flipper_length_mm"] + SHIFT_FLIPPER_LENGTH_MM
    if out["body_mass_g"] is not None:
        out["body_mass_g"] = out["body_mass_g"] + SHIFT_BODY_MASS_G
    return out


# ---------------------------------------------------------------------------
# Invalid rows planted in batch-02
# ---------------------------------------------------------------------------

# Each entry: 0-based position among the data rows of the final file, a short
# description, and a function turning a complete, valid record into the bad
# row's fields. The position fixes the file line number (position + 2, as
# line 1 is the header).
def _bad_bill_length(rec):
    fields = to_fields(rec)
    fields[COLUMNS.index("bill_length_mm")] = "abc"
    return fields


def _bad_island(rec):
    fields = to_fields(rec)
    fields[COLUMNS.index("island")] = "Atlantis"
    return fields


def _bad_body_mass(rec):
    fields = to_fields(rec)
    fields[COLUMNS.index("body_mass_g")] = "-3650"
    return fields


def _bad_flipper(rec):
    fields = to_fields(rec)
    fields[COLUMNS.index("flipper_length_mm")] = "1950"
    return fields


def _missing_island(rec):
    fields = to_fields(rec)
    fields[COLUMNS.index("island")] = ""
    return fields


def _ragged(rec):
    # Only the first five fields: body_mass_g, sex and year are absent.
    return to_fields(rec)[:5]


BAD_ROWS = [
    (16, "bill_length_mm is not a number (`abc`)", _bad_bill_length),
    (65, "island `Atlantis` is not in the allowed list", _bad_island),
    (122, "body_mass_g is negative (`-3650`)", _bad_body_mass),
    (181, "flipper_length_mm `1950` is far above the maximum of 250", _bad_flipper),
    (239, "island is empty, but the column is not nullable", _missing_island),
    (297, "ragged row: 5 fields instead of 8", _ragged),
]


def build_batch_02(records: list[dict]) -> tuple[list[list[str]], list[tuple[int, str]]]:
    sample = [to_fields(r) for r in bootstrap(records, SEED_BATCH_02)]
    # Base the bad rows on real, complete records (taken in order from the
    # full data set, one per species where possible) so that each one breaks
    # exactly one rule.
    complete = [r for r in records if all(r[c] is not None for c in COLUMNS)]
    bases = [complete[i] for i in (5, 160, 300, 60, 200, 320)]
    rows = list(sample)
    bad_lines = []
    for (pos, desc, make), base in zip(BAD_ROWS, bases):
        rows.insert(pos, make(base))
        bad_lines.append((pos + 2, desc))
    assert len(rows) == BATCH_ROWS + len(BAD_ROWS)
    return rows, bad_lines


# ---------------------------------------------------------------------------
# Checks
# ---------------------------------------------------------------------------


def read_csv(path: Path) -> list[list[str]]:
    with path.open(newline="", encoding="utf-8") as f:
        rows = list(csv.reader(f))
    assert rows[0] == COLUMNS, rows[0]
    return rows[1:]


def row_errors(fields: list[str]) -> list[str]:
    """Rules of contract.yaml that a row breaks (empty list when valid)."""
    if len(fields) != len(COLUMNS):
        return [f"expected {len(COLUMNS)} fields, got {len(fields)}"]
    errors = []
    for name, raw in zip(COLUMNS, fields):
        rule = CONTRACT[name]
        if raw == "":
            if not rule["nullable"]:
                errors.append(f"{name}: missing")
            continue
        if "allowed" in rule:
            if raw not in rule["allowed"]:
                errors.append(f"{name}: {raw!r} not allowed")
            continue
        try:
            value = int(raw) if rule.get("int") else float(raw)
        except ValueError:
            errors.append(f"{name}: {raw!r} is not a number")
            continue
        if not rule["min"] <= value <= rule["max"]:
            errors.append(f"{name}: {raw} outside [{rule['min']}, {rule['max']}]")
    return errors


def numeric_column(rows: list[list[str]], name: str) -> np.ndarray:
    i = COLUMNS.index(name)
    return np.array([float(r[i]) for r in rows if r[i] != ""], dtype=np.float64)


def decile_edges(values: np.ndarray) -> np.ndarray:
    """Deciles (0.1 .. 0.9, numpy's default linear interpolation), deduplicated."""
    return np.unique(np.quantile(values, np.linspace(0.1, 0.9, 9)))


def bin_proportions(values: np.ndarray, edges: np.ndarray) -> np.ndarray:
    # Bin i holds (edges[i-1], edges[i]]; the outer bins are open-ended. A
    # value equal to an edge therefore falls into the lower bin.
    idx = np.searchsorted(edges, values, side="left")
    counts = np.bincount(idx, minlength=len(edges) + 1)
    return np.maximum(counts / counts.sum(), PSI_FLOOR)


def psi(expected: np.ndarray, actual: np.ndarray) -> float:
    edges = decile_edges(expected)
    e = bin_proportions(expected, edges)
    a = bin_proportions(actual, edges)
    return float(np.sum((a - e) * np.log(a / e)))


def main() -> int:
    records = load_records()
    assert len(records) == 344, len(records)

    train_path = HERE / "train.csv"
    write_csv(train_path, [to_fields(r) for r in records])

    batch_01 = [to_fields(r) for r in bootstrap(records, SEED_BATCH_01)]
    write_csv(BATCH_DIR / "batch-01.csv", batch_01)

    batch_02, bad_lines = build_batch_02(records)
    write_csv(BATCH_DIR / "batch-02.csv", batch_02)

    batch_03 = [to_fields(shift(r)) for r in bootstrap(records, SEED_BATCH_03)]
    write_csv(BATCH_DIR / "batch-03-shifted.csv", batch_03)

    write_batch_readme(bad_lines)

    print(f"wrote {train_path.relative_to(HERE)} ({len(records)} rows)")
    print(f"wrote batches/batch-01.csv ({len(batch_01)} rows, seed {SEED_BATCH_01})")
    print(f"wrote batches/batch-02.csv ({len(batch_02)} rows, seed {SEED_BATCH_02})")
    print(f"wrote batches/batch-03-shifted.csv ({len(batch_03)} rows, seed {SEED_BATCH_03})")
    print("invalid rows in batches/batch-02.csv (file line, header = line 1):")
    for line, desc in bad_lines:
        print(f"  line {line}: {desc}")

    # Read everything back and check it against the contract and the PSI
    # targets.
    ok = True
    train = read_csv(train_path)
    files = {
        "batch-01": read_csv(BATCH_DIR / "batch-01.csv"),
        "batch-02": read_csv(BATCH_DIR / "batch-02.csv"),
        "batch-03-shifted": read_csv(BATCH_DIR / "batch-03-shifted.csv"),
    }
    expected_bad = {line for line, _ in bad_lines}

    for label, rows in [("train", train), *files.items()]:
        found_bad = {n + 2 for n, r in enumerate(rows) if row_errors(r)}
        want = expected_bad if label == "batch-02" else set()
        if found_bad != want:
            ok = False
            print(f"CHECK FAILED: {label}: invalid lines {sorted(found_bad)}, expected {sorted(want)}")
    for line in sorted(expected_bad):
        print(f"  line {line} fails: {'; '.join(row_errors(files['batch-02'][line - 2]))}")

    valid = {
        label: [r for n, r in enumerate(rows) if (n + 2) not in expected_bad or label != "batch-02"]
        for label, rows in files.items()
    }

    print()
    print("PSI against train.csv (deciles of train, 10 bins, floor 1e-4):")
    header = f"  {'feature':<18}" + "".join(f"{label:>18}" for label in valid)
    print(header)
    shifted_high = 0
    for name in NUMERIC:
        base = numeric_column(train, name)
        cells = []
        for label, rows in valid.items():
            value = psi(base, numeric_column(rows, name))
            cells.append(f"{value:>18.4f}")
            if label == "batch-03-shifted":
                shifted_high += value > PSI_SHIFTED
            elif value >= PSI_STABLE:
                ok = False
                print(f"CHECK FAILED: {label} {name} PSI {value:.4f} >= {PSI_STABLE}")
        print(f"  {name:<18}" + "".join(cells))
    if shifted_high < 3:
        ok = False
        print(f"CHECK FAILED: batch-03-shifted has PSI > {PSI_SHIFTED} on only {shifted_high} features")

    print()
    print("all checks passed" if ok else "some checks FAILED")
    return 0 if ok else 1


def write_batch_readme(bad_lines: list[tuple[int, str]]) -> None:
    lines = [
        "# Incoming batches",
        "",
        "Generated by `../prepare_data.py`; do not edit by hand. Each batch is a",
        f"bootstrap sample ({BATCH_ROWS} rows drawn with replacement, fixed seed) of the",
        "full Palmer penguins data set in `../train.csv`.",
        "",
        "| file | seed | what it is |",
        "| --- | --- | --- |",
        f"| `batch-01.csv` | {SEED_BATCH_01} | clean data resembling the training set: passes the contract, no drift |",
        f"| `batch-02.csv` | {SEED_BATCH_02} | like batch-01, plus {len(bad_lines)} invalid rows ({BATCH_ROWS + len(bad_lines)} data rows) |",
        f"| `batch-03-shifted.csv` | {SEED_BATCH_03} | valid rows, numeric features shifted: drift |",
        "",
        "## Invalid rows in `batch-02.csv`",
        "",
        "Line numbers are 1-based file lines; the header is line 1.",
        "",
        "| line | problem |",
        "| --- | --- |",
    ]
    lines += [f"| {line} | {desc} |" for line, desc in bad_lines]
    lines += [
        "",
        "All other rows of all batches satisfy `../contract.yaml`.",
        "",
        "## Shift in `batch-03-shifted.csv`",
        "",
        "Simulates an upstream change in how measurements are taken:",
        "",
        f"- `bill_length_mm` + {SHIFT_BILL_LENGTH_MM}",
        f"- `flipper_length_mm` + {SHIFT_FLIPPER_LENGTH_MM}",
        f"- `body_mass_g` + {SHIFT_BODY_MASS_G}",
        "- `bill_depth_mm` unchanged",
        "",
        "The shifted values stay inside the contract's ranges, so the batch is valid",
        "but its Population Stability Index against `train.csv` is well above 0.25 on",
        "the three shifted features.",
        "",
    ]
    (BATCH_DIR / "README.md").write_text("\n".join(lines), encoding="utf-8")


if __name__ == "__main__":
    sys.exit(main())

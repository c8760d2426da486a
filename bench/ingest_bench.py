#!/usr/bin/env python3
"""Ingest throughput on one core: `mlops ingest` beside pandas and whylogs, on the same files.

Generates two deterministic CSV files (a numeric one and a mixed numeric/categorical one,
each with a few invalid rows), writes their data contracts and a baseline profile, then
times, each in its own process pinned to one core with `taskset`:

* **mlops**: `mlops ingest --contract C --baseline B --out DIR FILE` (parse, validate,
  profile, write curated Parquet, quarantine JSON Lines, profile and manifest);
* **pandas**: `pd.read_csv`, the contract's rules as vectorised pandas checks, the same
  profile (count, nulls, min, max, mean, m2, histogram on the baseline's edges, value
  counts), valid rows to snappy Parquet typed per the contract, invalid rows to JSON Lines;
* **whylogs**: `pd.read_csv` and `why.log(pandas=df)`, the profile written to a file.

Wall time is measured around the child process and its peak RSS taken from `os.wait4`.
Throughput is in MB/s with MB = 10^6 bytes of CSV; RSS is in MiB. Results go to a JSON file
and a Markdown table is printed for BENCHMARKS.md.

    python bench/ingest_bench.py                      # ~1 GB files, as in BENCHMARKS.md
    python bench/ingest_bench.py --size-mb 20         # a quick run
    python bench/ingest_bench.py --tools pandas,whylogs --size-mb 20   # without mlops

The packages are pinned in bench/requirements-ingest.txt (`make bench-ingest` installs them).
"""

from __future__ import annotations

import os

# whylogs sends usage statistics unless this is set before it is imported; children inherit it.
os.environ.setdefault("WHYLOGS_NO_ANALYTICS", "1")
# polars runs on one thread, as every tool here runs on one core.
os.environ.setdefault("POLARS_MAX_THREADS", "1")

import argparse
import csv
import io
import json
import math
import platform
import random
import shlex
import shutil
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from benchlib import cpu_model, measure, versions as package_versions, warm

ROOT = Path(__file__).resolve().parent.parent
GENERATOR_VERSION = 1
MB = 1e6
INVALID_RATE = 0.001  # share of rows that break a rule
QUOTED_RATE = 0.005  # share of rows of the mixed file with a quoted, comma-holding comment
CHUNK_ROWS = 200_000  # rows generated at a time
ROW_GROUP_ROWS = 1 << 20  # as the curated writer's row groups
TIME_START_MS = 1_704_067_200_000  # 2024-01-01T00:00:00Z
TIME_SPAN_MS = 366 * 86_400_000


# --- The two datasets -------------------------------------------------------------------


@dataclass
class Col:
    name: str
    type: str  # float, int, bool, timestamp, category, string
    gen: tuple
    nullable: bool = False
    min: float | None = None
    max: float | None = None
    allowed: list[str] | None = None
    null_rate: float = 0.0
    description: str = ""

    @property
    def numeric(self) -> bool:
        return self.type in ("float", "int")


@dataclass
class Dataset:
    key: str  # numeric or mixed
    name: str  # the contract's dataset name
    description: str
    columns: list[Col]
    features: list[str]
    breakers: list[str]  # kinds of invalid rows
    quoted_rate: float = 0.0
    comment_column: str | None = None
    quoted_comments: list[str] = field(default_factory=list)

    def column(self, name: str) -> Col:
        return next(c for c in self.columns if c.name == name)


def _f(name, gen, lo, hi, nullable=False, description=""):
    return Col(name, "float", gen, nullable=nullable, min=lo, max=hi, null_rate=0.01 if nullable else 0.0,
               description=description)


NUMERIC = Dataset(
    key="numeric",
    name="bench_numeric",
    description="Sensor readings: a row number and 20 float columns.",
    columns=[
        Col("seq", "int", ("seq",), min=0, description="Row number."),
        _f("temperature_c", ("normal", 21.0, 4.0, 2), -50, 80),
        _f("humidity_pct", ("normal", 45.0, 12.0, 1), 0, 100, nullable=True),
        _f("pressure_hpa", ("normal", 1013.0, 8.0, 1), 870, 1090),
        _f("voltage_v", ("normal", 230.0, 3.0, 2), 180, 260),
        _f("current_a", ("lognormal", 1.5, 0.5, 3), 0, 200),
        _f("power_w", ("lognormal", 7.0, 0.6, 1), 0, 100000),
        _f("vibration_x", ("normal", 0.0, 0.8, 4), -20, 20),
        _f("vibration_y", ("normal", 0.0, 0.8, 4), -20, 20),
        _f("vibration_z", ("normal", 0.0, 1.2, 4), -20, 20, nullable=True),
        _f("rpm", ("normal", 1450.0, 120.0, 1), 0, 6000),
        _f("flow_lpm", ("lognormal", 3.0, 0.4, 2), 0, 1000),
        _f("level_cm", ("uniform", 0.0, 250.0, 1), 0, 300),
        _f("ph", ("normal", 7.2, 0.3, 2), 0, 14),
        _f("conductivity_us", ("lognormal", 6.0, 0.3, 1), 0, 20000, nullable=True),
        _f("turbidity_ntu", ("lognormal", 0.5, 0.8, 3), 0, 1000),
        _f("co2_ppm", ("normal", 600.0, 150.0, 1), 250, 5000),
        _f("noise_db", ("normal", 55.0, 8.0, 1), 0, 140),
        _f("lux", ("lognormal", 5.0, 1.2, 1), 0, 200000, nullable=True),
        _f("latency_ms", ("lognormal", 2.0, 0.7, 3), 0, 60000),
        _f("error_rate", ("uniform", 0.0, 0.05, 5), 0, 1),
    ],
    features=[],  # filled below: every float column
    breakers=["max", "min", "type", "nullable", "int"],
)
NUMERIC.features = [c.name for c in NUMERIC.columns if c.type == "float"]

COUNTRIES = ["US", "DE", "GB", "FR", "IN", "BR", "JP", "CA", "AU", "ES",
             "IT", "NL", "SE", "NO", "PL", "MX", "KR", "ZA", "NG", "AR"]
PHRASES = ["late delivery", "gift wrap", "second order", "call before delivery", "leave at door",
           "damaged box", "loyal customer", "address changed", "express", "returned item"]

MIXED = Dataset(
    key="mixed",
    name="bench_mixed",
    description="Orders: numbers, categories, flags, free text and event times.",
    columns=[
        Col("event_id", "int", ("seq",), min=0, description="Row number."),
        Col("event_time", "timestamp", ("time",), description="RFC 3339, UTC, milliseconds."),
        Col("customer_id", "string", ("customer", 2_000_000)),
        Col("country", "category", ("choice", "zipf"), allowed=COUNTRIES),
        Col("channel", "category", ("choice", [0.5, 0.3, 0.15, 0.05]), allowed=["web", "app", "store", "phone"]),
        Col("status", "category", ("choice", [0.85, 0.07, 0.05, 0.03]),
            allowed=["paid", "pending", "failed", "refunded"]),
        Col("is_member", "bool", ("bool", 0.35)),
        Col("amount", "float", ("lognormal", 3.5, 1.0, 2), min=0, max=100000),
        Col("quantity", "int", ("geometric", 0.4), min=1, max=1000),
        Col("discount", "float", ("uniform", 0.0, 0.5, 2), nullable=True, min=0, max=1, null_rate=0.4),
        Col("rating", "int", ("integers", 1, 5), nullable=True, min=1, max=5, null_rate=0.6),
        Col("latitude", "float", ("uniform", -60.0, 70.0, 5), min=-90, max=90),
        Col("longitude", "float", ("uniform", -180.0, 180.0, 5), min=-180, max=180),
        Col("comment", "string", ("phrase",), nullable=True, null_rate=0.9),
    ],
    features=["country", "channel", "is_member", "amount", "quantity", "discount", "rating"],
    breakers=["max", "min", "type", "nullable", "allowed", "timestamp", "bool"],
    quoted_rate=QUOTED_RATE,
    comment_column="comment",
    quoted_comments=['late, but complete', 'box "slightly" dented', 'gift, wrap, ribbon',
                     'said "leave it", then called', 'two parcels, one missing'],
)

DATASETS = {"numeric": NUMERIC, "mixed": MIXED}

BAD_NUMBERS = ["n/a", "abc", "1.2.3", "#VALUE!", "?", "12,5", "--"]
BAD_CATEGORIES = ["XX", "unknown", "other", "n/a"]
BAD_TIMES = ["2024-13-01T00:00:00Z", "yesterday", "01/02/2024", "2024-02-30", "2024-05-01T25:00:00Z"]
BAD_BOOLS = ["maybe", "2", "t", "unknown"]
BOOL_TEXT = {"true": True, "1": True, "yes": True, "false": False, "0": False, "no": False}


# --- Contract and baseline ----------------------------------------------------------------


def _yaml_number(v: float) -> str:
    return str(int(v)) if float(v).is_integer() else repr(float(v))


def contract_yaml(ds: Dataset) -> str:
    lines = [
        f"# Data contract of the ingest benchmark's {ds.key} file (written by bench/ingest_bench.py).",
        f"# {ds.description}",
        f"dataset: {ds.name}",
        "version: 1",
        f"features: [{', '.join(ds.features)}]",
        "columns:",
    ]
    for c in ds.columns:
        parts = [f"name: {c.name}", f"type: {c.type}", f"nullable: {'true' if c.nullable else 'false'}"]
        if c.min is not None:
            parts.append(f"min: {_yaml_number(c.min)}")
        if c.max is not None:
            parts.append(f"max: {_yaml_number(c.max)}")
        if c.allowed is not None:
            parts.append("allowed: [" + ", ".join(json.dumps(a) for a in c.allowed) + "]")
        lines.append("  - {" + ", ".join(parts) + "}")
    return "\n".join(lines) + "\n"


def decile_edges(values) -> list[float]:
    import numpy as np

    if len(values) == 0:
        return []
    edges = np.quantile(values, [i / 10 for i in range(1, 10)])  # linear, as the baseline's
    out: list[float] = []
    for e in edges:
        if not out or float(e) != out[-1]:
            out.append(float(e))
    return out


def baseline_profile(ds: Dataset, seed: int) -> dict:
    """A baseline profile in mlops' format: decile edges of each numeric column, from a
    sample of valid values drawn apart from the benchmark's rows."""
    import numpy as np

    rng = np.random.default_rng([seed, 99, 0])
    n = 100_000
    columns = {}
    for c in ds.columns:
        if not c.numeric:
            continue
        values = _numbers(c, rng, n, 0)
        edges = decile_edges(np.asarray(values, dtype="float64"))
        columns[c.name] = {
            "kind": "numeric", "count": 0, "nulls": 0, "min": None, "max": None, "mean": 0.0, "m2": 0.0,
            "histogram": {"edges": edges, "counts": [0] * (len(edges) + 1)},
        }
    return {"dataset": ds.name, "rows": 0, "columns": columns}


# --- Data generation -----------------------------------------------------------------------


def _numbers(c: Col, rng, n: int, offset: int):
    """Valid values of a numeric column, as a numpy array."""
    import numpy as np

    kind = c.gen[0]
    if kind == "seq":
        return np.arange(offset, offset + n, dtype="int64")
    if kind == "geometric":
        return np.clip(rng.geometric(c.gen[1], n), c.min, c.max).astype("int64")
    if kind == "integers":
        return rng.integers(c.gen[1], c.gen[2] + 1, n, dtype="int64")
    if kind == "normal":
        x = rng.normal(c.gen[1], c.gen[2], n)
    elif kind == "lognormal":
        x = rng.lognormal(c.gen[1], c.gen[2], n)
    elif kind == "uniform":
        x = rng.uniform(c.gen[1], c.gen[2], n)
    else:
        raise ValueError(kind)
    return np.clip(np.round(x, c.gen[3]), c.min, c.max)


def _column_array(c: Col, rng, n: int, offset: int):
    """Valid values of a column as an Arrow array (nulls where the column allows them)."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.compute as pc

    mask = rng.random(n) < c.null_rate if c.null_rate > 0 else None
    kind = c.gen[0]
    if c.numeric:
        return pa.array(_numbers(c, rng, n, offset), mask=mask)
    if kind == "time":
        ms = TIME_START_MS + np.sort(rng.integers(0, TIME_SPAN_MS, n))
        return pc.strftime(pa.array(ms, pa.timestamp("ms")), format="%Y-%m-%dT%H:%M:%SZ")
    if kind == "customer":
        ids = pc.cast(pa.array(rng.integers(1, c.gen[1], n)), pa.string())
        return pc.binary_join_element_wise("C", pc.utf8_lpad(ids, 7, "0"), "")
    if kind == "bool":
        return pa.array(rng.random(n) < c.gen[1], mask=mask)
    if kind in ("choice", "phrase"):
        values = c.allowed if kind == "choice" else PHRASES
        if kind == "phrase" or c.gen[1] == "zipf":
            w = 1.0 / np.arange(1, len(values) + 1)
        else:
            w = np.asarray(c.gen[1], dtype="float64")
        idx = rng.choice(len(values), n, p=w / w.sum())
        return pa.array(values, pa.string()).take(pa.array(idx, mask=mask))
    raise ValueError(kind)


def _text(v) -> str:
    if v is None:
        return ""
    if isinstance(v, bool):
        return "true" if v else "false"
    return str(v)


def _break_row(ds: Dataset, row: dict, prng: random.Random) -> None:
    """Makes one rule of the row fail: out of range, not of its type, empty where a value is
    required, or outside its allowed set."""
    kind = prng.choice(ds.breakers)
    cols = ds.columns
    if kind in ("max", "min"):
        c = prng.choice([c for c in cols if c.numeric and getattr(c, kind) is not None and c.gen[0] != "seq"])
        bound = getattr(c, kind)
        step = max(1.0, abs(bound) * 0.1) * (1 + prng.random())
        v = bound + step if kind == "max" else bound - step
        if c.type == "int":
            row[c.name] = str(math.floor(v) if kind == "min" else math.ceil(v))
        else:
            row[c.name] = repr(round(v, 2))
    elif kind == "type":
        c = prng.choice([c for c in cols if c.numeric])
        row[c.name] = prng.choice(BAD_NUMBERS)
    elif kind == "nullable":
        c = prng.choice([c for c in cols if not c.nullable])
        row[c.name] = ""
    elif kind == "int":
        c = prng.choice([c for c in cols if c.type == "int"])
        row[c.name] = row[c.name] + ".5"
    elif kind == "allowed":
        c = prng.choice([c for c in cols if c.allowed])
        row[c.name] = prng.choice(BAD_CATEGORIES)
    elif kind == "timestamp":
        c = prng.choice([c for c in cols if c.type == "timestamp"])
        row[c.name] = prng.choice(BAD_TIMES)
    elif kind == "bool":
        c = prng.choice([c for c in cols if c.type == "bool"])
        row[c.name] = prng.choice(BAD_BOOLS)
    else:
        raise ValueError(kind)


def _chunk(ds: Dataset, seed: int, index: int, n: int, offset: int) -> tuple[bytes, int]:
    """`n` rows starting at row `offset`: CSV bytes without a header, and how many rows are
    invalid. Ordinary rows are written by Arrow's CSV writer; the few invalid and quoted rows
    are written by Python's csv module and spliced in at their positions."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.csv as pacsv

    rng = np.random.default_rng([seed, list(DATASETS).index(ds.key), index])
    arrays = {c.name: _column_array(c, rng, n, offset) for c in ds.columns}
    n_invalid = int(rng.binomial(n, INVALID_RATE))
    n_quoted = int(rng.binomial(n, ds.quoted_rate)) if ds.quoted_rate else 0
    special = np.sort(rng.choice(n, n_invalid + n_quoted, replace=False))
    is_invalid = np.zeros(len(special), dtype=bool)
    is_invalid[rng.choice(len(special), n_invalid, replace=False)] = True
    prng = random.Random(int(rng.integers(0, 2**63)))

    keep = np.ones(n, dtype=bool)
    keep[special] = False
    table = pa.table(arrays).filter(pa.array(keep))
    buf = io.BytesIO()
    pacsv.write_csv(table, buf, pacsv.WriteOptions(include_header=False, quoting_style="none"))
    body = buf.getvalue()
    starts = np.concatenate([[0], np.flatnonzero(np.frombuffer(body, dtype=np.uint8) == 10) + 1])

    special_rows = {name: a.take(pa.array(special)).to_pylist() for name, a in arrays.items()}
    out = io.BytesIO()
    text = io.StringIO()
    writer = csv.writer(text, lineterminator="\n")
    done = 0  # ordinary rows copied so far
    for j, pos in enumerate(special):
        ordinary_before = int(pos) - j
        out.write(body[starts[done]:starts[ordinary_before]])
        done = ordinary_before
        row = {name: _text(values[j]) for name, values in special_rows.items()}
        if is_invalid[j]:
            _break_row(ds, row, prng)
        else:
            row[ds.comment_column] = prng.choice(ds.quoted_comments)
        text.seek(0)
        text.truncate()
        writer.writerow([row[c.name] for c in ds.columns])
        out.write(text.getvalue().encode())
    out.write(body[starts[done]:])
    return out.getvalue(), n_invalid


def ensure_data(ds: Dataset, size_mb: float, seed: int, workdir: Path) -> tuple[Path, dict]:
    """The dataset's CSV file of about `size_mb` MB, generated unless an earlier run left it."""
    stem = f"{ds.key}-{size_mb:g}mb-seed{seed}"
    path = workdir / f"{stem}.csv"
    meta_path = workdir / f"{stem}.json"
    if path.exists() and meta_path.exists():
        meta = json.loads(meta_path.read_text())
        if meta.get("generator") == GENERATOR_VERSION and meta.get("bytes") == path.stat().st_size:
            log(f"{ds.key}: reusing {rel(path)} ({meta['bytes'] / MB:.1f} MB, {meta['rows']} rows)")
            return path, meta
    workdir.mkdir(parents=True, exist_ok=True)
    target = int(size_mb * MB)
    log(f"{ds.key}: generating {rel(path)} (~{size_mb:g} MB) …")
    t0 = time.perf_counter()
    tmp = path.with_suffix(".csv.tmp")
    rows = invalid = 0
    with open(tmp, "wb") as f:
        header = (",".join(c.name for c in ds.columns) + "\n").encode()
        f.write(header)
        written = len(header)
        bytes_per_row = 400.0  # a high first guess: the first chunk stays under the target
        index = 0
        while written < target:
            n = max(1, min(CHUNK_ROWS, math.ceil((target - written) / bytes_per_row)))
            data, bad = _chunk(ds, seed, index, n, rows)
            f.write(data)
            written += len(data)
            rows += n
            invalid += bad
            bytes_per_row = (written - len(header)) / rows
            index += 1
    tmp.rename(path)
    meta = {
        "generator": GENERATOR_VERSION, "dataset": ds.key, "size_mb": size_mb, "seed": seed,
        "bytes": path.stat().st_size, "rows": rows, "invalid_rows": invalid, "columns": len(ds.columns),
    }
    meta_path.write_text(json.dumps(meta, indent=2) + "\n")
    log(f"{ds.key}: {meta['bytes'] / MB:.1f} MB, {rows} rows ({invalid} invalid) in {time.perf_counter() - t0:.1f} s")
    return path, meta


# --- Workers: the pandas pipeline and the whylogs profile ----------------------------------


def _read_options(ds: Dataset) -> dict:
    """read_csv options: text columns as strings, numeric columns inferred (a column holding
    text becomes object and is coerced below), only the empty field is missing."""
    dtype = {c.name: str for c in ds.columns if not c.numeric}
    return dict(dtype=dtype, keep_default_na=False, na_values=[""])


def _limit_threads() -> None:
    import pyarrow as pa

    pa.set_cpu_count(1)
    pa.set_io_thread_count(1)


class NumericAcc:
    """count, nulls, min, max, mean, m2 and a histogram, merged across chunks (Chan)."""

    def __init__(self, edges):
        import numpy as np

        self.edges = np.asarray(edges, dtype="float64")
        self.count, self.nulls, self.mean, self.m2 = 0, 0, 0.0, 0.0
        self.min = self.max = None
        self.hist = np.zeros(len(edges) + 1, dtype="int64")

    def add(self, x, nulls: int) -> None:
        import numpy as np

        self.nulls += nulls
        n = len(x)
        if n == 0:
            return
        mean = float(x.mean())
        m2 = float(((x - mean) ** 2).sum())
        total = self.count + n
        delta = mean - self.mean
        self.mean += delta * n / total
        self.m2 += m2 + delta * delta * self.count * n / total
        self.count = total
        lo, hi = float(x.min()), float(x.max())
        self.min = lo if self.min is None else min(self.min, lo)
        self.max = hi if self.max is None else max(self.max, hi)
        bins = np.searchsorted(self.edges, x, side="left")  # bin i: (edges[i-1], edges[i]]
        self.hist += np.bincount(bins, minlength=len(self.edges) + 1)

    def to_json(self) -> dict:
        return {"kind": "numeric", "count": self.count, "nulls": self.nulls, "min": self.min, "max": self.max,
                "mean": self.mean, "m2": self.m2,
                "histogram": {"edges": self.edges.tolist(), "counts": self.hist.tolist()}}


def _check_chunk(ds: Dataset, df):
    """The contract's rules on a chunk: per column the typed values and the masks of broken
    rules. Returns (typed columns, [(column, rule, mask)], invalid-row mask)."""
    import numpy as np
    import pandas as pd

    typed = {}
    broken = []
    for c in ds.columns:
        s = df[c.name]
        present = s.notna().to_numpy()
        if c.numeric:
            if s.dtype == object:
                x = pd.to_numeric(s, errors="coerce")
                type_bad = x.isna().to_numpy() & present
            else:
                x = s
                type_bad = np.zeros(len(s), dtype=bool)
            xv = x.to_numpy(dtype="float64", na_value=np.nan)
            finite = np.isfinite(xv)
            type_bad |= present & ~finite
            if c.type == "int":
                type_bad |= finite & (xv != np.floor(xv))
            ok = finite & ~type_bad
            if c.min is not None:
                broken.append((c.name, "min", ok & (xv < c.min)))
            if c.max is not None:
                broken.append((c.name, "max", ok & (xv > c.max)))
            typed[c.name] = xv
        elif c.type == "bool":
            mapped = s.str.lower().map(BOOL_TEXT)
            type_bad = mapped.isna().to_numpy() & present
            typed[c.name] = mapped
        elif c.type == "timestamp":
            t = pd.to_datetime(s, format="ISO8601", utc=True, errors="coerce")
            type_bad = t.isna().to_numpy() & present
            typed[c.name] = t
        else:
            type_bad = np.zeros(len(s), dtype=bool)
            if c.allowed is not None:
                broken.append((c.name, "allowed", present & ~s.isin(c.allowed).to_numpy()))
            typed[c.name] = s
        broken.append((c.name, "type", type_bad))
        if not c.nullable:
            broken.append((c.name, "nullable", ~present))
    invalid = np.zeros(len(df), dtype=bool)
    for _, _, mask in broken:
        invalid |= mask
    return typed, broken, invalid


def _arrow_column(c: Col, values, valid):
    """The valid rows of a typed column as an Arrow array of the contract's Parquet type."""
    import numpy as np
    import pyarrow as pa

    if c.type == "float":
        return pa.array(values[valid], type=pa.float64(), from_pandas=True)
    if c.type == "int":
        v = values[valid]
        mask = np.isnan(v)
        return pa.array(np.where(mask, 0, v).astype("int64"), type=pa.int64(), mask=mask if mask.any() else None)
    if c.type == "bool":
        return pa.array(values[valid].to_numpy(dtype=object), type=pa.bool_(), from_pandas=True)
    if c.type == "timestamp":
        return pa.array(values[valid]).cast(pa.timestamp("us", tz="UTC"))
    return pa.array(values[valid].to_numpy(dtype=object), type=pa.string(), from_pandas=True)


def _schema(ds: Dataset):
    import pyarrow as pa

    types = {"float": pa.float64(), "int": pa.int64(), "bool": pa.bool_(), "timestamp": pa.timestamp("us", tz="UTC"),
             "category": pa.string(), "string": pa.string()}
    return pa.schema([pa.field(c.name, types[c.type], nullable=c.nullable) for c in ds.columns])


def _chunks(path: Path, ds: Dataset, chunk_rows: int, engine: str):
    import warnings

    import pandas as pd

    warnings.filterwarnings("ignore", category=pd.errors.DtypeWarning)
    options = _read_options(ds)
    if chunk_rows > 0:
        yield from pd.read_csv(path, chunksize=chunk_rows, engine=engine, **options)
    else:
        yield pd.read_csv(path, engine=engine, **options)


def pandas_worker(ds: Dataset, path: Path, out: Path, baseline: Path, chunk_rows: int, engine: str) -> dict:
    """The same work as `mlops ingest`, in pandas: read, check every rule, split, profile the
    valid rows, write them as Parquet and the invalid ones as JSON Lines, write the profile."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.parquet as pq

    _limit_threads()
    t_start = time.perf_counter()
    edges = {k: v["histogram"]["edges"] for k, v in json.loads(baseline.read_text())["columns"].items()}
    numeric = {c.name: NumericAcc(edges.get(c.name, [])) for c in ds.columns if c.numeric}
    categorical = {c.name: {"kind": "categorical", "count": 0, "nulls": 0, "counts": {}}
                   for c in ds.columns if c.type in ("category", "bool")}
    for d in ("curated", "quarantine", "profiles"):
        (out / d).mkdir(parents=True, exist_ok=True)
    schema = _schema(ds)
    writer = pq.ParquetWriter(out / "curated" / f"{path.stem}.parquet", schema, compression="snappy")
    quarantine = open(out / "quarantine" / f"{path.stem}.jsonl", "w")
    phases = {"read_s": 0.0, "check_s": 0.0, "profile_s": 0.0, "write_s": 0.0}
    rows = curated = quarantined = 0

    chunks = _chunks(path, ds, chunk_rows, engine)
    while True:
        t0 = time.perf_counter()
        df = next(chunks, None)
        t1 = time.perf_counter()
        phases["read_s"] += t1 - t0
        if df is None:
            break
        typed, broken, invalid = _check_chunk(ds, df)
        valid = ~invalid
        t2 = time.perf_counter()
        phases["check_s"] += t2 - t1

        for c in ds.columns:
            if c.numeric:
                v = typed[c.name][valid]
                present = ~np.isnan(v)
                numeric[c.name].add(v[present], int((~present).sum()))
            elif c.name in categorical:
                s = typed[c.name][valid]
                if c.type == "bool":
                    s = s.map({True: "true", False: "false"})
                p = categorical[c.name]
                nulls = int(s.isna().sum())
                p["nulls"] += nulls
                p["count"] += len(s) - nulls
                for k, n in s.value_counts(dropna=True).items():
                    p["counts"][k] = p["counts"].get(k, 0) + int(n)
        t3 = time.perf_counter()
        phases["profile_s"] += t3 - t2

        table = pa.Table.from_arrays([_arrow_column(c, typed[c.name], valid) for c in ds.columns], schema=schema)
        writer.write_table(table, row_group_size=ROW_GROUP_ROWS)
        bad = np.flatnonzero(invalid)
        if len(bad):
            reasons = {int(i): [] for i in bad}
            for name, rule, mask in broken:
                for i in np.flatnonzero(mask):
                    reasons[int(i)].append({"column": name, "rule": rule, "message": f"{name}: breaks {rule}"})
            first_line = int(df.index[0]) + 2  # the header is line 1
            raw = df.iloc[bad].astype(str).where(df.iloc[bad].notna(), "")
            for i, values in zip(bad, raw.itertuples(index=False)):
                record = {"source": path.name, "line": first_line + int(i), "raw": ",".join(values),
                          "reasons": reasons[int(i)]}
                quarantine.write(json.dumps(record) + "\n")
        rows += len(df)
        quarantined += len(bad)
        curated += len(df) - len(bad)
        del df, typed, broken, table
        phases["write_s"] += time.perf_counter() - t3

    t0 = time.perf_counter()
    writer.close()
    quarantine.close()
    columns = {name: acc.to_json() for name, acc in numeric.items()}
    for name, p in categorical.items():
        p["counts"] = dict(sorted(p["counts"].items()))
        columns[name] = p
    profile = {"dataset": ds.name, "rows": curated, "columns": dict(sorted(columns.items()))}
    (out / "profiles" / f"{path.stem}.json").write_text(json.dumps(profile, indent=2))
    phases["write_s"] += time.perf_counter() - t0
    return {"rows": rows, "curated": curated, "quarantined": quarantined, "phases": phases,
            "work_s": time.perf_counter() - t_start}


def polars_worker(ds: Dataset, path: Path, out: Path, baseline: Path) -> dict:
    """The same work as `mlops ingest`, in polars on one thread: `read_csv` with every column
    as text, the contract's rules as expressions (casts, ranges, allowed values, nulls), valid
    rows to snappy Parquet typed per the contract, invalid rows with their reasons to JSON
    Lines, and the profile (count, nulls, min, max, mean, m2, histogram on the baseline's
    edges, value counts) of the valid rows."""
    import numpy as np
    import polars as pl

    t_start = time.perf_counter()
    edges = {k: v["histogram"]["edges"] for k, v in json.loads(baseline.read_text())["columns"].items()}
    for d in ("curated", "quarantine", "profiles"):
        (out / d).mkdir(parents=True, exist_ok=True)
    phases = {"read_s": 0.0, "check_s": 0.0, "profile_s": 0.0, "write_s": 0.0}

    t0 = time.perf_counter()
    raw = pl.read_csv(path, infer_schema=False, null_values=[""])
    t1 = time.perf_counter()
    phases["read_s"] += t1 - t0

    # One pass casts every column to its contract type and keeps whether the field was given;
    # the rules are then expressions over those columns.
    typed, given = [], []
    for c in ds.columns:
        col = pl.col(c.name)
        given.append(col.is_not_null().alias(f"{c.name}\x00given"))
        if c.type == "float":
            typed.append(col.cast(pl.Float64, strict=False))
        elif c.type == "int":
            # "4" parses as an int, "4.5" does not: the contract takes whole numbers only.
            typed.append(col.cast(pl.Int64, strict=False))
        elif c.type == "bool":
            typed.append(col.str.to_lowercase().replace_strict(BOOL_TEXT, default=None, return_dtype=pl.Boolean))
        elif c.type == "timestamp":
            typed.append(col.str.to_datetime(time_unit="us", time_zone="UTC", strict=False))
        else:
            typed.append(col)
    frame = raw.select(typed + given)
    rules = []
    for c in ds.columns:
        x, present = pl.col(c.name), pl.col(f"{c.name}\x00given")
        bad = present & x.is_null()
        if c.type == "float":
            bad = bad | x.is_nan() | x.is_infinite()
        rules.append((c.name, "type", bad))
        if c.numeric and c.min is not None:
            rules.append((c.name, "min", x < c.min))
        if c.numeric and c.max is not None:
            rules.append((c.name, "max", x > c.max))
        if c.allowed is not None:
            rules.append((c.name, "allowed", present & ~x.is_in(c.allowed)))
        if not c.nullable:
            rules.append((c.name, "nullable", ~present))
    masks = frame.select([m.fill_null(False).alias(f"{n}\x00{r}") for n, r, m in rules])
    invalid = masks.select(pl.any_horizontal(pl.all()).alias("invalid"))["invalid"]
    curated_frame = frame.select([c.name for c in ds.columns]).filter(~invalid)
    t2 = time.perf_counter()
    phases["check_s"] += t2 - t1

    columns = {}
    for c in ds.columns:
        s = curated_frame[c.name]
        if c.numeric:
            nulls = s.null_count()
            v = s.drop_nulls().cast(pl.Float64)
            x = v.to_numpy()
            e = np.asarray(edges.get(c.name, []), dtype="float64")
            hist = np.bincount(np.searchsorted(e, x, side="left"), minlength=len(e) + 1)
            mean = v.mean()
            columns[c.name] = {"kind": "numeric", "count": len(v), "nulls": nulls, "min": v.min(), "max": v.max(),
                               "mean": mean, "m2": float(v.var(ddof=0) * len(v)) if len(v) else 0.0,
                               "histogram": {"edges": e.tolist(), "counts": hist.tolist()}}
        elif c.type in ("category", "bool"):
            if c.type == "bool":
                s = s.cast(pl.String).str.to_lowercase()
            counts = s.drop_nulls().value_counts()
            columns[c.name] = {"kind": "categorical", "count": len(s) - s.null_count(), "nulls": s.null_count(),
                               "counts": dict(sorted(zip(counts[c.name].to_list(), counts["count"].to_list())))}
    t3 = time.perf_counter()
    phases["profile_s"] += t3 - t2

    curated_frame.write_parquet(out / "curated" / f"{path.stem}.parquet", compression="snappy",
                                row_group_size=ROW_GROUP_ROWS)
    bad_rows = raw.with_row_index("line", offset=2).filter(invalid)
    bad_masks = masks.filter(invalid)
    reasons = [[{"column": k.split("\x00")[0], "rule": k.split("\x00")[1],
                 "message": f"{k.split(chr(0))[0]}: breaks {k.split(chr(0))[1]}"}
                for k, broken in zip(bad_masks.columns, row) if broken] for row in bad_masks.iter_rows()]
    names = [c.name for c in ds.columns]
    with open(out / "quarantine" / f"{path.stem}.jsonl", "w") as quarantine:
        for row, why in zip(bad_rows.iter_rows(named=True), reasons):
            values = ["" if row[n] is None else row[n] for n in names]
            quarantine.write(json.dumps({"source": path.name, "line": row["line"], "raw": ",".join(values),
                                         "reasons": why}) + "\n")
    profile = {"dataset": ds.name, "rows": curated_frame.height, "columns": dict(sorted(columns.items()))}
    (out / "profiles" / f"{path.stem}.json").write_text(json.dumps(profile, indent=2))
    phases["write_s"] += time.perf_counter() - t3
    return {"rows": raw.height, "curated": curated_frame.height, "quarantined": bad_rows.height, "phases": phases,
            "work_s": time.perf_counter() - t_start}


def whylogs_worker(ds: Dataset, path: Path, out: Path, chunk_rows: int, engine: str) -> dict:
    """A whylogs profile of the file: read_csv, why.log(pandas=df), the profile written."""
    import whylogs as why

    _limit_threads()
    t_start = time.perf_counter()
    phases = {"read_s": 0.0, "profile_s": 0.0, "write_s": 0.0}
    view = None
    rows = 0
    chunks = _chunks(path, ds, chunk_rows, engine)
    while True:
        t0 = time.perf_counter()
        df = next(chunks, None)
        t1 = time.perf_counter()
        phases["read_s"] += t1 - t0
        if df is None:
            break
        chunk_view = why.log(pandas=df).view()
        view = chunk_view if view is None else view.merge(chunk_view)
        rows += len(df)
        del df
        phases["profile_s"] += time.perf_counter() - t1
    t0 = time.perf_counter()
    out.mkdir(parents=True, exist_ok=True)
    (out / f"{path.stem}.whylogs.bin").write_bytes(view.serialize())
    phases["write_s"] += time.perf_counter() - t0
    return {"rows": rows, "phases": phases, "work_s": time.perf_counter() - t_start}


# --- Measuring -----------------------------------------------------------------------------


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def rel(path: Path) -> str:
    try:
        return str(path.resolve().relative_to(Path.cwd()))
    except ValueError:
        return str(path)


def python_shown() -> str:
    """The interpreter as the reproduce line shows it: its path in the repository, if there."""
    try:
        return str(Path(sys.executable).absolute().relative_to(ROOT))
    except ValueError:
        return "python"


def measure_ok(cmd: list[str], logfile: Path) -> dict:
    """`measure`, stopping with the log's tail when the command fails."""
    run = measure(cmd, logfile)
    if run.pop("exit_code") != 0:
        tail = logfile.read_text(errors="replace")[-3000:]
        raise SystemExit(f"{shlex.join(cmd)} failed:\n{tail}")
    return run


def mlops_counts(out: Path) -> dict | None:
    """Row counts from the manifests `mlops ingest` wrote."""
    manifests = sorted((out / "manifests").rglob("*.json")) if (out / "manifests").exists() else []
    if not manifests:
        return None
    totals = {"rows": 0, "curated": 0, "quarantined": 0}
    for m in manifests:
        data = json.loads(m.read_text())
        if data.get("batch_error"):
            raise SystemExit(f"mlops rejected the whole batch: {data['batch_error']}")
        counts = data.get("counts", {})
        totals["rows"] += counts.get("rows_read", 0)
        totals["curated"] += counts.get("curated", 0)
        totals["quarantined"] += counts.get("quarantined", 0)
    return totals


def versions(mlops: Path | None) -> dict:
    out = package_versions(("numpy", "pandas", "polars", "pyarrow", "whylogs"))
    if mlops is not None:
        try:
            out["mlops"] = subprocess.run([str(mlops), "--version"], capture_output=True, text=True,
                                          check=True).stdout.strip()
        except (OSError, subprocess.CalledProcessError):
            out["mlops"] = None
    return out


def run_tool(tool: str, ds: Dataset, path: Path, meta: dict, contract: Path, baseline: Path, args) -> dict:
    out = args.workdir / f"out-{ds.key}-{tool}"
    pin = ["taskset", "-c", str(args.cpu)]
    if tool == "mlops-2":
        # Two threads on two cores: the core given and the next one.
        pin = ["taskset", "-c", f"{args.cpu},{(args.cpu + 1) % (os.cpu_count() or 2)}"]
    if tool.startswith("mlops"):
        cmd = pin + [str(args.mlops), "ingest", "--contract", str(contract), "--baseline", str(baseline),
                     "--threads", "2" if tool == "mlops-2" else "1", "--out", str(out), str(path)]
    else:
        cmd = pin + [sys.executable, str(Path(__file__).resolve()), "--worker", tool, "--dataset", ds.key,
                     "--file", str(path), "--worker-out", str(out), "--baseline", str(baseline),
                     "--chunk-rows", str(args.chunk_rows), "--engine", args.engine,
                     "--result", str(out) + ".result.json"]
    runs = []
    counts = None
    warm(path)
    for i in range(args.repeat):
        shutil.rmtree(out, ignore_errors=True)
        result_file = Path(str(out) + ".result.json")
        result_file.unlink(missing_ok=True)
        run = measure_ok(cmd, args.workdir / f"{ds.key}-{tool}.log")
        if tool.startswith("mlops"):
            counts = mlops_counts(out)
            if counts is None:
                log(f"  warning: no manifest under {rel(out)}/manifests: row counts not checked")
        else:
            worker = json.loads(result_file.read_text())
            run["work_s"] = worker["work_s"]
            run["phases"] = worker["phases"]
            counts = {k: worker[k] for k in ("rows", "curated", "quarantined") if k in worker}
        runs.append(run)
        log(f"  {ds.key} {tool} run {i + 1}/{args.repeat}: {run['wall_s']:.2f} s, "
            f"{run['peak_rss_mib']:.0f} MiB peak RSS")
    wall = statistics.median(r["wall_s"] for r in runs)
    rss = statistics.median(r["peak_rss_mib"] for r in runs)
    result = {
        "command": shlex.join(cmd), "runs": runs, "wall_s": wall, "peak_rss_mib": rss,
        "mb_per_s": meta["bytes"] / MB / wall, "rows_per_s": meta["rows"] / wall, "counts": counts,
    }
    if counts is not None:
        expected = {"rows": meta["rows"]}
        if "quarantined" in counts:
            expected.update(curated=meta["rows"] - meta["invalid_rows"], quarantined=meta["invalid_rows"])
        result["counts_match_file"] = all(counts.get(k) == v for k, v in expected.items())
        if not result["counts_match_file"]:
            log(f"  warning: {tool} counted {counts} on {ds.key}; the file has {expected}")
    if not args.keep_outputs:
        shutil.rmtree(out, ignore_errors=True)
    return result


def markdown(results: dict) -> str:
    env = results["environment"]
    v = env["versions"]
    lines = [
        f"CPU: {env['cpu']}, one core (`taskset -c {env['core']}`); median of {env['repeat']} run(s) each. "
        "Time is the wall time of the whole process (for pandas and whylogs, with the interpreter's "
        "start-up and imports); CPU s is its user + system time. MB = 10^6 bytes of CSV; peak RSS in MiB. "
        "time ÷ mlops above 1 means mlops is faster.",
        f"Versions: Python {v['python']}, polars {v.get('polars')}, pandas {v['pandas']}, pyarrow {v['pyarrow']}, "
        f"whylogs {v['whylogs']}"
        + (f", {v['mlops']}" if v.get("mlops") else "")
        + (f" (commit {v['commit']})" if v.get("commit") else "") + ".",
        "",
        "| file | MB | rows | invalid rows | tool | s | CPU s | MB/s | rows/s | peak RSS MiB | time ÷ mlops "
        "| RSS ÷ mlops |",
        "|---|---:|---:|---:|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for key, d in results["datasets"].items():
        ours = d["tools"].get("mlops")
        for tool, r in d["tools"].items():
            if ours is not None:
                t_ratio = f"{r['wall_s'] / ours['wall_s']:.2f}"
                m_ratio = f"{r['peak_rss_mib'] / ours['peak_rss_mib']:.2f}"
            else:
                t_ratio = m_ratio = "—"
            cpu = statistics.median(x["user_s"] + x["sys_s"] for x in r["runs"])
            lines.append(
                f"| {key} | {d['bytes'] / MB:.0f} | {d['rows']:,} | {d['invalid_rows']:,} | {tool} | "
                f"{r['wall_s']:.2f} | {cpu:.2f} | {r['mb_per_s']:.1f} | {r['rows_per_s']:,.0f} | "
                f"{r['peak_rss_mib']:.0f} | {t_ratio} | {m_ratio} |"
            )
    lines += ["", "Where the Python processes spend their time (median run, seconds):", ""]
    for key, d in results["datasets"].items():
        for tool, r in d["tools"].items():
            runs = [x for x in r["runs"] if "phases" in x]
            if not runs:
                continue
            run = sorted(runs, key=lambda x: x["wall_s"])[len(runs) // 2]
            phases = ", ".join(f"{name[:-2]} {t:.2f}" for name, t in run["phases"].items())
            lines.append(f"- {key}, {tool}: {phases}; start-up, imports and exit {run['wall_s'] - run['work_s']:.2f}")
    lines += ["", "Reproduce:", "", "```sh", results["command"], "```"]
    return "\n".join(lines)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--size-mb", type=float, default=1024, help="size of each CSV file in MB (10^6 bytes)")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--workdir", type=Path, default=ROOT / "target" / "bench-ingest",
                   help="where the files and outputs go (default target/bench-ingest)")
    p.add_argument("--mlops", type=Path, default=ROOT / "target" / "release" / "mlops")
    p.add_argument("--tools", default="mlops,mlops-2,polars,pandas,whylogs",
                   help="mlops-2 is mlops ingest --threads 2 on two cores")
    p.add_argument("--datasets", default="numeric,mixed")
    p.add_argument("--repeat", type=int, default=None, help="runs per measurement (default 3; 1 from 1000 MB)")
    p.add_argument("--cpu", type=int, default=0, help="the core every run is pinned to")
    p.add_argument("--chunk-rows", type=int, default=0,
                   help="pandas and whylogs read the file in chunks of this many rows (default: whole file)")
    p.add_argument("--engine", default="c", choices=["c", "pyarrow"],
                   help="pandas read_csv engine (default c; pyarrow reads the whole file, no chunks)")
    p.add_argument("--out", type=Path, default=ROOT / "bench" / "ingest.json", help="results JSON")
    p.add_argument("--keep-outputs", action="store_true", help="keep each tool's outputs in the work directory")
    p.add_argument("--generate-only", action="store_true", help="write the files and contracts, then stop")
    # Worker mode: one run of pandas or whylogs in this process.
    p.add_argument("--worker", choices=["pandas", "polars", "whylogs"], help=argparse.SUPPRESS)
    p.add_argument("--dataset", choices=list(DATASETS), help=argparse.SUPPRESS)
    p.add_argument("--file", type=Path, help=argparse.SUPPRESS)
    p.add_argument("--worker-out", type=Path, help=argparse.SUPPRESS)
    p.add_argument("--baseline", type=Path, help=argparse.SUPPRESS)
    p.add_argument("--result", type=Path, help=argparse.SUPPRESS)
    args = p.parse_args()

    if args.worker:
        ds = DATASETS[args.dataset]
        if args.worker == "pandas":
            result = pandas_worker(ds, args.file, args.worker_out, args.baseline, args.chunk_rows, args.engine)
        elif args.worker == "polars":
            result = polars_worker(ds, args.file, args.worker_out, args.baseline)
        else:
            result = whylogs_worker(ds, args.file, args.worker_out, args.chunk_rows, args.engine)
        args.result.write_text(json.dumps(result, indent=2))
        return 0

    tools = [t for t in args.tools.split(",") if t]
    for t in tools:
        if t not in ("mlops", "mlops-2", "polars", "pandas", "whylogs"):
            p.error(f"unknown tool {t!r}: choose from mlops, mlops-2, polars, pandas, whylogs")
    keys = [k for k in args.datasets.split(",") if k]
    for k in keys:
        if k not in DATASETS:
            p.error(f"unknown dataset {k!r}: choose from {', '.join(DATASETS)}")
    if args.repeat is None:
        args.repeat = 1 if args.size_mb >= 1000 else 3
    args.workdir = args.workdir.resolve()
    args.mlops = args.mlops.resolve()
    if not args.generate_only:
        if "mlops" in tools and not os.access(args.mlops, os.X_OK):
            log(f"error: the mlops binary {rel(args.mlops)} does not exist. Build it with\n"
                f"    cargo build --release --locked -p mlops\n"
                f"or pass --mlops PATH, or leave mlops out with --tools pandas,whylogs.")
            return 2
        if shutil.which("taskset") is None:
            log("error: taskset (util-linux) is needed to pin every run to one core")
            return 2

    results = {
        "environment": {
            "cpu": cpu_model(), "core": args.cpu, "cores": os.cpu_count(), "repeat": args.repeat,
            "platform": platform.platform(), "chunk_rows": args.chunk_rows, "engine": args.engine,
            "versions": versions(args.mlops if "mlops" in tools else None),
            "started_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        },
        "command": shlex.join([python_shown(), "bench/ingest_bench.py", *sys.argv[1:]]),
        "units": {"mb": "10^6 bytes", "rss": "MiB (ru_maxrss from wait4)", "time": "wall seconds, median"},
        "datasets": {},
    }
    if not args.generate_only:
        # The files, contracts and baselines are made by a child process, so that this one
        # stays small: a child's ru_maxrss counts the memory of the process it was started
        # from, and NumPy and pyarrow would put hundreds of MiB under every tool's figure.
        subprocess.run([sys.executable, str(Path(__file__).resolve()), "--generate-only", "--size-mb",
                        f"{args.size_mb:g}", "--seed", str(args.seed), "--workdir", str(args.workdir),
                        "--datasets", args.datasets], check=True)
    for key in keys:
        ds = DATASETS[key]
        path, meta = ensure_data(ds, args.size_mb, args.seed, args.workdir)
        contract = args.workdir / f"{key}.contract.yaml"
        baseline = args.workdir / f"{key}.baseline.json"
        if args.generate_only:
            contract.write_text(contract_yaml(ds))
            baseline.write_text(json.dumps(baseline_profile(ds, args.seed), indent=2) + "\n")
            continue
        entry = dict(meta, file=rel(path), contract=rel(contract), baseline=rel(baseline), tools={})
        for tool in tools:
            log(f"{key}: {tool} …")
            entry["tools"][tool] = run_tool(tool, ds, path, meta, contract, baseline, args)
        results["datasets"][key] = entry
    if args.generate_only:
        return 0

    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2) + "\n")
    log(f"results in {rel(args.out)}")
    print(markdown(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())

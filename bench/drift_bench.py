#!/usr/bin/env python3
"""Drift detection on one core: `mlops drift` beside Evidently's DataDriftPreset, on the same data.

Generates (deterministically, with numpy) a reference CSV and a current CSV of the same number
of rows (1,000,000 by default) and 20 columns — 14 numeric and 6 categorical, five of them
shifted in the current file — and the matching data contract, then times, each in its own
process pinned to one core with `taskset`:

* **evidently**: `pd.read_csv` of both files, then
  `Report([DataDriftPreset()], include_tests=True).run(current, reference)` with a
  DataDefinition taken from the contract (float and int columns numerical; category and bool
  columns categorical). The worker times the CSV reading and the report separately, so the
  results hold Evidently's time with and without reading the CSVs; wall time and peak RSS
  (from `os.wait4`) are those of the whole process.
* **mlops-csv**: `mlops drift` on the two CSVs (the `--mlops` binary, target/release/mlops by
  default), which reads and validates every row of both files.
* **profile builds**: `mlops profile` of the reference CSV (a baseline, with histogram edges at
  its own deciles), then of the current CSV on the baseline's edges, as the ingest Lambda writes
  a profile per batch. This is what ingest pays as the data arrives; it is reported apart from
  the check, with the size of each profile.
* **mlops-profile**: `mlops drift` from the two profiles (KLL sketches and exact counts), the
  check a scheduled drift job runs without reading any row.
* **ours**: each `--ours` command template, run as given after substituting `{ref}`, `{cur}`,
  `{contract}`, `{out}`, `{workdir}` and `{rows}`; the command writes its JSON report to
  `{out}`. A template may carry a label, `--ours "profiles=..."`. A template whose binary or
  subcommand does not exist is skipped with a message.

The `mlops` runs are repeated `--mlops-repeat` times (5 by default) and Evidently `--repeat`
times (1 by default); medians are reported. If the `--mlops` binary does not exist, its runs are
skipped with a message.

The per-column verdicts of every run are compared with Evidently's wherever both used the
same method, and the method, verdict and score of each column are compared between every two
of Evidently, the CSV check and the profile check, listing each column where they differ.
Results go to a JSON file (bench/drift-evidently.json by default) and a Markdown summary is
printed, with Evidently's time divided by each check's.

    python bench/drift_bench.py                                  # 1M rows: Evidently, CSV and profiles
    python bench/drift_bench.py --rows 100000                    # a quicker run
    python bench/drift_bench.py --rows 20000 --mlops target/debug/mlops --out target/bench-drift/small.json
    python bench/drift_bench.py --no-evidently                   # mlops again, Evidently from the last JSON
    python bench/drift_bench.py --ours "other=path/to/tool --ref {ref} --cur {cur} --json {out}"

Our report is read as JSON with a "columns" list whose items carry "column", "method" and
"verdict" ("drift", "no_drift", "insufficient_data") or a boolean "drift", and an optional
top-level "dataset_drift".

The packages are pinned in bench/requirements-drift.txt.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import shlex
import resource
import shutil
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from benchlib import cpu_model, measure, versions as package_versions, warm

ROOT = Path(__file__).resolve().parent.parent
GENERATOR_VERSION = 1
SINGLE_THREAD_ENV = {
    "OMP_NUM_THREADS": "1",
    "OPENBLAS_NUM_THREADS": "1",
    "MKL_NUM_THREADS": "1",
    "NUMEXPR_NUM_THREADS": "1",
}

# Evidently's stat tests: display name (as its reports show it) -> registered name.
METHOD_NAMES = {
    "K-S p_value": "ks",
    "chi-square p_value": "chisquare",
    "Z-test p_value": "z",
    "PSI": "psi",
    "Jensen-Shannon distance": "jensenshannon",
    "Wasserstein distance (normed)": "wasserstein",
}


# --- The data ---------------------------------------------------------------------------


@dataclass
class Col:
    name: str
    type: str  # float, int, category, bool
    ref: tuple  # generator spec of the reference sample
    cur: tuple  # generator spec of the current sample
    description: str
    null_rate: float = 0.0
    min: float | None = None
    max: float | None = None
    allowed: list[str] | None = None
    shifted: bool = False  # drawn from a different distribution in the current file

    @property
    def numeric(self) -> bool:
        return self.type in ("float", "int")


def _levels(prefix: str, n: int) -> list[str]:
    return [f"{prefix}{i:02d}" for i in range(n)]


def _zipf(n: int, s: float = 1.1) -> list[float]:
    w = [1 / (i + 1) ** s for i in range(n)]
    return [x / sum(w) for x in w]


C12 = _levels("r", 12)
C12_REF = [1 / 12] * 12
C12_CUR = [0.16, 0.14, 0.12, 0.1, 0.08, 0.08, 0.07, 0.06, 0.06, 0.05, 0.04, 0.04]
C50 = _levels("k", 50)

COLUMNS = [
    Col("n01", "float", ("normal", 50, 10, 4), ("normal", 50, 10, 4), "normal(50, 10)", min=-1e6, max=1e6),
    Col("n02", "float", ("normal", 0, 1, 4), ("normal", 0.25, 1, 4), "normal(0, 1); current mean +0.25",
        min=-1e6, max=1e6, shifted=True),
    Col("n03", "float", ("lognormal", 3, 0.6, 4), ("lognormal", 3, 0.6, 4), "log-normal(3, 0.6)", min=0, max=1e9),
    Col("n04", "float", ("exponential", 2, 4), ("exponential", 2.6, 4), "exponential, mean 2; current mean 2.6",
        min=0, max=1e9, shifted=True),
    Col("n05", "float", ("uniform", 0, 100, 4), ("uniform", 0, 100, 4), "uniform(0, 100)", min=0, max=100),
    Col("n06", "int", ("age",), ("age",), "age 18..90, 2% missing", null_rate=0.02, min=18, max=90),
    Col("n07", "int", ("poisson", 3), ("poisson", 3), "Poisson(3) counts", min=0, max=1000),
    Col("n08", "float", ("normal", 1000, 200, 2), ("normal", 1000, 200, 2), "normal(1000, 200), 5% missing",
        null_rate=0.05, min=-1e6, max=1e6),
    Col("n09", "float", ("beta", 2, 5, 5), ("beta", 2.1, 5, 5), "beta(2, 5); current beta(2.1, 5), below threshold",
        min=0, max=1),
    Col("n10", "int", ("income",), ("income",), "log-normal incomes, rounded", min=0, max=1e9),
    Col("n11", "float", ("gamma", 2, 2, 0, 4), ("gamma", 2, 2, 0.5, 4), "gamma(2, 2); current +0.5",
        min=0, max=1e9, shifted=True),
    Col("n12", "int", ("binary", 0.3), ("binary", 0.36), "0/1 with share 0.3; current 0.36, below threshold",
        min=0, max=1),
    Col("n13", "float", ("normal", 0, 1, 1), ("normal", 0, 1, 1), "normal(0, 1) to one decimal: ties",
        min=-1e6, max=1e6),
    Col("n14", "int", ("choice", [0, 1, 2, 3, 4], [0.3, 0.25, 0.2, 0.15, 0.1]),
        ("choice", [0, 1, 2, 3, 4], [0.3, 0.25, 0.2, 0.15, 0.1]), "five values 0..4", min=0, max=4),
    Col("c01", "category", ("choice", _levels("a", 5), [0.35, 0.25, 0.2, 0.12, 0.08]),
        ("choice", _levels("a", 5), [0.35, 0.25, 0.2, 0.12, 0.08]), "5 levels", allowed=_levels("a", 5)),
    Col("c02", "category", ("choice", C12, C12_REF), ("choice", C12, C12_CUR), "12 levels; current skewed",
        allowed=C12, shifted=True),
    Col("c03", "bool", ("choice", ["true", "false"], [0.5, 0.5]), ("choice", ["true", "false"], [0.5, 0.5]),
        "booleans, half true"),
    Col("c04", "category", ("choice", ["low", "mid", "high"], [0.5, 0.3, 0.2]),
        ("choice", ["low", "mid", "high"], [0.5, 0.3, 0.2]), "3 levels, 3% missing", null_rate=0.03,
        allowed=["low", "mid", "high"]),
    Col("c05", "category", ("choice", C50, _zipf(50)), ("choice", C50, _zipf(50)), "50 levels, Zipf shares",
        allowed=C50),
    Col("c06", "category", ("choice", ["w", "x", "y", "z", "new"], [0.25, 0.25, 0.25, 0.25, 0.0]),
        ("choice", ["w", "x", "y", "z", "new"], [0.2125, 0.2125, 0.2125, 0.2125, 0.15]),
        "4 levels; current has a new level at 15%", allowed=["w", "x", "y", "z", "new"], shifted=True),
]
FEATURES = [c.name for c in COLUMNS]


def _sample(spec: tuple, rng, n: int):
    import numpy as np

    kind = spec[0]
    if kind == "normal":
        _, mean, sd, dec = spec
        return np.round(rng.normal(mean, sd, n), dec)
    if kind == "lognormal":
        _, mean, sigma, dec = spec
        return np.round(rng.lognormal(mean, sigma, n), dec)
    if kind == "exponential":
        _, scale, dec = spec
        return np.round(rng.exponential(scale, n), dec)
    if kind == "uniform":
        _, lo, hi, dec = spec
        return np.round(rng.uniform(lo, hi, n), dec)
    if kind == "beta":
        _, a, b, dec = spec
        return np.round(rng.beta(a, b, n), dec)
    if kind == "gamma":
        _, shape, scale, shift, dec = spec
        return np.round(rng.gamma(shape, scale, n) + shift, dec)
    if kind == "age":
        return np.clip(np.round(rng.normal(40, 13, n)), 18, 90).astype(np.int64)
    if kind == "income":
        return np.round(rng.lognormal(10, 0.8, n)).astype(np.int64)
    if kind == "poisson":
        return rng.poisson(spec[1], n).astype(np.int64)
    if kind == "binary":
        return (rng.random(n) < spec[1]).astype(np.int64)
    if kind == "choice":
        _, keys, p = spec
        return rng.choice(np.array(keys, dtype=object), size=n, p=p)
    raise ValueError(kind)


def _frame(side: int, rows: int, seed: int):
    import numpy as np
    import pandas as pd

    data = {}
    for i, c in enumerate(COLUMNS):
        rng = np.random.default_rng([seed, i, side])
        values = _sample(c.ref if side == 0 else c.cur, rng, rows)
        if c.null_rate:
            missing = rng.random(rows) < c.null_rate
            values = pd.Series(values).astype("object" if not c.numeric else "Int64" if c.type == "int" else "float64")
            values[missing] = None
        data[c.name] = values
    return pd.DataFrame(data)


def _yaml_number(v: float) -> str:
    return str(int(v)) if float(v).is_integer() else repr(float(v))


def contract_yaml(rows: int) -> str:
    lines = [
        "# Data contract of the drift benchmark's files (written by bench/drift_bench.py).",
        f"# Reference and current files of {rows:,} rows; columns n02, n04, n11, c02 and c06 are shifted.",
        "dataset: drift_bench",
        "version: 1",
        f"features: [{', '.join(FEATURES)}]",
        "columns:",
    ]
    for c in COLUMNS:
        parts = [f"name: {c.name}", f"type: {c.type}", f"nullable: {'true' if c.null_rate else 'false'}"]
        if c.min is not None:
            parts.append(f"min: {_yaml_number(c.min)}")
        if c.max is not None:
            parts.append(f"max: {_yaml_number(c.max)}")
        if c.allowed is not None:
            parts.append("allowed: [" + ", ".join(json.dumps(a) for a in c.allowed) + "]")
        parts.append(f"description: {json.dumps(c.description)}")
        lines.append("  - {" + ", ".join(parts) + "}")
    return "\n".join(lines) + "\n"


def ensure_data(rows: int, seed: int, workdir: Path) -> dict:
    """Writes reference-<rows>.csv, current-<rows>.csv and contract.yaml unless they exist."""
    workdir.mkdir(parents=True, exist_ok=True)
    ref = workdir / f"reference-{rows}.csv"
    cur = workdir / f"current-{rows}.csv"
    meta_path = workdir / f"data-{rows}.json"
    contract = workdir / f"contract-{rows}.yaml"
    want = {"generator_version": GENERATOR_VERSION, "rows": rows, "seed": seed}
    if meta_path.exists() and ref.exists() and cur.exists():
        meta = json.loads(meta_path.read_text())
        if all(meta.get(k) == v for k, v in want.items()):
            log(f"reusing {rel(ref)} and {rel(cur)}")
            contract.write_text(contract_yaml(rows))
            return meta
    for side, path in ((0, ref), (1, cur)):
        log(f"writing {rel(path)} ({rows:,} rows) …")
        df = _frame(side, rows, seed)
        tmp = path.with_suffix(".tmp")
        df.to_csv(tmp, index=False, na_rep="")
        tmp.replace(path)
    contract.write_text(contract_yaml(rows))
    meta = dict(want, reference=rel(ref), current=rel(cur), contract=rel(contract),
                reference_bytes=ref.stat().st_size, current_bytes=cur.stat().st_size,
                columns=len(COLUMNS), shifted=[c.name for c in COLUMNS if c.shifted])
    meta_path.write_text(json.dumps(meta, indent=2) + "\n")
    return meta


# --- Evidently, in a child process --------------------------------------------------------


def read_csv(path: Path):
    import pandas as pd

    dtype = {c.name: str for c in COLUMNS if not c.numeric}
    return pd.read_csv(path, dtype=dtype, keep_default_na=False, na_values=[""])


def evidently_worker(ref_path: Path, cur_path: Path, result: Path) -> None:
    t0 = time.perf_counter()
    import warnings

    warnings.filterwarnings("ignore")
    import numpy as np

    from evidently import DataDefinition, Dataset, Report
    from evidently.presets import DataDriftPreset

    t1 = time.perf_counter()
    reference = read_csv(ref_path)
    current = read_csv(cur_path)
    t2 = time.perf_counter()
    definition = DataDefinition(
        numerical_columns=[c.name for c in COLUMNS if c.numeric],
        categorical_columns=[c.name for c in COLUMNS if not c.numeric],
    )
    with np.errstate(all="ignore"):
        snapshot = Report([DataDriftPreset()], include_tests=True).run(
            Dataset.from_pandas(current, data_definition=definition),
            Dataset.from_pandas(reference, data_definition=definition),
        )
    t3 = time.perf_counter()
    d = snapshot.dict()
    status = {t["metric_config"]["params"].get("column"): t["status"] for t in d["tests"] if t["id"] == "drift"}
    columns = {}
    share = count = None
    for m in d["metrics"]:
        cfg = m["config"]
        if cfg["type"] == "evidently:metric_v2:ValueDrift":
            columns[cfg["column"]] = {
                "method": METHOD_NAMES.get(cfg["method"], cfg["method"]),
                "display_name": cfg["method"],
                "threshold": cfg["threshold"],
                "score": float(m["value"]),
                "drift": status.get(cfg["column"]) == "FAIL",
            }
        elif cfg["type"] == "evidently:metric_v2:DriftedColumnsCount":
            count, share = int(m["value"]["count"]), float(m["value"]["share"])
    dataset = next((t for t in d["tests"] if t["id"] == "lt"), None)
    result.write_text(json.dumps({
        "import_s": t1 - t0,
        "read_csv_s": t2 - t1,
        "report_s": t3 - t2,
        "columns": columns,
        "drifted_columns": count,
        "share_of_drifted_columns": share,
        "dataset_drift": None if dataset is None else dataset["status"] == "FAIL",
        "drift_share": 0.5,
    }, indent=2))


# --- Running and measuring --------------------------------------------------------------


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def rel(path: Path) -> str:
    try:
        return str(Path(path).resolve().relative_to(Path.cwd()))
    except ValueError:
        return str(path)


def run_evidently(args, meta: dict) -> dict:
    ref, cur = ROOT / meta["reference"], ROOT / meta["current"]
    runs = []
    for i in range(args.repeat):
        result = args.workdir / f"evidently-{args.rows}.result.json"
        result.unlink(missing_ok=True)
        cmd = ["taskset", "-c", str(args.cpu), sys.executable, str(Path(__file__).resolve()),
               "--worker", "evidently", "--reference", str(ref), "--current", str(cur), "--result", str(result)]
        warm(ref)
        warm(cur)
        run = measure(cmd, args.workdir / f"evidently-{args.rows}.log", {**os.environ, **SINGLE_THREAD_ENV})
        if run["exit_code"] != 0:
            tail = (args.workdir / f"evidently-{args.rows}.log").read_text(errors="replace")[-3000:]
            raise SystemExit(f"Evidently failed with exit code {run['exit_code']}:\n{tail}")
        worker = json.loads(result.read_text())
        run.update({k: worker[k] for k in ("import_s", "read_csv_s", "report_s")})
        runs.append((run, worker))
        log(f"  evidently run {i + 1}/{args.repeat}: {run['wall_s']:.1f} s wall "
            f"(CSV {run['read_csv_s']:.1f} s, report {run['report_s']:.1f} s), {run['peak_rss_mib']:.0f} MiB")
    worker = runs[-1][1]
    only = [r for r, _ in runs]
    return {
        "command": shlex.join(cmd),
        "runs": only,
        "wall_s": statistics.median(r["wall_s"] for r in only),
        "report_s": statistics.median(r["report_s"] for r in only),
        "read_csv_s": statistics.median(r["read_csv_s"] for r in only),
        "import_s": statistics.median(r["import_s"] for r in only),
        "peak_rss_mib": statistics.median(r["peak_rss_mib"] for r in only),
        **{k: worker[k] for k in ("columns", "drifted_columns", "share_of_drifted_columns", "dataset_drift",
                                  "drift_share")},
    }


def parse_ours(spec: str, index: int) -> tuple[str, str]:
    m = re.match(r"^([A-Za-z][\w.-]*)=(.+)$", spec, re.S)
    if m and not m.group(1).isupper():  # FOO=bar is an environment assignment, not a label
        return m.group(1), m.group(2)
    return ("ours" if index == 0 else f"ours{index + 1}"), spec


def our_columns(report: dict) -> dict:
    cols = report.get("columns", [])
    if isinstance(cols, dict):
        cols = [dict(v, column=k) for k, v in cols.items()]
    out = {}
    for c in cols:
        name = c.get("column") or c.get("name")
        if "drift" in c and isinstance(c["drift"], bool):
            verdict = "drift" if c["drift"] else "no_drift"
        else:
            verdict = str(c.get("verdict", "")).lower()
        out[name] = {"method": c.get("method"), "verdict": verdict,
                     "score": c.get("statistic", c.get("score", c.get("drift_score")))}
        if "from_sketch" in c:
            out[name]["from_sketch"] = c["from_sketch"]
    return out


def find_binary(binary: str) -> str | None:
    """The executable a command names: a path (from the working directory, else from the
    repository's root) or a name on PATH; None when there is no such executable."""
    if "/" in binary:
        path = Path(binary) if Path(binary).is_absolute() or Path(binary).exists() else ROOT / binary
        return str(path) if path.is_file() and os.access(path, os.X_OK) else None
    return shutil.which(binary)


def gnu_time() -> str | None:
    """GNU time's path, if it is installed.

    The peak RSS that wait4 reports for a child of this process is never below this process's
    own peak: Linux carries the high-water mark of the address space a process replaces with
    exec into its ru_maxrss, and the child of a fork (or vfork) starts from the parent's. GNU time,
    a process of about a megabyte, forks the command itself and reports the command's own peak, so
    that commands of a few MiB, like the check from profiles, are measured rather than this
    process's footprint."""
    path = shutil.which("time")
    if path is None:
        return None
    try:
        version = subprocess.run([path, "--version"], capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.SubprocessError):
        return None
    return path if "GNU" in version.stdout + version.stderr else None


def time_command(label: str, argv: list[str], repeat: int, args, out: Path | None = None) -> dict:
    """Runs `argv` `repeat` times, pinned to the benchmark's core, deleting `out` before each run.
    Returns the runs with the median wall time and peak RSS, or "skipped" when the binary does
    not know the subcommand or an option, or "failed" with the tail of the log. The wall time is
    taken around the child; the peak RSS is GNU time's %M of the command when GNU time is
    installed (which adds about a millisecond to the wall time), else wait4's."""
    logfile = args.workdir / f"{label}-{args.rows}.log"
    rss_file = args.workdir / f"{label}-{args.rows}.rss"
    wrapper = [args.gnu_time, "-f", "%M", "-o", str(rss_file)] if args.gnu_time else []
    runs = []
    for i in range(repeat):
        if out is not None:
            out.unlink(missing_ok=True)
        rss_file.unlink(missing_ok=True)
        run = measure(["taskset", "-c", str(args.cpu)] + wrapper + argv, logfile,
                      {**os.environ, **SINGLE_THREAD_ENV})
        if wrapper and run["exit_code"] == 0:
            # GNU time's output file ends with the format's line (the command's peak RSS in KiB).
            run["wait4_peak_rss_mib"] = run["peak_rss_mib"]
            run["peak_rss_mib"] = int(rss_file.read_text().split()[-1]) / 1024
        if run["exit_code"] != 0:
            text = logfile.read_text(errors="replace")
            if re.search(r"unrecognized subcommand|unexpected argument|unknown (sub)?command", text, re.I):
                message = f"{label}: skipped, the command is not available yet ({text.strip().splitlines()[0]})"
                log(message)
                return {"skipped": message}
            log(f"{label}: failed with exit code {run['exit_code']}:\n{text[-3000:]}")
            return {"failed": f"exit code {run['exit_code']}", "log_tail": text[-3000:], "runs": runs}
        runs.append(run)
        log(f"  {label} run {i + 1}/{repeat}: {run['wall_s']:.3f} s, {run['peak_rss_mib']:.0f} MiB")
    return {
        "runs": runs,
        "wall_s": statistics.median(r["wall_s"] for r in runs),
        "peak_rss_mib": statistics.median(r["peak_rss_mib"] for r in runs),
    }


def read_report(out: Path) -> dict:
    """The columns and the dataset verdict of a JSON drift report, or "failed" if it is unreadable."""
    try:
        report = json.loads(out.read_text())
    except (OSError, ValueError) as e:
        return {"failed": f"no readable JSON report at {rel(out)}: {e}"}
    return {"columns": our_columns(report), "dataset_drift": report.get("dataset_drift")}


def run_ours(label: str, template: str, args, meta: dict) -> dict:
    out = args.workdir / f"{label}-{args.rows}.json"
    values = {"ref": ROOT / meta["reference"], "cur": ROOT / meta["current"], "contract": ROOT / meta["contract"],
              "out": out, "workdir": args.workdir, "rows": args.rows}
    try:
        command = template.format(**{k: str(v) for k, v in values.items()})
    except (KeyError, IndexError) as e:
        raise SystemExit(f"--ours {label}: unknown placeholder {e} (use {{ref}} {{cur}} {{contract}} {{out}} "
                         f"{{workdir}} {{rows}})")
    argv = shlex.split(command)
    binary = argv[0]
    found = find_binary(binary)
    if found is None:
        message = f"{label}: skipped, {binary} does not exist (build it, or leave --ours out)"
        log(message)
        return {"skipped": message, "command": command}
    argv[0] = found
    timing = time_command(label, argv, args.repeat, args, out)
    if "wall_s" not in timing:
        return {"command": command, **timing}
    return {"command": command, **timing, **read_report(out)}


def run_check(label: str, argv: list[str], args) -> dict:
    """Times one `mlops drift` command of the built-in runs, whose report goes to <label>-<rows>.json."""
    out = args.workdir / f"{label}-{args.rows}.json"
    argv = argv + ["--json", str(out)]
    timing = time_command(label, argv, args.mlops_repeat, args, out)
    if "wall_s" not in timing:
        return {"command": shlex.join(argv), **timing}
    return {"command": shlex.join(argv), **timing, **read_report(out)}


def run_mlops(args, meta: dict) -> tuple[dict, dict | None]:
    """The built-in runs of the `--mlops` binary: the check from the two CSVs, the two profiles'
    builds and the check from the two profiles. Returns the checks, keyed by label as the
    `--ours` runs are, and the builds (None if the binary does not exist)."""
    binary = find_binary(str(args.mlops))
    if binary is None:
        message = (f"mlops: skipped, {args.mlops} does not exist (build it with cargo build --release -p mlops, "
                   f"or pass --mlops)")
        log(message)
        return {"mlops-csv": {"skipped": message}, "mlops-profile": {"skipped": message}}, None
    ref, cur, contract = (str(ROOT / meta[k]) for k in ("reference", "current", "contract"))
    warm(Path(ref))
    warm(Path(cur))
    checks = {}

    # The check from the CSVs reads and validates every row of both files.
    log("mlops drift from the CSVs …")
    checks["mlops-csv"] = run_check(
        "mlops-csv", [binary, "drift", "--contract", contract, "--reference", ref, "--current", cur], args)

    # The profiles are built as the data arrives: the baseline once (at training), the current one
    # by the ingest Lambda, batch by batch, on the baseline's histogram edges so that they merge.
    # Their cost is reported apart from the check's.
    profiles = {"reference": args.workdir / f"profile-reference-{args.rows}.json",
                "current": args.workdir / f"profile-current-{args.rows}.json"}
    builds = {}
    for side, source, extra in (("reference", ref, []), ("current", cur, ["--baseline", str(profiles["reference"])])):
        log(f"mlops profile of the {side} CSV …")
        argv = [binary, "profile", "--contract", contract, *extra, "--out", str(profiles[side]), source]
        timing = time_command(f"profile-{side}", argv, args.mlops_repeat, args, profiles[side])
        builds[side] = {"command": shlex.join(argv), **timing, "source_bytes": Path(source).stat().st_size}
        if "wall_s" not in timing:
            message = f"mlops-profile: skipped, the {side} profile was not built"
            log(message)
            checks["mlops-profile"] = {"skipped": message}
            return checks, builds
        builds[side].update(path=rel(profiles[side]), bytes=profiles[side].stat().st_size)

    # The check from the profiles reads two small JSON files and no row.
    log("mlops drift from the profiles …")
    checks["mlops-profile"] = run_check(
        "mlops-profile", [binary, "drift", "--contract", contract, "--reference", str(profiles["reference"]),
                          "--current", str(profiles["current"])], args)
    return checks, builds


def compare(evidently: dict, ours: dict) -> dict:
    """Per-column verdicts of one of our runs against Evidently's, where the methods agree."""
    rows = []
    for name, ev in evidently["columns"].items():
        o = ours["columns"].get(name)
        if o is None:
            rows.append({"column": name, "status": "missing"})
            continue
        same_method = o["method"] == ev["method"]
        ev_verdict = "drift" if ev["drift"] else "no_drift"
        rows.append({"column": name, "evidently_method": ev["method"], "our_method": o["method"],
                     "evidently_verdict": ev_verdict, "our_verdict": o["verdict"],
                     "evidently_score": ev["score"], "our_score": o["score"],
                     "status": ("agree" if o["verdict"] == ev_verdict else "disagree") if same_method
                     else "different method"})
    counted = [r for r in rows if r["status"] in ("agree", "disagree")]
    return {
        "columns": rows,
        "same_method": len(counted),
        "agree": sum(r["status"] == "agree" for r in counted),
        "disagree": [r["column"] for r in counted if r["status"] == "disagree"],
        "dataset_drift_agrees": None if ours.get("dataset_drift") is None
        else ours["dataset_drift"] == evidently["dataset_drift"],
    }


# The paths whose per-column results compare_paths sets side by side, with their labels in
# the results' "ours" and their names in the comparison.
PATHS = {"profile": "mlops-profile", "csv": "mlops-csv"}


def evidently_columns(evidently: dict) -> dict:
    """Evidently's per-column results in the shape our_columns gives ours."""
    return {name: {"method": c["method"], "verdict": "drift" if c["drift"] else "no_drift", "score": c["score"]}
            for name, c in evidently["columns"].items()}


def compare_paths(results: dict) -> dict | None:
    """Per column, the method, verdict and score of Evidently, of the check from the CSVs and of
    the check from the profiles; and for every two of them, how many columns agree on the
    method, on the verdict and on both, the largest score difference where the methods agree,
    and each column where they differ, with both scores."""
    paths = {name: results["ours"][label]["columns"] for name, label in PATHS.items()
             if "columns" in results["ours"].get(label, {})}
    if not paths:
        return None
    paths["evidently"] = evidently_columns(results["evidently"])
    dataset = {name: results["ours"][label].get("dataset_drift") for name, label in PATHS.items() if name in paths}
    dataset["evidently"] = results["evidently"]["dataset_drift"]
    names = list(paths)
    columns = list(dict.fromkeys(c for cols in paths.values() for c in cols))
    pairs = {}
    for i, a in enumerate(names):
        for b in names[i + 1:]:
            same_method = same_verdict = agree = 0
            differences, score_gaps = [], []
            for c in columns:
                x, y = paths[a].get(c), paths[b].get(c)
                method = x is not None and y is not None and x["method"] == y["method"]
                verdict = x is not None and y is not None and x["verdict"] == y["verdict"]
                same_method += method
                same_verdict += verdict
                agree += method and verdict
                if method and x["score"] is not None and y["score"] is not None:
                    score_gaps.append(abs(x["score"] - y["score"]))
                if not (method and verdict):
                    differences.append({"column": c, a: x, b: y})
            pairs[f"{a} vs {b}"] = {
                "columns": len(columns), "same_method": same_method, "same_verdict": same_verdict, "agree": agree,
                "max_score_difference": max(score_gaps, default=None), "differ": differences,
                "dataset_drift_agrees": dataset[a] == dataset[b],
            }
    return {"columns": {c: {name: paths[name].get(c) for name in names} for c in columns},
            "dataset_drift": dataset, "pairs": pairs}


def ratios(results: dict) -> dict:
    """Evidently's time divided by each of our checks': its whole process's wall time, and its
    report alone (without imports and CSV reading). For the check from the profiles, also with
    the current profile's build added, and with both profiles' builds added (all the work from
    the two CSVs)."""
    ev = results["evidently"]
    out = {}
    for label, o in results["ours"].items():
        if "wall_s" not in o:
            continue
        out[label] = {"evidently_wall_over_this": ev["wall_s"] / o["wall_s"],
                      "evidently_report_over_this": ev["report_s"] / o["wall_s"]}
    builds = results.get("profiles")
    if "mlops-profile" in out and builds and all("wall_s" in b for b in builds.values()):
        check = results["ours"]["mlops-profile"]["wall_s"]
        current = builds["current"]["wall_s"] + check
        both = builds["reference"]["wall_s"] + current
        out["mlops-profile"].update(evidently_wall_over_current_build_and_this=ev["wall_s"] / current,
                                    evidently_wall_over_both_builds_and_this=ev["wall_s"] / both)
    return out


def _times(x: float) -> str:
    return f"{x:,.0f}×" if x >= 100 else f"{x:.1f}×"


def _cell(c: dict | None) -> str:
    if c is None:
        return "—"
    score = "—" if c["score"] is None else f"{c['score']:.6g}"
    return f"{c['method']} {score} {c['verdict']}"


def markdown(results: dict) -> str:
    env = results["environment"]
    ev = results["evidently"]
    v = env["versions"]
    ratio = results.get("ratios", {})
    lines = [
        f"{results['data']['rows']:,}-row reference vs {results['data']['rows']:,}-row current, "
        f"{results['data']['columns']} columns. CPU: {env['cpu']}, one core (`taskset -c {env['core']}`); "
        f"median of {env['repeat']} Evidently run(s) and {env.get('mlops_repeat', env['repeat'])} run(s) of each "
        f"mlops command; peak RSS in MiB ("
        + ("our commands' from GNU time's %M, Evidently's from wait4" if env.get("gnu_time") else "from wait4")
        + "); "
        f"Evidently {v['evidently']}, pandas {v['pandas']}, numpy {v['numpy']}, scipy {v['scipy']}, "
        f"Python {v['python']}" + (f" (commit {v['commit']})" if v.get("commit") else "") + ".",
        "",
        "| run | wall s | of which reading CSVs s | drift s (without CSV reading) | peak RSS MiB "
        "| Evidently wall ÷ this | Evidently drift-only ÷ this | verdicts as Evidently's (same method) |",
        "|---|---:|---:|---:|---:|---:|---:|---|",
        f"| Evidently DataDriftPreset | {ev['wall_s']:.2f} | {ev['read_csv_s']:.2f} | {ev['report_s']:.2f} | "
        f"{ev['peak_rss_mib']:.0f} | 1 | 1 | — |",
    ]
    for label, o in results["ours"].items():
        if "wall_s" not in o or label not in results["comparison"]:
            lines.append(f"| {label} | — | — | — | — | — | — | {o.get('skipped') or o.get('failed')} |")
            continue
        c = results["comparison"][label]
        lines.append(
            f"| {label} | {o['wall_s']:.3f} | — | — | {o['peak_rss_mib']:.0f} | "
            f"{_times(ratio[label]['evidently_wall_over_this'])} | "
            f"{_times(ratio[label]['evidently_report_over_this'])} | {c['agree']}/{c['same_method']}"
            + (f", differ: {', '.join(c['disagree'])}" if c["disagree"] else "") + " |")

    builds = results.get("profiles")
    if builds:
        lines += ["", "Profile builds (what ingest pays as the data arrives; not part of the check):", "",
                  "| profile | source CSV MB | build wall s | peak RSS MiB | profile KiB |", "|---|---:|---:|---:|---:|"]
        for side, b in builds.items():
            if "wall_s" not in b:
                lines.append(f"| {side} | {b['source_bytes'] / 1e6:.1f} | — | — | {b.get('skipped') or b.get('failed')} |")
                continue
            lines.append(f"| {side} | {b['source_bytes'] / 1e6:.1f} | {b['wall_s']:.3f} | {b['peak_rss_mib']:.0f} | "
                         f"{b['bytes'] / 1024:.1f} |")

    summary = []
    for label, name in (("mlops-profile", "the check from the profiles"), ("mlops-csv", "the check from the CSVs")):
        if label in ratio:
            r = ratio[label]
            summary.append(f"Evidently ÷ {name}: {_times(r['evidently_wall_over_this'])} "
                           f"({_times(r['evidently_report_over_this'])} against its report alone)")
            if "evidently_wall_over_current_build_and_this" in r:
                summary[-1] += (f"; {_times(r['evidently_wall_over_current_build_and_this'])} with the current "
                                f"profile's build added, {_times(r['evidently_wall_over_both_builds_and_this'])} "
                                f"with both builds added")
            summary[-1] += "."
    if summary:
        lines += [""] + summary

    agreement = results.get("agreement")
    if agreement:
        lines += ["", "Per-column agreement (method and verdict) between the paths:", "",
                  "| paths | same method | same verdict | both | largest score difference (same method) "
                  "| dataset verdict agrees |", "|---|---:|---:|---:|---:|---|"]
        for pair, a in agreement["pairs"].items():
            gap = "—" if a["max_score_difference"] is None else f"{a['max_score_difference']:.3g}"
            lines.append(f"| {pair} | {a['same_method']}/{a['columns']} | {a['same_verdict']}/{a['columns']} | "
                         f"{a['agree']}/{a['columns']} | {gap} | {'yes' if a['dataset_drift_agrees'] else 'no'} |")
        differences = [(pair, d) for pair, a in agreement["pairs"].items() for d in a["differ"]]
        if differences:
            lines += ["", "Columns where two paths differ (method score verdict):", "",
                      "| paths | column | first | second |", "|---|---|---|---|"]
            for pair, d in differences:
                a, b = pair.split(" vs ")
                lines.append(f"| {pair} | {d['column']} | {_cell(d[a])} | {_cell(d[b])} |")
        else:
            lines += ["", "No column differs in method or verdict between any two paths."]

    names = [n for n in PATHS if agreement and n in agreement["dataset_drift"]]
    header = "| column | method | score | threshold | drift |" + "".join(f" {n} score | {n} drift |" for n in names)
    lines += ["", "Per-column results (Evidently's" + (", then " + " and ".join(names) if names else "")
              + "; a method in parentheses differs from Evidently's):", "",
              header, "|---|---|---:|---:|---|" + "---:|---|" * len(names)]
    for name, c in ev["columns"].items():
        row = (f"| {name} | {c['method']} | {c['score']:.6g} | {c['threshold']} | "
               f"{'yes' if c['drift'] else 'no'} |")
        for n in names:
            o = agreement["columns"][name].get(n)
            if o is None:
                row += " — | — |"
                continue
            score = "—" if o["score"] is None else f"{o['score']:.6g}"
            method = "" if o["method"] == c["method"] else f" ({o['method']})"
            row += f" {score}{method} | {'yes' if o['verdict'] == 'drift' else o['verdict'].replace('no_drift', 'no')} |"
        lines.append(row)
    lines.append(f"\nDataset drift: {'yes' if ev['dataset_drift'] else 'no'} "
                 f"({ev['drifted_columns']} of {len(ev['columns'])} columns, share "
                 f"{ev['share_of_drifted_columns']:.2f}, threshold {ev['drift_share']})"
                 + "".join(f"; {n}: {'yes' if agreement['dataset_drift'][n] else 'no'}" for n in names) + ".")
    lines += ["", "Reproduce:", "", "```sh", results["command"], "```"]
    return "\n".join(lines)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--rows", type=int, default=1_000_000, help="rows of each file (default 1,000,000)")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--workdir", type=Path, default=ROOT / "target" / "bench-drift",
                   help="where the files go (default target/bench-drift; reused when present)")
    p.add_argument("--ours", action="append", default=[], metavar="[LABEL=]TEMPLATE",
                   help="our command, with {ref} {cur} {contract} {out} {workdir} {rows}; repeatable")
    p.add_argument("--mlops", type=Path, default=ROOT / "target" / "release" / "mlops",
                   help="the mlops binary of the built-in runs (default target/release/mlops)")
    p.add_argument("--no-mlops", action="store_true",
                   help="leave out the built-in mlops runs (CSV check, profile builds, profile check)")
    p.add_argument("--no-evidently", action="store_true", help="time only our commands (needs a previous JSON)")
    p.add_argument("--repeat", type=int, default=1, help="runs of Evidently and of each --ours command (default 1)")
    p.add_argument("--mlops-repeat", type=int, default=5,
                   help="runs of each built-in mlops command (default 5)")
    p.add_argument("--cpu", type=int, default=0, help="the core every run is pinned to")
    p.add_argument("--out", type=Path, default=ROOT / "bench" / "drift-evidently.json", help="results JSON")
    p.add_argument("--generate-only", action="store_true", help="write the files and the contract, then stop")
    p.add_argument("--worker", choices=["evidently"], help=argparse.SUPPRESS)
    p.add_argument("--reference", type=Path, help=argparse.SUPPRESS)
    p.add_argument("--current", type=Path, help=argparse.SUPPRESS)
    p.add_argument("--result", type=Path, help=argparse.SUPPRESS)
    args = p.parse_args()

    if args.worker:
        evidently_worker(args.reference, args.current, args.result)
        return 0

    args.workdir = args.workdir.resolve()
    meta = ensure_data(args.rows, args.seed, args.workdir)
    if args.generate_only:
        return 0
    if shutil.which("taskset") is None:
        log("error: taskset (util-linux) is needed to pin every run to one core")
        return 2
    args.gnu_time = gnu_time()
    if args.gnu_time is None:
        log("warning: GNU time is not installed (apt-get install time); the peak RSS of our commands is wait4's, "
            "which is never below this script's own peak")

    previous = json.loads(args.out.read_text()) if args.no_evidently and args.out.exists() else None
    if args.no_evidently and (previous is None or previous["data"]["rows"] != args.rows):
        log(f"error: --no-evidently needs an earlier run on {args.rows:,} rows in {rel(args.out)}")
        return 2
    results = {
        "environment": {
            "cpu": cpu_model(), "core": args.cpu, "cores": os.cpu_count(), "repeat": args.repeat,
            "mlops_repeat": args.mlops_repeat, "gnu_time": args.gnu_time,
            "platform": platform.platform(), "versions": package_versions(("numpy", "pandas", "scipy", "evidently")),
            "load_average": os.getloadavg(), "started_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        },
        "command": "python bench/drift_bench.py " + shlex.join(sys.argv[1:]),
        "units": {"time": "wall seconds, median",
                  "rss": "MiB: Evidently's ru_maxrss from wait4; each mlops and --ours command's from GNU time's %M "
                         "when environment.gnu_time is set, else from wait4. A wait4 figure is never below "
                         "environment.launcher_peak_rss_mib, this script's own peak."},
        "data": meta,
        "evidently": None,
        "ours": {},
        "profiles": None,
        "comparison": {},
        "agreement": None,
        "ratios": {},
    }
    if previous is not None:
        results["evidently"] = previous["evidently"]
        results["environment"]["evidently_from"] = previous["environment"]
    else:
        log(f"Evidently DataDriftPreset on {args.rows:,} rows …")
        results["evidently"] = run_evidently(args, meta)
    if not args.no_mlops:
        checks, results["profiles"] = run_mlops(args, meta)
        results["ours"].update(checks)
    for i, spec in enumerate(args.ours):
        label, template = parse_ours(spec, i)
        log(f"{label} …")
        results["ours"][label] = run_ours(label, template, args, meta)
    for label, o in results["ours"].items():
        if "columns" in o:
            results["comparison"][label] = compare(results["evidently"], o)
    results["agreement"] = compare_paths(results)
    results["ratios"] = ratios(results)
    results["environment"]["launcher_peak_rss_mib"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024

    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2) + "\n")
    log(f"results in {rel(args.out)}")
    print(markdown(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())

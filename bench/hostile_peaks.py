#!/usr/bin/env python3
"""Peak memory of `mlops ingest` and `mlops profile` on hostile inputs.

Writes five inputs to a directory (streamed, nothing large held in memory) and a contract
with a free-text column, a category with no `allowed` list and an integer:

* **commas**: a gzip file (0.46 MB) holding one line of 100 MiB of commas, then a valid row;
* **strings**: 300 valid rows whose free-text value is a distinct 1 MiB string;
* **labels**: 1,000 valid rows whose category is a distinct 256 KiB label;
* **keys**: one JSON Lines row of 16.7 MB (just under the row limit) with 1.35 million
  unknown keys, then a valid row;

then runs each through `mlops ingest` (and labels through `mlops profile`), each in its own
process, and prints the peak RSS (from `os.wait4`), the wall time, the row counts, and the
size of the profile written, as a Markdown table.

    python3 bench/hostile_peaks.py --bin target/debug/mlops
    python3 bench/hostile_peaks.py --bin OLD --bin NEW        # side by side

Peak RSS is in MiB. The inputs are written by a child process, so that the measuring
process stays small: a child's peak RSS includes its parent's from before `exec`.
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import string
import subprocess
import sys
import tempfile
import time
from pathlib import Path

MIB = 1 << 20
HEADER = b"name,label,n\n"
TABLE = bytes.maketrans(bytes(range(256)), (string.ascii_letters * 6)[:256].encode())

CONTRACT = """dataset: hostile
version: 1
target: label
features: [name, n]
columns:
  - {name: name, type: string}
  - {name: label, type: category}
  - {name: n, type: int, min: 0, max: 1000000}
"""


def letters(n: int) -> bytes:
    return os.urandom(n).translate(TABLE)


def commas(path: Path) -> None:
    with gzip.open(path, "wb", compresslevel=1) as f:
        f.write(HEADER)
        for _ in range(100):
            f.write(b"," * MIB)
        f.write(b"\nalice,red,1\n")


def strings(path: Path) -> None:
    with open(path, "wb") as f:
        f.write(HEADER)
        for i in range(300):
            f.write(b"r%07d" % i + letters(MIB - 8) + b",lab%d,%d\n" % (i % 5, i))


def labels(path: Path) -> None:
    with open(path, "wb") as f:
        f.write(HEADER)
        for i in range(1000):
            f.write(b"row%d,L%07d" % (i, i) + letters(256 * 1024 - 8) + b",%d\n" % i)


def keys(path: Path) -> None:
    target = 16 * MIB - 64 * 1024
    with open(path, "wb") as f:
        row = [b'{"name":"big","label":"x","n":7']
        size, i = len(row[0]) + 2, 100000
        while True:
            item = b',"k%d":0' % i
            if size + len(item) > target:
                break
            row.append(item)
            size += len(item)
            i += 1
        f.write(b"".join(row) + b"}\n")
        f.write(b'{"name":"small","label":"y","n":8}\n')


CASES = {
    "commas": ("commas.csv.gz", commas),
    "strings": ("strings.csv", strings),
    "labels": ("labels.csv", labels),
    "keys": ("keys.jsonl", keys),
}


def run(argv: list[str]) -> tuple[float, float, int]:
    """Runs a command; returns (peak RSS in MiB, wall seconds, exit code)."""
    started = time.perf_counter()
    child = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    _, status, usage = os.wait4(child.pid, 0)
    wall = time.perf_counter() - started
    return usage.ru_maxrss / 1024, wall, os.waitstatus_to_exitcode(status)


def counts(out: Path) -> str:
    for manifest in out.rglob("manifests/**/*.json"):
        c = json.loads(manifest.read_text())["counts"]
        return f"{c['rows_read']}/{c['curated']}/{c['quarantined']}"
    return "?"


def profile_size(out: Path) -> int:
    return sum(p.stat().st_size for p in out.rglob("profiles/**/*.json")) or sum(
        p.stat().st_size for p in out.glob("*.json")
    )


def main() -> None:
    if len(sys.argv) == 3 and sys.argv[1] == "--generate":
        work = Path(sys.argv[2])
        for file, make in CASES.values():
            if not (work / file).exists():
                make(work / file)
        return
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--bin", action="append", required=True, help="an mlops binary (repeat to compare)")
    parser.add_argument("--dir", type=Path, help="where the inputs go (default: a temporary directory)")
    args = parser.parse_args()
    work = args.dir or Path(tempfile.mkdtemp(prefix="hostile-"))
    work.mkdir(parents=True, exist_ok=True)
    contract = work / "contract.yaml"
    contract.write_text(CONTRACT)
    # The inputs are written by a child process: a child's peak RSS counts its parent's from
    # before `exec`, so the measuring process must stay small.
    generate = [sys.executable, __file__, "--generate", str(work)]
    subprocess.run(generate, check=True)
    print("| case | command | " + " | ".join(f"{b}: peak MiB, s, rows read/curated/quarantined, profile bytes" for b in args.bin) + " |")
    print("|---|---|" + "---|" * len(args.bin))
    jobs = [(name, "ingest", file) for name, (file, _) in CASES.items()] + [("labels", "profile", "labels.csv")]
    for name, command, file in jobs:
        cells = []
        for b, binary in enumerate(args.bin):
            out = work / f"out-{b}-{name}-{command}"
            subprocess.run(["rm", "-rf", str(out)], check=True)
            out.mkdir()
            if command == "ingest":
                argv = [binary, "ingest", "--contract", str(contract), "--out", str(out), str(work / file)]
            else:
                argv = [binary, "profile", "--contract", str(contract), "-o", str(out / "profile.json"), str(work / file)]
            peak, wall, code = run(argv)
            rows = counts(out) if command == "ingest" else "-"
            note = "" if code == 0 else f", exit {code}"
            cells.append(f"{peak:.0f}, {wall:.1f}, {rows}, {profile_size(out):,}{note}")
        print(f"| {name} | {command} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()

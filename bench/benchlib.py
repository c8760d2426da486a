"""What the benchmark scripts share: the machine's description, warming a file into the page
cache, timing a child process with its peak memory, and the package and commit versions."""

from __future__ import annotations

import importlib.metadata
import os
import platform
import subprocess
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def warm(path: Path) -> None:
    """Reads the file once so that every run finds it in the page cache."""
    with open(path, "rb") as f:
        while f.read(1 << 24):
            pass


def measure(cmd: list[str], logfile: Path, env: dict | None = None) -> dict:
    """Runs `cmd` with its output in `logfile`: exit code, wall time around the child, its CPU
    time and peak RSS (ru_maxrss from wait4, KiB on Linux)."""
    with open(logfile, "wb") as out:
        t0 = time.perf_counter()
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, env=env)
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - t0
    return {"exit_code": os.waitstatus_to_exitcode(status), "wall_s": wall,
            "peak_rss_mib": usage.ru_maxrss / 1024, "user_s": usage.ru_utime, "sys_s": usage.ru_stime}


def versions(packages: tuple[str, ...]) -> dict:
    """Python's version, each package's (None if absent) and the repository's commit."""
    out = {"python": platform.python_version()}
    for name in packages:
        try:
            out[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            out[name] = None
    try:
        commit = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"], capture_output=True,
                                text=True, check=True).stdout.strip()
        dirty = subprocess.run(["git", "-C", str(ROOT), "status", "--porcelain", "--untracked-files=no"],
                               capture_output=True, text=True, check=True).stdout.strip()
        out["commit"] = commit + ("-dirty" if dirty else "")
    except (OSError, subprocess.CalledProcessError):
        out["commit"] = None
    return out

#!/usr/bin/env python3
"""Runs the locust load test (loadtest/locustfile.py) for a bounded time, prints the request
rate and latency percentiles, and fails on any 5xx, an error rate or a p99 over the thresholds.

Locally (what `make loadtest` runs, after building the release binaries):

    loadtest/run.py --bin-dir target/release

starts `mlops lake serve` on a free loopback port in a temporary directory, registers the
penguins example as version 1, starts `predict` on another loopback port, runs locust against
it and stops both servers on exit, whatever happens.

Against a deployed API (the staging pipeline):

    loadtest/run.py --host https://<api>.execute-api.<region>.amazonaws.com --sigv4 --warmup 15s

(--sigv4 signs the requests for an API with ApiAuthorization=AWS_IAM; --warmup runs an
unmeasured round first, so that cold starts do not count in the measured p99.)

Thresholds and load come from options or LOADTEST_* variables (see --help). Exit status: 0
when every threshold holds, 1 when one does not, 2 when the test could not run.
"""

from __future__ import annotations

import argparse
import json
import os
import queue
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = ROOT / "examples" / "penguins"
MODEL_NAME = "penguins"


class RunError(Exception):
    """The test could not run (as opposed to a threshold not holding)."""


def env_default(name: str, default: str) -> str:
    return os.environ.get(name) or default


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawTextHelpFormatter)
    target = p.add_mutually_exclusive_group()
    target.add_argument("--host", help="base URL of a running API; without it, local servers are started")
    target.add_argument(
        "--bin-dir",
        default=env_default("LOADTEST_BIN_DIR", "target/release"),
        help="directory holding the mlops and predict binaries (LOADTEST_BIN_DIR, default target/release)",
    )
    p.add_argument("--sigv4", action="store_true", help="sign requests with SigV4 (an API with AWS_IAM authorisation)")
    p.add_argument("--users", type=int, default=int(env_default("LOADTEST_USERS", "20")), help="simulated users (LOADTEST_USERS, 20)")
    p.add_argument("--spawn-rate", type=float, help="users started per second (default: all at once)")
    p.add_argument("--run-time", default=env_default("LOADTEST_RUN_TIME", "30s"), help="duration (LOADTEST_RUN_TIME, 30s)")
    p.add_argument(
        "--warmup",
        default=env_default("LOADTEST_WARMUP", ""),
        help="an unmeasured run of this duration first, e.g. 15s to warm Lambda environments (LOADTEST_WARMUP)",
    )
    p.add_argument(
        "--p99-ms", type=float, default=float(env_default("LOADTEST_P99_MS", "250")), help="p99 limit in ms (LOADTEST_P99_MS, 250)"
    )
    p.add_argument(
        "--max-error-rate",
        type=float,
        default=float(env_default("LOADTEST_MAX_ERROR_RATE", "0")),
        help="largest share of failed requests, wrong status or body (LOADTEST_MAX_ERROR_RATE, 0)",
    )
    p.add_argument("--keep", type=Path, help="keep the stats CSVs and server logs in this directory")
    return p.parse_args()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Servers:
    """The processes this run started; stop() ends each of them, by its own id."""

    def __init__(self) -> None:
        self.procs: list[tuple[str, subprocess.Popen]] = []

    def start(self, name: str, args: list[str], **kwargs) -> subprocess.Popen:
        proc = subprocess.Popen(args, **kwargs)
        self.procs.append((name, proc))
        return proc

    def stop(self) -> None:
        for name, proc in reversed(self.procs):
            if proc.poll() is None:
                proc.terminate()
                try:
                    proc.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    print(f"{name} did not stop on SIGTERM; killing it", file=sys.stderr)
                    proc.kill()
                    proc.wait()
        self.procs.clear()


def start_lake(servers: Servers, mlops: Path, work: Path) -> dict[str, str]:
    """Starts the embedded S3 lake and returns the variables it prints to export."""
    log = (work / "lake.log").open("w")
    proc = servers.start(
        "lake",
        [str(mlops), "lake", "serve", "--dir", str(work / "lake"), "--port", "0"],
        stdout=subprocess.PIPE,
        stderr=log,
        text=True,
    )
    lines: queue.Queue[str | None] = queue.Queue()

    def drain() -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            lines.put(line)
        lines.put(None)

    threading.Thread(target=drain, daemon=True).start()
    exports: dict[str, str] = {}
    deadline = time.monotonic() + 30
    while "LAKE_BUCKET" not in exports:
        try:
            line = lines.get(timeout=max(0.1, deadline - time.monotonic()))
        except queue.Empty:
            raise RunError("the lake did not print its settings within 30 s") from None
        if line is None:
            raise RunError(f"the lake exited with status {proc.wait()}; see {work / 'lake.log'}")
        m = re.match(r"\s*export (\w+)=(.*)$", line)
        if m:
            exports[m[1]] = m[2].strip()
    return exports


def register_model(mlops: Path, env: dict[str, str], work: Path) -> None:
    args = [
        str(mlops), "model", "register", "--name", MODEL_NAME,
        "--model", str(EXAMPLE / "model.onnx"),
        "--contract", str(EXAMPLE / "contract.yaml"),
        "--train", str(EXAMPLE / "train.csv"),
        "--metrics", str(EXAMPLE / "metrics.json"),
        "--class-labels", "Adelie,Chinstrap,Gentoo",
    ]  # fmt: skip
    with (work / "register.log").open("w") as log:
        done = subprocess.run(args, env=env, stdout=log, stderr=subprocess.STDOUT, timeout=120)
    if done.returncode != 0:
        raise RunError(f"registering the model failed:\n{(work / 'register.log').read_text()[-2000:]}")


def start_predict(servers: Servers, predict: Path, env: dict[str, str], work: Path) -> str:
    port = free_port()
    env = {**env, "MODEL_NAME": MODEL_NAME, "MODEL_VERSION": "1", "HOST": "127.0.0.1", "PORT": str(port)}
    log = (work / "predict.log").open("w")
    proc = servers.start("predict", [str(predict)], env=env, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RunError(f"predict exited with status {proc.returncode}:\n{(work / 'predict.log').read_text()[-2000:]}")
        try:
            with urllib.request.urlopen(f"{url}/model", timeout=2) as response:
                if response.status == 200:
                    return url
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            pass
        time.sleep(0.2)
    raise RunError("predict did not answer GET /model within 60 s")


def run_locust(args: argparse.Namespace, host: str, work: Path, run_time: str, label: str = "locust") -> dict:
    summary_file = work / f"{label}-summary.json"
    env = {**os.environ, "LOADTEST_SUMMARY_FILE": str(summary_file)}
    if args.sigv4:
        env["LOADTEST_SIGV4"] = "1"
    command = [
        sys.executable, "-m", "locust",
        "-f", str(ROOT / "loadtest" / "locustfile.py"),
        "--headless", "--only-summary", "--loglevel", "WARNING",
        "--users", str(args.users),
        "--spawn-rate", str(args.spawn_rate or args.users),
        "--run-time", run_time,
        "--stop-timeout", "10",
        "--host", host,
        "--csv", str(work / label),
    ]  # fmt: skip
    with (work / f"{label}.log").open("w") as log:
        subprocess.run(command, env=env, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT, check=False)
    if not summary_file.exists():
        raise RunError(f"locust did not finish:\n{(work / f'{label}.log').read_text()[-3000:]}")
    return json.loads(summary_file.read_text())


def ms(value: float | None) -> str:
    return "-" if value is None else f"{value:.0f}"


def report(args: argparse.Namespace, summary: dict, work: Path) -> int:
    total = summary["total"]
    if total["count"] == 0:
        raise RunError(f"no request was made:\n{(work / 'locust.log').read_text()[-3000:]}")
    print(f"\n{'request':<34} {'count':>8} {'failed':>7} {'rps':>8} {'p50 ms':>7} {'p99 ms':>7}")
    for r in [*summary["requests"], {**total, "name": "all requests"}]:
        print(
            f"{r['name']:<34} {r['count']:>8} {r['failures']:>7} {r['rps']:>8.1f} {ms(r['p50_ms']):>7} {ms(r['p99_ms']):>7}"
        )
    statuses = summary["statuses"]
    print("responses by status: " + ", ".join(f"{k}: {v}" for k, v in statuses.items()))
    for f in summary["failures"][:10]:
        print(f"  failed {f['occurrences']}x {f['name']}: {f['error'][:160]}")

    requests, failures = total["count"], total["failures"]
    rps, p50, p99 = total["rps"], total["p50_ms"], total["p99_ms"]
    server_errors = sum(v for k, v in statuses.items() if int(k) >= 500)
    error_rate = failures / requests
    print(
        f"\nrps {rps:.1f}, p50 {ms(p50)} ms, p99 {ms(p99)} ms; {requests} requests, "
        f"{server_errors} server errors (5xx), {failures} failures ({error_rate:.2%})"
    )
    problems = []
    if server_errors:
        problems.append(f"{server_errors} server errors (5xx)")
    if error_rate > args.max_error_rate:
        problems.append(f"error rate {error_rate:.2%} above {args.max_error_rate:.2%}")
    if p99 > args.p99_ms:
        problems.append(f"p99 {p99:.0f} ms above {args.p99_ms:.0f} ms")
    if problems:
        print("FAIL: " + "; ".join(problems))
        return 1
    print(f"PASS: no server error, error rate within {args.max_error_rate:.2%}, p99 within {args.p99_ms:.0f} ms")
    return 0


def main() -> int:
    args = parse_args()
    servers = Servers()

    def on_signal(signum, _frame):
        raise SystemExit(128 + signum)

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGHUP, on_signal)
    work = Path(tempfile.mkdtemp(prefix="lambda-mlops-loadtest-"))
    try:
        if args.host:
            host = args.host.rstrip("/")
            where = host
        else:
            bin_dir = Path(args.bin_dir)
            mlops, predict = bin_dir / "mlops", bin_dir / "predict"
            for binary in (mlops, predict):
                if not os.access(binary, os.X_OK):
                    raise RunError(f"{binary} is missing: cargo build --release --locked -p mlops -p predict")
            env = {k: v for k, v in os.environ.items() if k not in ("AWS_PROFILE", "AWS_SESSION_TOKEN")}
            env.update(start_lake(servers, mlops, work))
            register_model(mlops, env, work)
            host = start_predict(servers, predict, env, work)
            where = f"{host} ({predict}, {MODEL_NAME} v1, {os.cpu_count()} CPUs shared with locust)"
        if args.warmup:
            print(f"Warm-up: {args.users} users for {args.warmup} against {where}", flush=True)
            run_locust(args, host, work, args.warmup, "warmup")
        print(f"Load test: {args.users} users for {args.run_time} against {where}", flush=True)
        return report(args, run_locust(args, host, work, args.run_time), work)
    except RunError as e:
        print(f"load test could not run: {e}", file=sys.stderr)
        return 2
    finally:
        servers.stop()
        if args.keep:
            shutil.copytree(work, args.keep, dirs_exist_ok=True)
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())

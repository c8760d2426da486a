#!/usr/bin/env python3
"""predict at saturation beside the FastAPI + onnxruntime service a Python team would write.

    make bench-saturation
    # which runs: .venv-bench-serve/bin/python bench/saturation.py --bin-dir target/release --out bench/saturation.json

Starts the embedded lake (`mlops lake serve`), registers the penguins example, then, one
server at a time, pinned to one core (`taskset -c 1`):

- predict (the release binary, off Lambda: the same router API Gateway reaches);
- bench/fastapi_service.py under uvicorn, one worker, onnxruntime on one thread.

Each is loaded by oha (a closed-loop load generator from crates.io, on the other core) with
--connections connections for --duration, after a --warmup, with single-row requests and with
100-row batches of the same birds. Prints throughput and p50/p99/p99.9 latency per server and
request, and predict ÷ FastAPI, and writes them as JSON to --out. Every answer must be a 200.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "loadtest"))
import run as harness  # noqa: E402  (loadtest/run.py: the lake, the registration, the process list)

EXAMPLE = ROOT / "examples" / "penguins"
BIRDS = [
    {"island": "Torgersen", "bill_length_mm": 39.1, "bill_depth_mm": 18.7, "flipper_length_mm": 181, "body_mass_g": 3750, "sex": "male"},
    {"island": "Dream", "bill_length_mm": 46.5, "bill_depth_mm": 17.9, "flipper_length_mm": 192, "body_mass_g": 3500, "sex": "female"},
    {"island": "Biscoe", "bill_length_mm": 50.0, "bill_depth_mm": 15.2, "flipper_length_mm": 218, "body_mass_g": 5700, "sex": "male"},
    {"island": "Biscoe", "bill_length_mm": 45.2, "bill_depth_mm": None, "flipper_length_mm": 215, "body_mass_g": 5300, "sex": None},
]  # fmt: skip


def body(rows: int) -> bytes:
    return json.dumps({"instances": [BIRDS[i % len(BIRDS)] for i in range(rows)]}).encode()


def wait_ready(url: str, payload: bytes, proc: subprocess.Popen, log: Path) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise harness.RunError(f"{url} exited with status {proc.returncode}:\n{log.read_text()[-2000:]}")
        try:
            request = urllib.request.Request(f"{url}/predict", data=payload, headers={"content-type": "application/json"})
            with urllib.request.urlopen(request, timeout=2) as response:
                if response.status == 200:
                    return
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            pass
        time.sleep(0.2)
    raise harness.RunError(f"{url} did not answer within 60 s; see {log}")


def oha(oha_bin: str, url: str, payload: Path, connections: int, duration: str, core: str) -> dict:
    args = [
        "taskset", "-c", core, oha_bin, "--no-tui", "--output-format", "json",
        "-z", duration, "--wait-ongoing-requests-after-deadline", "-c", str(connections), "-m", "POST",
        "-H", "content-type: application/json", "-D", str(payload), f"{url}/predict",
    ]  # fmt: skip
    done = subprocess.run(args, capture_output=True, text=True, timeout=600)
    if done.returncode != 0:
        raise harness.RunError(f"oha failed: {done.stderr[-2000:]}")
    return json.loads(done.stdout)


def figures(report: dict) -> dict:
    p = report["latencyPercentiles"]
    codes = report.get("statusCodeDistribution", {})
    return {
        "rps": report["summary"]["requestsPerSec"],
        "p50_ms": p["p50"] * 1e3,
        "p99_ms": p["p99"] * 1e3,
        "p999_ms": p["p99.9"] * 1e3,
        "requests": sum(codes.values()),
        "non_200": sum(n for code, n in codes.items() if code != "200"),
        "errors": sum(report.get("errorDistribution", {}).values()),
        "error_kinds": report.get("errorDistribution", {}),
    }


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--bin-dir", type=Path, default=ROOT / "target" / "release", help="holds mlops and predict")
    p.add_argument("--oha", default=shutil.which("oha") or "oha", help="the oha binary (cargo install oha)")
    p.add_argument("--python", default=sys.executable, help="the Python with FastAPI, uvicorn and onnxruntime")
    p.add_argument("--connections", type=int, default=16)
    p.add_argument("--duration", default="10s")
    p.add_argument("--warmup", default="2s")
    p.add_argument("--server-core", default="1", help="the core the server under test is pinned to")
    p.add_argument("--load-core", default="0", help="the core oha is pinned to")
    p.add_argument("--rows", type=int, nargs="+", default=[1, 100])
    p.add_argument("--only", choices=["predict", "fastapi"], help="measure one server only")
    p.add_argument("--out", type=Path)
    args = p.parse_args()

    servers = harness.Servers()
    work = Path(tempfile.mkdtemp(prefix="saturation-"))
    results: dict[str, dict] = {}
    try:
        mlops, predict = args.bin_dir / "mlops", args.bin_dir / "predict"
        env = {**os.environ, **harness.start_lake(servers, mlops, work)}
        harness.register_model(mlops, env, work)
        bodies = {rows: work / f"body-{rows}.json" for rows in args.rows}
        for rows, path in bodies.items():
            path.write_bytes(body(rows))
        port = harness.free_port()
        commands = {
            "predict": (
                [str(predict)],
                {**env, "MODEL_NAME": "penguins", "MODEL_VERSION": "1", "HOST": "127.0.0.1", "PORT": str(port)},
            ),
            "fastapi": (
                [args.python, "-m", "uvicorn", "--app-dir", str(ROOT / "bench"), "fastapi_service:app",
                 "--host", "127.0.0.1", "--port", str(port), "--workers", "1", "--no-access-log", "--log-level", "warning"],
                {**os.environ, "MODEL": str(EXAMPLE / "model.onnx"), "CONTRACT": str(EXAMPLE / "contract.yaml"),
                 "CLASS_LABELS": "Adelie,Chinstrap,Gentoo", "OMP_NUM_THREADS": "1"},
            ),
        }  # fmt: skip
        for name, (command, server_env) in commands.items():
            if args.only and name != args.only:
                continue
            log = work / f"{name}.log"
            proc = servers.start(
                name, ["taskset", "-c", args.server_core, *command], env=server_env,
                stdout=log.open("w"), stderr=subprocess.STDOUT,
            )  # fmt: skip
            url = f"http://127.0.0.1:{port}"
            wait_ready(url, body(1), proc, log)
            for rows, path in bodies.items():
                oha(args.oha, url, path, args.connections, args.warmup, args.load_core)
                measured = figures(oha(args.oha, url, path, args.connections, args.duration, args.load_core))
                results.setdefault(name, {})[str(rows)] = measured
                print(
                    f"{name:8} {rows:4} rows: {measured['rps']:9.0f} req/s  p50 {measured['p50_ms']:6.2f} ms  "
                    f"p99 {measured['p99_ms']:6.2f} ms  p99.9 {measured['p999_ms']:6.2f} ms  "
                    f"({measured['requests']} answers, {measured['non_200']} not 200, {measured['errors']} errors)",
                    flush=True,
                )
                if measured["non_200"] or measured["errors"]:
                    raise harness.RunError(
                        f"{name}: {measured['non_200']} answers were not 200 and {measured['errors']} requests failed "
                        f"({measured['error_kinds']})"
                    )
            proc.terminate()
            proc.wait(timeout=10)
    except harness.RunError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    finally:
        servers.stop()
    if "predict" in results and "fastapi" in results:
        for rows in map(str, args.rows):
            ours, theirs = results["predict"][rows], results["fastapi"][rows]
            ratio = ours["rps"] / theirs["rps"]
            results.setdefault("ratio", {})[rows] = {"rps": ratio, "p99": theirs["p99_ms"] / ours["p99_ms"]}
            print(f"{rows:>4} rows: predict {ratio:.1f}x FastAPI's throughput, p99 {theirs['p99_ms'] / ours['p99_ms']:.1f}x lower")
    results["setup"] = {
        "connections": args.connections, "duration": args.duration, "server_core": args.server_core,
        "load_core": args.load_core, "cpu": cpu_name(),
    }  # fmt: skip
    if args.out:
        args.out.write_text(json.dumps(results, indent=2) + "\n")
    shutil.rmtree(work, ignore_errors=True)
    return 0


def cpu_name() -> str:
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return "unknown"


if __name__ == "__main__":
    sys.exit(main())

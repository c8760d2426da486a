"""Load test of the prediction API with a realistic mix of requests.

- single rows (`{"instance": {...}}`), the real-time case, most of the traffic;
- batches of 2 to 50 rows (`{"instances": [...]}`);
- `GET /model`;
- invalid requests (values out of range, unknown categories, wrong types, missing or unknown
  fields, malformed JSON, bad shapes), each of which must be refused with a 400.

Rows are drawn from the penguins training data (LOADTEST_ROWS, default
examples/penguins/train.csv), missing values included. A valid request counts as a failure
unless it gets a 200 with one prediction per instance; an invalid one unless it gets a 400.
Each user waits LOADTEST_WAIT_MIN to LOADTEST_WAIT_MAX seconds (default 0.01 to 0.1) between
requests.

With LOADTEST_SIGV4=1 every request is signed with SigV4 for execute-api (an API deployed
with ApiAuthorization=AWS_IAM), with credentials and region from the usual AWS variables.
LOADTEST_SUMMARY_FILE, when set, receives the final figures as JSON once every user has
stopped: per request name and in total the count, failures, rps, p50 and p99, the count of
responses per HTTP status, and the failures by reason.

Run it through loadtest/run.py (`make loadtest` locally), which applies the thresholds.
"""

from __future__ import annotations

import csv
import json
import os
import random
import re
from collections import Counter
from pathlib import Path

from locust import FastHttpUser, between, events, task

FEATURES = ["island", "bill_length_mm", "bill_depth_mm", "flipper_length_mm", "body_mass_g", "sex"]
NUMERIC = {"bill_length_mm", "bill_depth_mm", "flipper_length_mm", "body_mass_g"}
ROWS_PATH = Path(
    os.environ.get("LOADTEST_ROWS", Path(__file__).resolve().parent.parent / "examples/penguins/train.csv")
)


def load_rows(path: Path) -> list[dict]:
    rows = []
    with path.open(newline="") as f:
        for record in csv.DictReader(f):
            row = {}
            for name in FEATURES:
                text = (record.get(name) or "").strip()
                if text in ("", "NA"):
                    row[name] = None
                elif name in NUMERIC:
                    row[name] = float(text)
                else:
                    row[name] = text
            rows.append(row)
    if not rows:
        raise SystemExit(f"{path}: no rows")
    return rows


ROWS = load_rows(ROWS_PATH)
COMPLETE_ROWS = [r for r in ROWS if all(r[k] is not None for k in FEATURES)]


def with_change(**changes) -> dict:
    """A complete row with some fields replaced (or removed, with `...`)."""
    row = dict(random.choice(COMPLETE_ROWS))
    for name, value in changes.items():
        if value is ...:
            row.pop(name, None)
        else:
            row[name] = value
    return row


# (name, body): every one of these must get a 400.
INVALID = [
    ("out of range", lambda: {"instance": with_change(bill_length_mm=500.0)}),
    ("unknown category", lambda: {"instance": with_change(island="Atlantis")}),
    ("wrong type", lambda: {"instance": with_change(body_mass_g="heavy")}),
    ("missing required field", lambda: {"instance": with_change(island=...)}),
    ("unknown field", lambda: {"instance": with_change(wingspan_mm=310.0)}),
    ("one bad row in a batch", lambda: {"instances": [with_change(), with_change(flipper_length_mm=-1.0)]}),
    ("empty batch", lambda: {"instances": []}),
    ("instances not an array", lambda: {"instances": {"island": "Dream"}}),
    ("not an object", lambda: [1, 2, 3]),
    ("malformed JSON", lambda: b'{"instances": [{"island": "Dream",'),
]

STATUS_COUNTS: Counter = Counter()
ENVIRONMENT = []


@events.init.add_listener
def _keep_environment(environment, **_kwargs):
    ENVIRONMENT.append(environment)


@events.request.add_listener
def _count_status(response=None, **_kwargs):
    STATUS_COUNTS[getattr(response, "status_code", None) or 0] += 1


def _figures(entry) -> dict:
    return {
        "count": entry.num_requests,
        "failures": entry.num_failures,
        "rps": entry.total_rps,
        "p50_ms": entry.get_response_time_percentile(0.50) if entry.num_requests else None,
        "p99_ms": entry.get_response_time_percentile(0.99) if entry.num_requests else None,
    }


@events.quit.add_listener
def _write_summary(**_kwargs):
    """Fired after the runner stopped every user: the figures are final."""
    path = os.environ.get("LOADTEST_SUMMARY_FILE")
    if not path or not ENVIRONMENT:
        return
    stats = ENVIRONMENT[0].stats
    summary = {
        "requests": [{"name": e.name, **_figures(e)} for e in sorted(stats.entries.values(), key=lambda e: e.name)],
        "total": _figures(stats.total),
        "statuses": {str(k): v for k, v in sorted(STATUS_COUNTS.items())},
        "failures": [
            {"name": e.name, "error": e.parse_error(e.error), "occurrences": e.occurrences}
            for e in sorted(stats.errors.values(), key=lambda e: -e.occurrences)
        ],
    }
    Path(path).write_text(json.dumps(summary, indent=1))


class SigV4Signer:
    """Signs requests for API Gateway's execute-api with botocore's SigV4."""

    def __init__(self, host: str):
        import botocore.session
        from botocore.auth import SigV4Auth
        from botocore.awsrequest import AWSRequest

        session = botocore.session.get_session()
        credentials = session.get_credentials()
        if credentials is None:
            raise SystemExit("LOADTEST_SIGV4=1 but no AWS credentials were found")
        match = re.search(r"\.execute-api\.([a-z0-9-]+)\.amazonaws\.com", host)
        region = os.environ.get("AWS_REGION") or session.get_config_variable("region") or (match and match[1])
        if not region:
            raise SystemExit("LOADTEST_SIGV4=1 but no AWS region was found (set AWS_REGION)")
        self._credentials, self._region = credentials, region
        self._auth, self._request = SigV4Auth, AWSRequest

    def headers(self, method: str, url: str, body: bytes | None) -> dict:
        request = self._request(method=method, url=url, data=body or b"", headers={"Content-Type": "application/json"})
        self._auth(self._credentials.get_frozen_credentials(), "execute-api", self._region).add_auth(request)
        return dict(request.headers.items())


def status(response) -> str:
    if not response.status_code:
        return f"no response ({response.error})"
    return f"status {response.status_code}"


class PredictUser(FastHttpUser):
    wait_time = between(float(os.environ.get("LOADTEST_WAIT_MIN", "0.01")), float(os.environ.get("LOADTEST_WAIT_MAX", "0.1")))

    def on_start(self):
        self.host = self.host.rstrip("/")
        self.signer = SigV4Signer(self.host) if os.environ.get("LOADTEST_SIGV4") == "1" else None

    def _send(self, method: str, path: str, name: str, body=None):
        data = None
        if body is not None:
            data = body if isinstance(body, bytes) else json.dumps(body).encode()
        headers = {"Content-Type": "application/json"}
        if self.signer is not None:
            headers = self.signer.headers(method, self.host + path, data)
        return self.client.request(method, path, data=data, headers=headers, name=name, catch_response=True)

    def _expect_predictions(self, body: dict, count: int, name: str):
        with self._send("POST", "/predict", name, body) as response:
            if response.status_code != 200:
                response.failure(f"{status(response)}, expected 200: {(response.text or '')[:200]}")
                return
            try:
                predictions = response.json()["predictions"]
            except (ValueError, KeyError, TypeError):
                response.failure("200 without a predictions list")
                return
            if len(predictions) != count:
                response.failure(f"{len(predictions)} predictions for {count} instances")

    @task(60)
    def predict_one(self):
        self._expect_predictions({"instance": random.choice(ROWS)}, 1, "POST /predict (1 row)")

    @task(20)
    def predict_batch(self):
        rows = random.choices(ROWS, k=random.randint(2, 50))
        self._expect_predictions({"instances": rows}, len(rows), "POST /predict (batch of 2-50)")

    @task(5)
    def model(self):
        with self._send("GET", "/model", "GET /model") as response:
            if response.status_code != 200:
                response.failure(f"{status(response)}, expected 200")

    @task(15)
    def invalid(self):
        reason, make = random.choice(INVALID)
        with self._send("POST", "/predict", "POST /predict (invalid: 400)", make()) as response:
            if response.status_code == 400:
                response.success()
            else:
                response.failure(f"{reason}: {status(response)}, expected 400")

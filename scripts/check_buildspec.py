#!/usr/bin/env python3
"""Checks buildspec.yml: CodeBuild's buildspec 0.2 structure, shell syntax of every command,
and the steps this project's pipeline must run.

Usage: check_buildspec.py [buildspec.yml] [samconfig.toml]
Exits 1 and lists every problem found; prints one summary line when there is none.
"""

from __future__ import annotations

import subprocess
import sys
import tomllib
from pathlib import Path

import yaml

TOP_LEVEL = {"version", "run-as", "env", "proxy", "batch", "phases", "reports", "artifacts", "cache"}
ENV_KEYS = {
    "shell",
    "variables",
    "parameter-store",
    "exported-variables",
    "secrets-manager",
    "git-credential-helper",
}
PHASES = ["install", "pre_build", "build", "post_build"]
PHASE_KEYS = {"run-as", "on-failure", "runtime-versions", "commands", "finally"}
SHELLS = {"bash", "/bin/sh"}
CACHE_KEYS = {"key", "fallback-keys", "action", "paths"}

# What the pipeline must do, as (phase names, text a command must contain, why).
REQUIRED_STEPS = [
    (["install"], "sh.rustup.rs", "install Rust with rustup"),
    (["install"], "aarch64-unknown-linux-gnu", "add the aarch64 Lambda target"),
    (["install"], "make install", "install aws-sam-cli and the linters (make install)"),
    (["install"], "install-build", "install cargo-lambda and zig (make install-build)"),
    (["pre_build", "build"], "make lint test", "run make lint test"),
    (["build"], "sam build --config-env \"$DEPLOY_ENV\"", "sam build for DEPLOY_ENV"),
    (
        ["build", "post_build"],
        "sam deploy --config-env \"$DEPLOY_ENV\" --no-fail-on-empty-changeset",
        "sam deploy DEPLOY_ENV without failing on an empty change set",
    ),
]
REQUIRED_CACHE = ["/root/.cargo/registry/**/*", "/root/.cargo/git/**/*"]


def check(spec: object, samconfig: dict) -> list[str]:
    problems: list[str] = []
    if not isinstance(spec, dict):
        return ["the buildspec is not a mapping"]

    if str(spec.get("version")) != "0.2":
        problems.append(f"version must be 0.2, not {spec.get('version')!r}")
    for key in sorted(set(spec) - TOP_LEVEL):
        problems.append(f"unknown top-level key {key!r}")

    env = spec.get("env", {})
    if not isinstance(env, dict):
        problems.append("env must be a mapping")
        env = {}
    for key in sorted(set(env) - ENV_KEYS):
        problems.append(f"unknown key env.{key}")
    if "shell" in env and env["shell"] not in SHELLS:
        problems.append(f"env.shell must be one of {sorted(SHELLS)}")
    variables = env.get("variables", {})
    if not isinstance(variables, dict):
        problems.append("env.variables must be a mapping")
        variables = {}
    for name, value in variables.items():
        if not isinstance(value, (str, int, float, bool)):
            problems.append(f"env.variables.{name} must be a scalar, not {type(value).__name__}")
    deploy_env = variables.get("DEPLOY_ENV")
    if deploy_env is None:
        problems.append("env.variables.DEPLOY_ENV (the default samconfig environment) is missing")
    elif str(deploy_env) not in samconfig or "deploy" not in samconfig[str(deploy_env)]:
        problems.append(f"DEPLOY_ENV={deploy_env!r} has no deploy section in samconfig.toml")

    phases = spec.get("phases")
    if not isinstance(phases, dict) or not phases:
        problems.append("phases must be a non-empty mapping")
        phases = {}
    commands: dict[str, list[str]] = {}
    for name, phase in phases.items():
        if name not in PHASES:
            problems.append(f"unknown phase {name!r} (known: {', '.join(PHASES)})")
            continue
        if not isinstance(phase, dict):
            problems.append(f"phases.{name} must be a mapping")
            continue
        for key in sorted(set(phase) - PHASE_KEYS):
            problems.append(f"unknown key phases.{name}.{key}")
        if "runtime-versions" in phase and name != "install":
            problems.append(f"phases.{name}.runtime-versions is only allowed in install")
        failure = phase.get("on-failure")
        if failure is not None and failure not in ("ABORT", "CONTINUE") and not str(failure).startswith("RETRY"):
            problems.append(f"phases.{name}.on-failure must be ABORT, CONTINUE or RETRY[-…], not {failure!r}")
        listed = phase.get("commands")
        if not isinstance(listed, list) or not listed:
            problems.append(f"phases.{name}.commands must be a non-empty list")
            continue
        for i, command in enumerate(listed):
            if not isinstance(command, str):
                problems.append(f"phases.{name}.commands[{i}] must be a string (quote it if it holds ': ')")
                continue
            syntax = subprocess.run(["bash", "-n", "-c", command], capture_output=True, text=True)
            if syntax.returncode != 0:
                problems.append(f"phases.{name}.commands[{i}]: {syntax.stderr.strip()}")
        commands[name] = [c for c in listed if isinstance(c, str)]
    order = [p for p in phases if p in PHASES]
    if order != sorted(order, key=PHASES.index):
        problems.append(f"phases must run in the order {', '.join(PHASES)}")

    for where, text, why in REQUIRED_STEPS:
        if not any(text in c for p in where for c in commands.get(p, [])):
            problems.append(f"no command in {' or '.join(where)} does this: {why} ({text!r})")

    cache = spec.get("cache", {})
    if not isinstance(cache, dict):
        problems.append("cache must be a mapping")
        cache = {}
    for key in sorted(set(cache) - CACHE_KEYS):
        problems.append(f"unknown key cache.{key}")
    paths = cache.get("paths", [])
    if not isinstance(paths, list) or not all(isinstance(p, str) for p in paths):
        problems.append("cache.paths must be a list of strings")
        paths = []
    for path in REQUIRED_CACHE:
        if path not in paths:
            problems.append(f"cache.paths does not cache {path}")
    return problems


def main() -> int:
    spec_path = Path(sys.argv[1] if len(sys.argv) > 1 else "buildspec.yml")
    samconfig_path = Path(sys.argv[2] if len(sys.argv) > 2 else "samconfig.toml")
    try:
        spec = yaml.safe_load(spec_path.read_text())
    except (OSError, yaml.YAMLError) as e:
        print(f"{spec_path}: {e}", file=sys.stderr)
        return 1
    samconfig = tomllib.loads(samconfig_path.read_text())
    problems = check(spec, samconfig)
    for problem in problems:
        print(f"{spec_path}: {problem}", file=sys.stderr)
    if problems:
        return 1
    phases = spec["phases"]
    count = sum(len(p.get("commands", [])) for p in phases.values())
    print(f"{spec_path}: ok ({len(phases)} phases, {count} commands, DEPLOY_ENV={spec['env']['variables']['DEPLOY_ENV']})")
    return 0


if __name__ == "__main__":
    sys.exit(main())

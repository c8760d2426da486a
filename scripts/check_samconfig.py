#!/usr/bin/env python3
"""Checks samconfig.toml against template.yaml: every environment's parameter overrides parse
as the SAM CLI parses them, name template parameters, and satisfy their allowed values,
patterns and bounds; every deploy environment names a stack and a region.

Usage: check_samconfig.py [samconfig.toml] [template.yaml]   (run with the .venv's Python)
"""

from __future__ import annotations

import re
import sys
import tomllib
from pathlib import Path

from samcli.cli.types import CfnParameterOverridesType
from samtranslator.yaml_helper import yaml_parse

ENVIRONMENTS = ["dev", "staging", "prod"]


def check_value(name: str, spec: dict, value: str) -> list[str]:
    problems = []
    allowed = spec.get("AllowedValues")
    if allowed is not None and value not in [str(a) for a in allowed]:
        problems.append(f"{name}={value!r} is not one of {allowed}")
    pattern = spec.get("AllowedPattern")
    if pattern is not None and not re.fullmatch(pattern, value):
        problems.append(f"{name}={value!r} does not match {pattern}")
    if spec.get("Type") == "Number":
        try:
            number = float(value)
        except ValueError:
            return problems + [f"{name}={value!r} is not a number"]
        if "MinValue" in spec and number < float(spec["MinValue"]):
            problems.append(f"{name}={value} is below {spec['MinValue']}")
        if "MaxValue" in spec and number > float(spec["MaxValue"]):
            problems.append(f"{name}={value} is above {spec['MaxValue']}")
    return problems


def main() -> int:
    config_path = Path(sys.argv[1] if len(sys.argv) > 1 else "samconfig.toml")
    template_path = Path(sys.argv[2] if len(sys.argv) > 2 else "template.yaml")
    config = tomllib.loads(config_path.read_text())
    parameters = yaml_parse(template_path.read_text())["Parameters"]
    overrides_type = CfnParameterOverridesType()
    problems = []
    for env in ENVIRONMENTS:
        if env not in config:
            problems.append(f"environment {env} is missing")
            continue
        glob = config[env].get("global", {}).get("parameters", {})
        for key in ("stack_name", "region"):
            if not glob.get(key):
                problems.append(f"{env}: global.parameters.{key} is not set")
        if "deploy" not in config[env]:
            problems.append(f"{env}: no deploy section")
    for env, commands in config.items():
        if env == "version":
            continue
        for command, section in commands.items():
            raw = section.get("parameters", {}).get("parameter_overrides")
            if raw is None:
                continue
            where = f"{env}.{command}"
            try:
                values = overrides_type.convert(raw, None, None)
            except Exception as e:  # the CLI's own parse error
                problems.append(f"{where}: parameter_overrides do not parse: {e}")
                continue
            for name, value in values.items():
                if name not in parameters:
                    problems.append(f"{where}: {name} is not a template parameter")
                    continue
                problems += [f"{where}: {p}" for p in check_value(name, parameters[name], str(value))]
    for problem in problems:
        print(f"{config_path}: {problem}", file=sys.stderr)
    if problems:
        return 1
    print(f"{config_path}: ok ({', '.join(ENVIRONMENTS)} against {template_path})")
    return 0


if __name__ == "__main__":
    sys.exit(main())

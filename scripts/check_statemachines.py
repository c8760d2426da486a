#!/usr/bin/env python3
"""Checks each state machine of template.yaml against its definition file.

- Every ${Name} in statemachines/<name>.asl.json has a DefinitionSubstitution in the
  template, and every substitution is used.
- The definition, with its substitutions filled in by placeholder ARNs and names, is linted
  by cfn-lint as the Definition of an AWS::StepFunctions::StateMachine (cfn-lint validates
  the States language against its schema there, which it cannot do through DefinitionUri).

Usage: check_statemachines.py [template.yaml]   (run with the .venv's Python)
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import tempfile
from pathlib import Path

from samtranslator.yaml_helper import yaml_parse

PLACEHOLDER_ARN = "arn:aws:lambda:us-east-1:123456789012:function:placeholder"


def placeholder(name: str) -> str:
    return PLACEHOLDER_ARN if name.endswith("Arn") else f"placeholder-{name.lower()}"


def main() -> int:
    template_path = Path(sys.argv[1] if len(sys.argv) > 1 else "template.yaml")
    template = yaml_parse(template_path.read_text())
    problems: list[str] = []
    machines = {
        name: r["Properties"]
        for name, r in template["Resources"].items()
        if r["Type"] == "AWS::Serverless::StateMachine"
    }
    if not machines:
        problems.append("template.yaml has no AWS::Serverless::StateMachine")
    for name, props in machines.items():
        path = template_path.parent / props["DefinitionUri"]
        text = path.read_text()
        used = set(re.findall(r"\$\{([A-Za-z0-9_]+)\}", text))
        given = set(props.get("DefinitionSubstitutions", {}))
        for missing in sorted(used - given):
            problems.append(f"{name}: {path} uses ${{{missing}}}, which DefinitionSubstitutions does not give")
        for unused in sorted(given - used):
            problems.append(f"{name}: DefinitionSubstitutions gives {unused}, which {path} does not use")
        filled = re.sub(r"\$\{([A-Za-z0-9_]+)\}", lambda m: placeholder(m.group(1)), text)
        definition = json.loads(filled)
        lint = {
            "AWSTemplateFormatVersion": "2010-09-09",
            "Resources": {
                "Machine": {
                    "Type": "AWS::StepFunctions::StateMachine",
                    "Properties": {
                        "RoleArn": "arn:aws:iam::123456789012:role/placeholder",
                        "Definition": definition,
                    },
                }
            },
        }
        with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as f:
            json.dump(lint, f)
        cfn_lint = Path(sys.executable).parent / "cfn-lint"
        out = subprocess.run([str(cfn_lint), f.name], capture_output=True, text=True)
        if out.returncode != 0:
            problems.append(f"{name}: cfn-lint on {path}:\n{out.stdout}{out.stderr}")
        else:
            print(f"ok  {name}: {path} ({len(definition['States'])} states, {len(used)} substitutions)")
    for p in problems:
        print(f"FAIL {p}")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())

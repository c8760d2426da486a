#!/usr/bin/env python3
"""Checks that a new model version reaches the traffic: with the real SAM translator (as
`sam deploy` runs it), two parameter sets that differ only in ModelVersion, or only in
ShadowModelVersion, AbModelVersion or AbWeight, must give different predict versions
(AWS::Lambda::Version resources), and the same parameters the same one.

A version differs when its logical id differs (SAM publishes a new one) or when a property
that CloudFormation cannot update in place differs once the parameters are resolved (its
Description: CloudFormation replaces the resource, which publishes a new version). Either way
the `live` alias moves and CodeDeploy shifts the traffic.

    python scripts/check_versions.py template.yaml

The functions' local CodeUri (and state machines' DefinitionUri) are replaced by S3 URIs
first, as `sam package` does.
"""

from __future__ import annotations

import copy
import os
import sys

from samtranslator.translator.transform import transform
from samtranslator.yaml_helper import yaml_parse

# Properties of AWS::Lambda::Version whose change requires replacement (CloudFormation's
# resource reference): CodeSha256, Description, FunctionName, RuntimePolicy.
REPLACING = ["CodeSha256", "Description", "FunctionName", "RuntimePolicy"]


class NoManagedPolicies:
    """The map of managed policy names to ARNs: the template names none."""

    def load(self) -> dict:
        return {}


def resolve(value, params: dict):
    """Resolves Ref and Fn::Sub of template parameters, as CloudFormation does at deploy."""
    if isinstance(value, dict):
        if set(value) == {"Ref"} and value["Ref"] in params:
            return params[value["Ref"]]
        if set(value) == {"Fn::Sub"} and isinstance(value["Fn::Sub"], str):
            text = value["Fn::Sub"]
            for name, v in params.items():
                text = text.replace("${" + name + "}", str(v))
            return text
        return {k: resolve(v, params) for k, v in value.items()}
    if isinstance(value, list):
        return [resolve(v, params) for v in value]
    return value


def versions(template: dict, params: dict) -> dict:
    out = transform(copy.deepcopy(template), params, NoManagedPolicies())
    defaults = {k: str(v.get("Default", "")) for k, v in template.get("Parameters", {}).items()}
    values = {**defaults, **params}
    return {
        logical_id: {k: resolve(r["Properties"].get(k), values) for k in REPLACING}
        for logical_id, r in out["Resources"].items()
        if r["Type"] == "AWS::Lambda::Version"
    }


def hooks_wired(template: dict, params: dict) -> list:
    """The translated template's live alias of predict runs the pre- and post-traffic hooks in
    its CodeDeploy update (BeforeAllowTrafficHook, AfterAllowTrafficHook) for every deployment
    type, the hooks' own deployments are off, and the pre-traffic hook targets the new version."""
    failures = []
    for kind in ["AllAtOnce", "Canary10Percent5Minutes", "Linear10PercentEvery1Minute"]:
        out = transform(copy.deepcopy(template), {**params, "PredictDeploymentType": kind}, NoManagedPolicies())
        resources = out["Resources"]
        alias = resources.get("PredictFunctionAliaslive", {})
        update = alias.get("UpdatePolicy", {}).get("CodeDeployLambdaAliasUpdate", {})
        wired = (update.get("BeforeAllowTrafficHook"), update.get("AfterAllowTrafficHook"))
        if wired != ({"Ref": "PredictPreTrafficHook"}, {"Ref": "PredictPostTrafficHook"}):
            failures.append(f"{kind}: predict's alias runs the hooks {wired}, not PredictPreTrafficHook/PredictPostTrafficHook")
            continue
        group = resources.get(update.get("DeploymentGroupName", {}).get("Ref", ""), {})
        if group.get("Type") != "AWS::CodeDeploy::DeploymentGroup":
            failures.append(f"{kind}: the alias's deployment group is missing")
            continue
        for hook in ["PredictPreTrafficHook", "PredictPostTrafficHook"]:
            if any(r["Type"] == "AWS::Lambda::Alias" and r["Properties"].get("FunctionName", {}).get("Ref") == hook for r in resources.values()):
                failures.append(f"{kind}: {hook} is itself deployed through CodeDeploy")
        target = resources["PredictPreTrafficHook"]["Properties"]["Environment"]["Variables"]["TARGET_FUNCTION"]
        print(f"ok: {kind}: deployment group {group['Properties'].get('DeploymentConfigName')} runs "
              f"PreTraffic PredictPreTrafficHook (target {target}) and PostTraffic PredictPostTrafficHook")
    return failures


def main() -> int:
    os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")
    template = yaml_parse(open(sys.argv[1] if len(sys.argv) > 1 else "template.yaml").read())
    for name, resource in template["Resources"].items():
        if resource["Type"] == "AWS::Serverless::Function":
            resource["Properties"]["CodeUri"] = f"s3://artifacts/{name}.zip"
        if resource["Type"] == "AWS::Serverless::StateMachine":
            resource["Properties"]["DefinitionUri"] = f"s3://artifacts/{name}.asl.json"
    base = {"ModelVersion": "1", "ShadowModelVersion": "", "AbModelVersion": "", "AbWeight": "0.1"}
    first = versions(template, base)
    failures = []
    if versions(template, base) != first:
        failures.append("the same parameters give different versions")
    for change in [{"ModelVersion": "2"}, {"ShadowModelVersion": "2"}, {"AbModelVersion": "2"}, {"AbWeight": "0.5"}]:
        other = versions(template, {**base, **change})
        if other == first:
            failures.append(f"{change} gives the same AWS::Lambda::Version: predict would keep serving the old model")
        else:
            print(f"ok: {change} publishes a new predict version: {sorted(other.items())}")
    failures.extend(hooks_wired(template, base))
    for failure in failures:
        print(f"FAIL: {failure}")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())

"""A Secrets Manager secret's value given as a sealed secret, through a real agent, into moto.

One secret's value comes from the agent's environment (``{"$secret": {"env": …}}``), another's is an
opaque value in the forma. moto ends up holding each in clear (the plugin got it), a changed value
becomes the secret's current version, and none of the values is anywhere under the agent's home,
in any output, or on any command line.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from aws_testing import MotoServer

from tests.secret_traces import Cli, assert_nowhere, opaque, secret

pytestmark = pytest.mark.timeout(120)

VARIABLE = "SM_API_KEY"


def secrets_forma(endpoint: str, inline: str) -> dict[str, Any]:
    def managed(name: str, value: object) -> dict[str, Any]:
        properties = {"Name": name, "Description": "formae test", "SecretString": value}
        return {
            "label": name,
            "type": "AWS::SecretsManager::Secret",
            "stack": "sec",
            "target": "aws",
            "properties": properties,
        }

    return {
        "stacks": [{"label": "sec"}],
        "targets": [
            {"label": "aws", "namespace": "AWS", "config": {"region": "us-east-1", "endpoint_url": endpoint}}
        ],
        "resources": [managed("from-env", {"$secret": {"env": VARIABLE}}), managed("inline", opaque(inline))],
    }


def value_in_moto(aws: MotoServer, name: str) -> str:
    return str(aws.client("secretsmanager").get_secret_value(SecretId=name)["SecretString"])


def test_secret_values_reach_aws_and_leave_no_trace(
    aws: MotoServer, start_agent: Any, tmp_path: Path
) -> None:
    values = {name: secret(name) for name in ("env", "inline", "inline2")}
    agent = start_agent(grant=["AWS_*", "PYTHON*", "VIRTUAL_ENV", "COVERAGE_*"], **{VARIABLE: values["env"]})
    cli, path = Cli(agent), tmp_path / "secrets.json"
    path.write_text(json.dumps(secrets_forma(aws.url, values["inline"])))

    cli("apply", "--watch", str(path))
    assert value_in_moto(aws, "from-env") == values["env"]
    assert value_in_moto(aws, "inline") == values["inline"]

    path.write_text(json.dumps(secrets_forma(aws.url, values["inline2"])))
    plan = json.loads(cli("apply", "--simulate", "-o", "json", str(path)).stdout)
    assert [(c["label"], c["operation"]) for c in plan["changes"]] == [("inline", "update")]
    cli("apply", "--watch", str(path))
    assert value_in_moto(aws, "inline") == values["inline2"]

    for output in ("json", "human"):
        cli("inventory", "resources", "--query", "stack:sec", "-o", output)
        cli("status", "command", "-o", output)
    cli("sync", "--query", "stack:sec", "--watch", expect=None)
    cli("status", "drift", "-o", "json", expect=None)
    with agent.client() as client:
        api = [client.inventory("resources"), client.commands(limit=20)]
        api += [client.command(c["id"]) for c in api[1]]
    cli.snapshot()  # the plugin's command line, with the agent still running

    agent.stop()
    assert_nowhere(values, agent.home, cli, json.dumps(api))

"""fake-aws on top of formae.testing: its install, the cloud it keeps in a file, the seed's network forma."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from formae_fake_aws.cloud import CloudResource, read_cloud

from formae.testing import AgentProcess

FAKE_AWS = Path(sys.executable).parent / "fake-aws-plugin"


def install_fake_aws(home: Path, version: str = "1.0.0") -> Path:
    target = home / "plugins" / "fake-aws" / f"v{version}" / "fake-aws-plugin"
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.copy2(FAKE_AWS, target)
    return target


def network_forma(stack: str = "net", **extra_properties: dict[str, Any]) -> dict[str, Any]:
    """The seed's forma: a VPC, a subnet referring to it, and a bucket."""

    def props(label: str, base: dict[str, Any]) -> dict[str, Any]:
        return {**base, **extra_properties.get(label, {})}

    return {
        "stacks": [{"label": stack}],
        "targets": [{"label": "local", "namespace": "FakeAWS", "config": {"region": "us-east-1"}}],
        "resources": [
            {
                "label": "vpc",
                "type": "FakeAWS::EC2::VPC",
                "stack": stack,
                "target": "local",
                "properties": props("vpc", {"CidrBlock": "10.0.0.0/16"}),
            },
            {
                "label": "subnet",
                "type": "FakeAWS::EC2::Subnet",
                "stack": stack,
                "target": "local",
                "properties": props(
                    "subnet",
                    {
                        "CidrBlock": "10.0.1.0/24",
                        "VpcId": {
                            "$res": True,
                            "$label": "vpc",
                            "$type": "FakeAWS::EC2::VPC",
                            "$stack": stack,
                            "$property": "VpcId",
                        },
                    },
                ),
            },
            {
                "label": "bucket",
                "type": "FakeAWS::S3::Bucket",
                "stack": stack,
                "target": "local",
                "properties": props("bucket", {"BucketName": f"{stack}-bucket"}),
            },
        ],
    }


@dataclass
class AgentUnderTest(AgentProcess):
    """An agent whose fake-aws children keep their cloud where the test can read it.

    Plugins started by hand for it are cleaned up with it, whatever the test's outcome.
    """

    hand_started: list[subprocess.Popen[bytes]] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.env.setdefault("FAKE_AWS_STATE_FILE", str(self.cloud_file))

    def cleanup(self) -> None:
        for plugin in self.hand_started:
            if plugin.poll() is None:
                plugin.kill()
                plugin.wait(10)
        super().cleanup()

    @property
    def cloud_file(self) -> Path:
        return self.home / "fake-aws-cloud.db"

    def cloud(self) -> dict[str, CloudResource]:
        return read_cloud(self.cloud_file)


def join_token(agent: AgentProcess, *namespaces: str, ttl: int = 600) -> str:
    """A one-time token, as `formae plugin token create` makes it (FakeAWS unless told otherwise)."""
    with agent.client() as client:
        return str(client.create_join_token(list(namespaces or ("FakeAWS",)), ttl, None)["token"])


def start_plugin_by_hand(
    agent: AgentUnderTest,
    node: str,
    cookie: str | None = None,
    extra_env: dict[str, str] | None = None,
    log: Path | None = None,
    token: str | None = None,
    argv: list[str] | None = None,
) -> subprocess.Popen[bytes]:
    """A plugin not spawned by the agent, told only the environment: how a remote host runs one.

    With plugin TLS on (the default) it joins with a one-time token (``token``, or a new one);
    a ``cookie`` given explicitly overrides the one the join grants. Without TLS it has the cookie.
    """
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("FORMAE_")},
        "FORMAE_AGENT_NODE": agent.runtime["plugin_address"],
        "FORMAE_PLUGIN_NODE": node,
        "FORMAE_PLUGIN_STATE_DIR": str(agent.home / "remote-plugins" / node),
        **(extra_env or {}),
    }
    if agent.plugin_tls and "FORMAE_JOIN_TOKEN" not in env:
        env["FORMAE_JOIN_TOKEN"] = token or join_token(agent)
    if cookie is not None or not agent.plugin_tls:
        env["FORMAE_NETWORK_COOKIE"] = cookie if cookie is not None else agent.cookie
    with (log or agent.home / f"{node.replace('@', '_')}.log").open("ab") as out:
        plugin = subprocess.Popen(
            argv or [str(FAKE_AWS)], env=env, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT
        )
    agent.hand_started.append(plugin)
    return plugin

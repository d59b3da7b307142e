"""Real agents and real plugin processes for integration tests, on 127.0.0.1 only.

An ``AgentUnderTest`` is ``python -m formae agent start`` in its own home with fake-aws installed,
ports picked by the kernel, and its log in a file the test can wait on. Teardown kills whatever
the test left running, agent and plugins alike, so that no process outlives its test.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from formae_fake_aws.cloud import CloudResource, read_journal

from formae.cli.client import AgentClient

FAKE_AWS = Path(sys.executable).parent / "fake-aws-plugin"
FINAL = ("Success", "Failed", "Canceled")


def wait_until(condition: Callable[[], Any], timeout: float, what: str, interval: float = 0.02) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(interval)


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:  # a zombie has exited; only its parent has not reaped it yet
        return Path(f"/proc/{pid}/stat").read_text().split()[2] != "Z"
    except OSError:
        return False


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
class AgentUnderTest:
    home: Path
    env: dict[str, str] = field(default_factory=dict)
    store_url: str | None = None
    process: subprocess.Popen[bytes] | None = None

    @property
    def log_path(self) -> Path:
        return self.home / "agent-test.log"

    @property
    def cloud_journal(self) -> Path:
        return self.home / "fake-aws-cloud.jsonl"

    @property
    def runtime(self) -> dict[str, Any]:
        return dict(json.loads((self.home / "run" / "agent.json").read_text()))

    @property
    def cookie(self) -> str:
        return (self.home / "network.cookie").read_text().strip()

    def start(self, timeout: float = 20.0) -> AgentUnderTest:
        self.home.mkdir(parents=True, exist_ok=True)
        (self.home / "run" / "agent.json").unlink(missing_ok=True)
        env = {
            **os.environ,
            "FORMAE_HOME": str(self.home),
            "FAKE_AWS_STATE_FILE": str(self.cloud_journal),
            "FORMAE_LOG_LEVEL": "INFO",
            **self.env,
        }
        env.pop("FORMAE_NETWORK_COOKIE", None) if "FORMAE_NETWORK_COOKIE" not in self.env else None
        args = [
            sys.executable,
            "-m",
            "formae",
            "agent",
            "start",
            f"--home={self.home}",
            "--api-address=127.0.0.1:0",
            "--plugin-address=127.0.0.1:0",
        ]
        if self.store_url:
            args.append(f"--store-url={self.store_url}")
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                args, env=env, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT
            )
        wait_until(self._started, timeout, f"the agent to start (log: {self.log_path})")
        return self

    def _started(self) -> bool:
        assert self.process is not None
        if self.process.poll() is not None:
            raise AssertionError(f"agent exited with {self.process.returncode}:\n{self.log()}")
        try:
            return bool(self.runtime.get("pid") == self.process.pid)
        except (OSError, ValueError):
            return False

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    def client(self) -> AgentClient:
        return AgentClient(self.runtime["api_url"])

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def log_count(self, pattern: str) -> int:
        return len(re.findall(pattern, self.log()))

    def wait_for_log(self, pattern: str, timeout: float = 10.0, count: int = 1) -> str:
        wait_until(
            lambda: self.log_count(pattern) >= count, timeout, f"{pattern!r} x{count} in the agent log"
        )
        return re.findall(pattern, self.log())[count - 1]  # type: ignore[no-any-return]

    def plugin_pids(self) -> list[int]:
        return [
            int(pid)
            for pid in re.findall(r"Plugin process started name=\S+ version=\S+ pid=(\d+)", self.log())
        ]

    def plugins(self) -> list[dict[str, Any]]:
        with self.client() as client:
            return client.plugins()

    def apply(self, forma: dict[str, Any], mode: str = "reconcile", force: bool = False) -> dict[str, Any]:
        with self.client() as client:
            return client.apply(forma, mode, False, force, "test-forma")

    def wait_command(self, command_id: str, timeout: float = 30.0) -> dict[str, Any]:
        with self.client() as client:
            return dict(
                wait_until(lambda: _final(client.command(command_id)), timeout, f"command {command_id}")
            )

    def apply_and_wait(
        self, forma: dict[str, Any], mode: str = "reconcile", timeout: float = 30.0
    ) -> dict[str, Any]:
        return self.wait_command(self.apply(forma, mode)["command_id"], timeout)

    def cloud(self) -> dict[str, CloudResource]:
        return read_journal(self.cloud_journal)

    def signal(self, signum: int) -> None:
        assert self.process is not None
        self.process.send_signal(signum)

    def stop(self, timeout: float = 15.0) -> int:
        assert self.process is not None
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        return self.process.wait(timeout)

    def cleanup(self) -> None:
        """Kill the agent and every plugin it ever spawned; never raises."""
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(10)
        for pid in self.plugin_pids():
            if pid_alive(pid):
                os.kill(pid, signal.SIGKILL)


def _final(command: dict[str, Any]) -> dict[str, Any] | None:
    return command if command["state"] in FINAL else None


def start_plugin_by_hand(
    agent: AgentUnderTest,
    node: str,
    cookie: str | None = None,
    extra_env: dict[str, str] | None = None,
    log: Path | None = None,
) -> subprocess.Popen[bytes]:
    """A plugin not spawned by the agent, told only the environment: how a remote host runs one."""
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("FORMAE_")},
        "FORMAE_AGENT_NODE": agent.runtime["plugin_address"],
        "FORMAE_PLUGIN_NODE": node,
        "FORMAE_NETWORK_COOKIE": cookie if cookie is not None else agent.cookie,
        **(extra_env or {}),
    }
    with (log or agent.home / f"{node.replace('@', '_')}.log").open("ab") as out:
        return subprocess.Popen(
            [str(FAKE_AWS)], env=env, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT
        )

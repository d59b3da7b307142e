"""The plugins the docs print, exactly as printed, pass the conformance kit: the whole AWS-style one
of docs/plugins.md §2 on moto's S3, and the README's.

A guide whose example does not work teaches the wrong thing; this keeps the page honest.
"""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

pytestmark = pytest.mark.timeout(150)

ROOT = Path(__file__).resolve().parents[2]
GUIDE = ROOT / "docs" / "plugins.md"
CREDENTIALS = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_SESSION_TOKEN": "t"}


@pytest.fixture
def moto(tmp_path: Path) -> Iterator[str]:
    pytest.importorskip("moto.server")
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with (tmp_path / "moto.log").open("wb") as log:
        server = subprocess.Popen(
            [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
            stdout=log,
            stderr=subprocess.STDOUT,
            env={**os.environ, **CREDENTIALS},
        )
    try:
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 30
        while True:
            try:
                urllib.request.urlopen(f"{url}/moto-api/", timeout=1).close()
                break
            except OSError:
                assert time.monotonic() < deadline, (tmp_path / "moto.log").read_text()
                assert server.poll() is None, (tmp_path / "moto.log").read_text()
                time.sleep(0.1)
        yield url
    finally:
        server.kill()
        server.wait(10)


def test_the_guides_whole_plugin_conforms(moto: str, tmp_path: Path) -> None:
    code = re.findall(r"```python\n(.*?)```", GUIDE.read_text(encoding="utf-8"), re.S)[0]
    (tmp_path / "my_aws.py").write_text(code)
    plugin = tmp_path / "my-aws-plugin"
    plugin.write_text(f'#!/bin/sh\nexec {sys.executable} {tmp_path / "my_aws.py"} "$@"\n')
    plugin.chmod(0o755)
    files = {
        "target.json": {"region": "us-east-1", "endpoint_url": moto},
        "create.json": {"BucketName": "guide-bucket"},
        "update.json": {"Versioning": True},
    }
    for name, content in files.items():
        (tmp_path / name).write_text(json.dumps(content))

    args = [sys.executable, "-m", "formae", "plugin", "conformance", str(plugin), "--output", "json"]
    args += ["--target-config", str(tmp_path / "target.json"), "--type", "MyAWS::S3::Bucket"]
    args += [
        "--properties",
        str(tmp_path / "create.json"),
        "--update-properties",
        str(tmp_path / "update.json"),
    ]
    done = subprocess.run(
        args,
        capture_output=True,
        text=True,
        timeout=140,
        check=False,
        env={**os.environ, **CREDENTIALS},
    )
    checks = {c["name"]: c for c in json.loads(done.stdout)["checks"]}

    assert {n: c["detail"] for n, c in checks.items() if c["outcome"] != "pass"} == {}, done.stderr[-3000:]
    assert done.returncode == 0
    assert checks["IN_PROGRESS then status"]["detail"].endswith("each polled to its end")  # the delete


def test_the_readmes_plugin_conforms(tmp_path: Path) -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    code = re.findall(r"```python\n(.*?)```", readme[readme.index("## Writing a plugin") :], re.S)[0]
    (tmp_path / "my_cloud.py").write_text(code)
    plugin = tmp_path / "my-cloud-plugin"
    plugin.write_text(f'#!/bin/sh\nexec {sys.executable} {tmp_path / "my_cloud.py"} "$@"\n')
    plugin.chmod(0o755)
    (tmp_path / "create.json").write_text(json.dumps({"Name": "readme", "Size": 1}))
    (tmp_path / "update.json").write_text(json.dumps({"Size": 2}))
    args = [sys.executable, "-m", "formae", "plugin", "conformance", str(plugin), "--output", "json"]
    args += ["--type", "MyCloud::Storage::Bucket", "--properties", str(tmp_path / "create.json")]
    args += ["--update-properties", str(tmp_path / "update.json")]

    done = subprocess.run(args, capture_output=True, text=True, timeout=140, check=False)
    checks = {c["name"]: c for c in json.loads(done.stdout)["checks"]}

    assert {n: c["detail"] for n, c in checks.items() if c["outcome"] == "fail"} == {}
    assert done.returncode == 0

"""formae doctor against a real agent, and completion scripts loaded by real shells.

The doctor must name a crash-looping plugin (with its exit code and stderr) of a real agent and
exit 1, name a plugin whose clock runs ahead of the agent's, and report a healthy agent as such.
The completion scripts must load in bash and zsh and complete from the running agent.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from formae.testing import wait_until
from tests.integration.conftest import MakeAgent
from tests.integration.harness import AgentUnderTest

pytestmark = pytest.mark.timeout(120)

FORMAE = Path(sys.executable).parent / "formae"


def formae(agent: AgentUnderTest, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, **agent.cli_env()}
    return subprocess.run(
        [str(FORMAE), *args], env=env, capture_output=True, text=True, timeout=60, check=False
    )


def test_doctor_says_a_healthy_agent_answers(agent: AgentUnderTest) -> None:
    done = formae(agent, "doctor", "-o", "json")

    findings = {f["check"]: f for f in json.loads(done.stdout)}
    assert findings["agent"]["status"] == "ok", findings
    assert findings["plugins"]["status"] == "ok", findings
    assert "crash-loop" not in findings


def test_doctor_names_a_crash_looping_plugin_and_exits_1(agent_home: Path, make_agent: MakeAgent) -> None:
    crashy = agent_home / "plugins" / "crashy" / "v0.1.0" / "crashy-plugin"
    crashy.parent.mkdir(parents=True)
    crashy.write_text("#!/bin/sh\necho 'no credentials for region eu-west-9' >&2\nexit 3\n")
    crashy.chmod(0o755)
    agent = make_agent(agent_home).start()
    agent.wait_for_log(r"(?s)(?:name=crashy code=3; restarting.*){3}", timeout=30)

    done = formae(agent, "doctor")

    assert done.returncode == 1, done.stdout + done.stderr
    line = next(line for line in done.stdout.splitlines() if line.split()[1:2] == ["crash-loop"])
    assert "crashy" in line
    assert "exit code 3" in line
    assert "no credentials for region eu-west-9" in line


SKEWED = """#!{python}
# fake-aws, on a host whose clock runs five minutes ahead: its heartbeats carry that clock
import time
import types

from formae.plugin import _runtime
from formae_fake_aws.__main__ import main

ahead = types.ModuleType("time")
ahead.__dict__.update(vars(time))
ahead.time = lambda: time.time() + 300
_runtime.time = ahead
main()
"""


def test_doctor_names_a_plugin_whose_clock_is_off(tmp_path: Path, make_agent: MakeAgent) -> None:
    home = tmp_path / "home"
    skewed = home / "plugins" / "fake-aws" / "v1.0.0" / "fake-aws-plugin"
    skewed.parent.mkdir(parents=True)
    skewed.write_text(SKEWED.format(python=sys.executable))
    skewed.chmod(0o755)
    agent = make_agent(home).start()
    agent.wait_for_log(r"Plugin registered namespace=FakeAWS node=\S+", timeout=30)

    def line() -> str | None:
        done = formae(agent, "doctor")
        return next((row for row in done.stdout.splitlines() if row.split()[1:2] == ["clock"]), None)

    found = wait_until(line, 20, "a heartbeat carrying the plugin's clock")
    assert "fake-aws@" in found
    assert re.search(r"clock is 3\d\ds ahead of the agent's", found), found
    assert "NTP" in found


def _complete_in(shell: str, script: str, agent: AgentUnderTest) -> str:
    """Run ``script`` (which loads formae's completion) in a real shell; what it printed."""
    env = {
        **os.environ,
        "FORMAE_API_URL": agent.runtime["api_url"],
        "PATH": f"{FORMAE.parent}:{os.environ['PATH']}",
    }
    done = subprocess.run(
        [shell, "-c", script], env=env, capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_the_bash_completion_script_loads_and_completes_from_the_agent(agent: AgentUnderTest) -> None:
    commands = formae(agent, "status", "command", "-o", "json")
    script = """
        source <(formae completion bash)
        complete -p formae >/dev/null
        COMP_WORDS=(formae sta); COMP_CWORD=1; _formae_completion formae; printf '%s\\n' "${COMPREPLY[@]}"
        COMP_WORDS=(formae inventory resources --query st); COMP_CWORD=4; _formae_completion formae
        printf '%s\\n' "${COMPREPLY[@]}"
    """
    assert commands.returncode == 0

    completed = _complete_in("bash", script, agent)

    assert completed.split() == ["status", "stack:"]


def test_the_zsh_completion_script_loads(agent: AgentUnderTest, tmp_path: Path) -> None:
    if shutil.which("zsh") is None:
        if os.environ.get("CI"):
            pytest.fail("zsh is missing: .ci/install-shells installs it")
        pytest.skip("zsh is not installed (scripts/test installs it with .ci/install-shells)")
    script = """
        autoload -U compinit && compinit -u
        source <(formae completion zsh)
        whence -w _formae_completion
        env _TYPER_COMPLETE_ARGS="formae sta" _FORMAE_COMPLETE=complete_zsh formae
    """

    loaded = _complete_in("zsh", script, agent)

    assert "_formae_completion: function" in loaded
    assert "status" in loaded

"""Real separate "hosts" for remote-plugin tests: Linux network namespaces joined by veth pairs.

A remote plugin talks to the agent over one outbound gRPC stream, and the failures that matter
(a link that goes dark, a host that dies) live in the network, not in the process. On 127.0.0.1
a "cut" cannot be made: the kernel answers for every loopback address. So each plugin host here
is a network namespace of its own, joined to the root namespace (where the agent runs) by a veth
pair on a private /30:

    root namespace (agent)                    namespace fa-<hex>-<pid>-p1 (plugin host "p1")
    fa<hex>r1  10.231.B.1/30  ◀── veth ──▶    fa<hex>n1  10.231.B.2/30, lo up

``cut(host)`` sets the root end down, which is what a pulled cable looks like to both sides:
packets vanish, nothing is reset, TCP keeps retrying. ``restore(host)`` sets it up again.

Where namespaces cannot be made (not root, or ``ip netns add`` refused), the same scenarios run
on loopback: every host is 127.0.0.1 and a cut freezes the host's processes with SIGSTOP (and
SIGCONT to restore) -- a frozen host rather than a dead link, which the agent sees the same way
(silence) and the plugin sees differently (it wakes up to a stale stream). Test ids say which.

Only addresses on this machine are ever used: 127.0.0.0/8, or the 10.231.0.0/16 addresses this
module puts on the veths it creates (a /24 no interface of this machine already uses).

Nothing is left behind: ``HostNetwork.close`` kills every process in each namespace
(``ip netns pids``), deletes the veths and the namespaces, and never raises. Namespaces carry the
pid of the test process that made them, so a later run sweeps away what a SIGKILLed run left.
"""

from __future__ import annotations

import contextlib
import functools
import ipaddress
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Literal

import pytest

from formae.testing import pid_alive, wait_until
from tests.integration.harness import FAKE_AWS, AgentUnderTest, join_token

Kind = Literal["netns", "loopback"]

SUBNET_PREFIX = "10.231"
"""The /16 the test hosts are carved from: private, and not one this machine's real networks use."""
_OWNED = re.compile(r"^fa-[0-9a-f]{6}-(\d+)-")


class NetworkError(Exception):
    """An ``ip`` command failed while building the test network."""


def _ip(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(["ip", *args], capture_output=True, text=True, timeout=20, check=False)
    if check and result.returncode != 0:
        raise NetworkError(f"ip {' '.join(args)} failed ({result.returncode}): {result.stderr.strip()}")
    return result


@functools.cache
def namespaces_unavailable() -> str | None:
    """Why namespaces cannot be used here, or None when they can; probed once per test session."""
    if os.geteuid() != 0:
        return "network namespaces need root (ip netns add)"
    if shutil.which("ip") is None:
        return "the ip command (iproute2) is not installed"
    probe = f"fa-{secrets.token_hex(3)}-{os.getpid()}-probe"
    try:
        added = _ip("netns", "add", probe, check=False)
    except (OSError, subprocess.SubprocessError) as error:
        return f"ip netns add failed: {error}"
    if added.returncode != 0:
        return f"ip netns add failed: {added.stderr.strip()}"
    _ip("netns", "delete", probe, check=False)
    return None


def free_port(host: str) -> int:
    """A TCP port nobody listens on at ``host`` now, for an agent that must come back on the same one."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind((host, 0))
        return int(probe.getsockname()[1])


@dataclass
class Host:
    """One plugin host: its own network namespace (or, on loopback, a group of processes)."""

    name: str
    namespace: str | None
    """The network namespace, or None on loopback."""
    root_link: str | None
    """The root-namespace end of the veth: the agent's side of this host's only cable."""
    address: str
    """This host's own address."""
    agent_address: str
    """The address at which this host reaches the agent."""
    processes: list[subprocess.Popen[bytes]] = field(default_factory=list)
    is_cut: bool = False


class HostNetwork:
    """Hosts for one test; ``close`` takes them all down again whatever happened in the test."""

    def __init__(self, kind: Kind) -> None:
        self.kind: Kind = kind
        self.tag = secrets.token_hex(3)
        self.hosts: list[Host] = []
        self._logs: list[IO[bytes]] = []
        self._octet: int | None = None
        if kind == "netns":
            _sweep_orphans()

    @property
    def agent_bind_host(self) -> str:
        """Where the agent listens for plugins: every veth's root end, or loopback."""
        return "0.0.0.0" if self.kind == "netns" else "127.0.0.1"

    def plugin_address(self, port: int) -> str:
        """The agent's ``--plugin-address`` for this network."""
        return f"{self.agent_bind_host}:{port}"

    # ------------------------------------------------------------ building

    def add_host(self, name: str) -> Host:
        """A new host; in netns mode a namespace with ``lo`` up and a veth pair to the root namespace."""
        if any(h.name == name for h in self.hosts):
            raise ValueError(f"host {name} already exists")
        if self.kind == "loopback":
            host = Host(name, None, None, "127.0.0.1", "127.0.0.1")
            self.hosts.append(host)
            return host
        index = len(self.hosts)
        if index >= 64:
            raise ValueError("at most 64 hosts per test network (one /30 each in a /24)")
        octet = self._subnet_octet()
        base = f"{SUBNET_PREFIX}.{octet}"
        agent_ip, host_ip = f"{base}.{4 * index + 1}", f"{base}.{4 * index + 2}"
        namespace = f"fa-{self.tag}-{os.getpid()}-{name}"
        root_link, peer = f"fa{self.tag}r{index}", f"fa{self.tag}n{index}"  # at most 15 characters
        host = Host(name, namespace, root_link, address=host_ip, agent_address=agent_ip)
        self.hosts.append(host)  # before creating anything, so close() removes a half-built host too
        _ip("netns", "add", namespace)
        _ip("link", "add", root_link, "type", "veth", "peer", "name", peer)
        _ip("link", "set", peer, "netns", namespace)
        _ip("addr", "add", f"{agent_ip}/30", "dev", root_link)
        _ip("link", "set", root_link, "up")
        _ip("-n", namespace, "addr", "add", f"{host_ip}/30", "dev", peer)
        _ip("-n", namespace, "link", "set", peer, "up")
        _ip("-n", namespace, "link", "set", "lo", "up")
        return host

    def _subnet_octet(self) -> int:
        """A third octet whose 10.231.X.0/24 no interface of this machine uses yet."""
        if self._octet is None:
            used = _ip("-o", "-4", "addr", "show").stdout
            taken = {int(m) for m in re.findall(rf"inet {re.escape(SUBNET_PREFIX)}\.(\d+)\.", used)}
            free = [n for n in range(256) if n not in taken]
            if not free:
                raise NetworkError(f"every /24 of {SUBNET_PREFIX}.0.0/16 is in use")
            self._octet = free[secrets.randbelow(len(free))]
        return self._octet

    # ------------------------------------------------------------ using

    def run_in(
        self,
        host: Host,
        argv: list[str],
        env: Mapping[str, str],
        log: Path | None = None,
    ) -> subprocess.Popen[bytes]:
        """Start ``argv`` on ``host`` with exactly ``env``; output to ``log`` (or discarded).

        ``ip netns exec`` execs the command after entering the namespace, so the Popen's pid is
        the program's own pid: signals sent to it reach the program.
        """
        prefix = ["ip", "netns", "exec", host.namespace] if host.namespace else []
        out: IO[bytes] | int = subprocess.DEVNULL
        if log is not None:
            out = log.open("ab")
            self._logs.append(out)
        process = subprocess.Popen(
            [*prefix, *argv],
            env=dict(env),
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
        host.processes.append(process)
        return process

    def cut(self, host: Host) -> None:
        """Take ``host`` off the network: its veth's agent end goes down (loopback: SIGSTOP)."""
        self._switch(host, connected=False)

    def restore(self, host: Host) -> None:
        """Put ``host`` back: the veth end comes up again (loopback: SIGCONT)."""
        self._switch(host, connected=True)

    def _switch(self, host: Host, *, connected: bool) -> None:
        if host.root_link is not None:
            _ip("link", "set", host.root_link, "up" if connected else "down")
        else:
            for process in host.processes:
                if process.poll() is None:
                    os.kill(process.pid, signal.SIGCONT if connected else signal.SIGSTOP)
        host.is_cut = not connected

    # ------------------------------------------------------------ tearing down

    def close(self) -> None:
        """Kill every process on every host, remove every veth and namespace; never raises."""
        for host in self.hosts:
            with contextlib.suppress(Exception):
                _kill_host(host)
        for log in self._logs:
            with contextlib.suppress(Exception):
                log.close()
        for host in self.hosts:
            if host.root_link is not None:
                with contextlib.suppress(Exception):
                    _ip("link", "delete", host.root_link, check=False)
            if host.namespace is not None:
                with contextlib.suppress(Exception):
                    _ip("netns", "delete", host.namespace, check=False)
        self.hosts.clear()

    def leftovers(self) -> list[str]:
        """What of this network still exists (namespaces, links); empty after ``close``."""
        names = _ip("netns", "list", check=False).stdout + _ip("-o", "link", "show", check=False).stdout
        return sorted(set(re.findall(rf"\bfa-?{self.tag}\S*", names)))


def _kill_host(host: Host) -> None:
    """SIGKILL (which also ends a SIGSTOPped process) everything we started and all else in the namespace."""
    for process in host.processes:
        if process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                process.kill()
    if host.namespace is not None:
        _kill_namespace_pids(host.namespace)
    for process in host.processes:
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.wait(10)


def _kill_namespace_pids(namespace: str) -> None:
    pids = [int(p) for p in _ip("netns", "pids", namespace, check=False).stdout.split() if p.isdigit()]
    for pid in pids:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(pid, signal.SIGKILL)
    with contextlib.suppress(AssertionError):
        wait_until(lambda: not any(pid_alive(p) for p in pids), 10, f"processes in {namespace} to die")


def _sweep_orphans() -> None:
    """Remove namespaces that an earlier test process made and could not remove (it was SIGKILLed)."""
    for line in _ip("netns", "list", check=False).stdout.splitlines():
        name = line.split()[0] if line.split() else ""
        owner = _OWNED.match(name)
        if owner is None or int(owner.group(1)) == os.getpid() or pid_alive(int(owner.group(1))):
            continue
        with contextlib.suppress(Exception):
            _kill_namespace_pids(name)
            _ip("netns", "delete", name, check=False)  # the veth pair goes with its namespace


# ---------------------------------------------------------------- remote plugins


def start_remote_plugin(
    agent: AgentUnderTest, network: HostNetwork, host: Host, node: str, **env: str
) -> subprocess.Popen[bytes]:
    """fake-aws started by hand on ``host``, as its operator would: told only the environment.

    The one place that knows how a remote plugin joins. With plugin TLS on (the agent's default)
    it gets a fresh one-time join token and a state directory of its own, where it keeps the
    certificate and cookie it trades the token for (so it reconnects, even to a restarted agent,
    without a new token); without TLS it gets the cookie. It dials the agent at the address its
    host reaches it by (the token's own address would be the agent's bind address, 0.0.0.0),
    shares the agent's children's cloud (``FAKE_AWS_STATE_FILE``), leaves ``FORMAE_PARENT_PID``
    unset (so it reconnects when the agent goes away) and logs to ``{home}/{node}.log``. ``env``
    adds or overrides variables, e.g. ``FAKE_AWS_RATE_LIMIT="20"``.
    """
    port = agent.runtime["plugin_address"].rpartition(":")[2]
    ipv4(host.agent_address)
    environment = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("FORMAE_", "FAKE_AWS_"))},
        "FORMAE_AGENT_NODE": f"{host.agent_address}:{port}",
        "FORMAE_PLUGIN_NODE": node,
        "FORMAE_PLUGIN_STATE_DIR": str(agent.home / "remote-plugins" / node),
        "FAKE_AWS_STATE_FILE": str(agent.cloud_file),
    }
    if agent.plugin_tls:
        environment["FORMAE_JOIN_TOKEN"] = join_token(agent)
    else:
        environment["FORMAE_NETWORK_COOKIE"] = agent.cookie
    return network.run_in(host, [str(FAKE_AWS)], {**environment, **env}, log=plugin_log(agent, node))


def plugin_log(agent: AgentUnderTest, node: str) -> Path:
    return agent.home / f"{node.replace('@', '_')}.log"


# ---------------------------------------------------------------- fixtures

NETWORK_KINDS = [
    pytest.param("netns", id="netns"),
    pytest.param("loopback", id="loopback-sigstop"),
]


@pytest.fixture(name="test_network", params=NETWORK_KINDS)
def network_fixture(request: pytest.FixtureRequest) -> Iterator[HostNetwork]:
    """A fresh test network, torn down after the test; the netns variant skips where it cannot run.

    Import it into a test module (``from tests.integration.netns import network_fixture``)
    and ask for ``test_network``; every test then runs once per kind of network.
    """
    kind: Kind = request.param
    if kind == "netns" and (reason := namespaces_unavailable()) is not None:
        pytest.skip(f"no network namespaces on this machine ({reason}); the loopback variant runs instead")
    network = HostNetwork(kind)
    try:
        yield network
    finally:
        network.close()
    if kind == "netns":
        assert network.leftovers() == [], "the test network was not fully removed"


def ipv4(address: str) -> ipaddress.IPv4Address:
    """``address`` as an IPv4 address, refusing anything this machine does not own (a safety net)."""
    parsed = ipaddress.IPv4Address(address)
    if not (parsed.is_loopback or parsed in ipaddress.IPv4Network(f"{SUBNET_PREFIX}.0.0/16")):
        raise ValueError(f"{address} is not a test-network address")
    return parsed

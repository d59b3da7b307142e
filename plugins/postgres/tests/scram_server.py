"""A private PostgreSQL server that checks passwords: the shared test server trusts every login.

To see that a role really can log in with the password formae set (and cannot with another), a
test needs a server that asks for it. This one is made with ``initdb`` in a temporary directory,
SCRAM-SHA-256 for every connection, on a free loopback port, and logs every statement, so that a
test can also look for a password in what the server logged. Made as the ``postgres`` OS user when
run as root (PostgreSQL refuses to run as root). Dropped, files and all, when the test ends.
"""

from __future__ import annotations

import os
import pwd
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

BINARIES = ("/usr/lib/postgresql/15/bin", "/usr/lib/postgresql/16/bin", "/usr/lib/postgresql/14/bin")


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def unavailable() -> str | None:
    """Why no such server can be made here; None when one can."""
    if pg_binary("initdb") is None or pg_binary("pg_ctl") is None:
        return "PostgreSQL's server binaries (initdb, pg_ctl) are not installed"
    if os.geteuid() == 0:
        try:
            pwd.getpwnam("postgres")
        except KeyError:
            return "running as root, and there is no postgres user to run PostgreSQL as"
    return None


def pg_binary(name: str) -> str | None:
    for directory in BINARIES:
        if (Path(directory) / name).exists():
            return str(Path(directory) / name)
    return shutil.which(name)


@dataclass
class ScramServer:
    """``postgres`` (the superuser) logs in with ``password``; nobody logs in without one."""

    password: str
    directory: Path
    port: int

    @property
    def log(self) -> Path:
        return self.directory / "server.log"

    @classmethod
    def start(cls, password: str) -> ScramServer:
        directory = Path(tempfile.mkdtemp(prefix="formae-scram-"))
        server = cls(password, directory, free_port())
        try:
            server._init()
            server._ctl("start", "-w", "-l", str(server.log), "-o", server._options())
        except BaseException:
            shutil.rmtree(directory, ignore_errors=True)
            raise
        return server

    def stop(self) -> None:
        try:
            self._ctl("stop", "-m", "immediate")
        finally:
            shutil.rmtree(self.directory, ignore_errors=True)

    def config(self) -> dict[str, object]:
        """A target's config naming this server, without its password."""
        return {"host": "127.0.0.1", "port": self.port, "user": "postgres", "database": "postgres"}

    def _init(self) -> None:
        password_file = self.directory / "password"
        password_file.write_text(self.password + "\n")
        self._own(self.directory, password_file)
        initdb = ["-D", str(self.directory / "data"), "-U", "postgres", "-N", "-A", "scram-sha-256"]
        self._run("initdb", *initdb, f"--pwfile={password_file}")
        password_file.unlink()

    def _options(self) -> str:
        settings = {
            "listen_addresses": "127.0.0.1",
            "port": str(self.port),
            "unix_socket_directories": str(self.directory),
            "fsync": "off",
            "log_statement": "all",
        }
        return " ".join(f"-c {name}={value}" for name, value in settings.items())

    def _ctl(self, *args: str) -> None:
        self._run("pg_ctl", "-D", str(self.directory / "data"), *args)

    def _run(self, program: str, *args: str) -> None:
        binary = pg_binary(program)
        if binary is None:
            raise FileNotFoundError(f"{program} (PostgreSQL's server binaries) is not installed")
        subprocess.run([*_as_postgres(), binary, *args], check=True, capture_output=True, timeout=60)

    @staticmethod
    def _own(*paths: Path) -> None:
        if os.geteuid() == 0:
            for path in paths:
                shutil.chown(path, "postgres", "postgres")


def _as_postgres() -> Sequence[str]:
    if os.geteuid() != 0:
        return ()
    return ("setpriv", "--reuid=postgres", "--regid=postgres", "--init-groups")

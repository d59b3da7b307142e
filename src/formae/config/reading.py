"""Find and read the agent's configuration file: Pkl, YAML 1.2 or JSON, as formas are read.

The file is ``--config FILE``, else ``$FORMAE_CONFIG``, else ``{home}/formae.pkl`` (or
``formae.yaml``, ``formae.yml``, ``formae.json``; two of them at once is refused, as nobody could
tell which one counts). It is read with the forma loader's readers and limits (size, nesting,
aliases), then validated by :class:`~formae.config.model.ConfigFileModel`. Every problem is
reported at once as ``FILE:LINE: FIELD: MESSAGE``: YAML and JSON know the line of each key (a
second, round-trip parse keeps the marks), Pkl files are type-checked by ``pkl eval`` itself, whose
message carries the line, and what only the model can refuse is named by its field path.
"""

from __future__ import annotations

import json
import os
import stat
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, get_args, get_origin

from pydantic import BaseModel, ValidationError
from pydantic_core import ErrorDetails
from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap, CommentedSeq
from ruamel.yaml.error import YAMLError

from formae.config.model import ConfigFileModel
from formae.forma.errors import FormaError
from formae.forma.limits import check_shape
from formae.forma.loader import parse_yaml, read_text
from formae.forma.pkl import evaluate_pkl

CONFIG_ENV = "FORMAE_CONFIG"
NAMES = ("formae.pkl", "formae.yaml", "formae.yml", "formae.json")

Path_ = tuple[str | int, ...]


class ConfigFileError(Exception):
    """The configuration file cannot be used; the message names the file, the line and each field."""

    def __init__(self, problems: Sequence[str]) -> None:
        self.problems = list(problems)
        super().__init__("\n".join(self.problems))


@dataclass(frozen=True)
class ConfigFile:
    """A validated configuration file, and the line of each field it sets (where the format tells)."""

    path: Path | None
    model: ConfigFileModel
    data: Mapping[str, Any] = field(default_factory=dict)
    """The file as parsed: what it says, and nothing it leaves to the defaults."""
    lines: Mapping[Path_, int] = field(default_factory=dict)

    @classmethod
    def empty(cls) -> ConfigFile:
        return cls(None, ConfigFileModel())

    def where(self, path: Path_) -> str:
        """``FILE:LINE`` of a field (or ``FILE`` when no line is known)."""
        line = _line_of(self.lines, path)
        return f"{self.path}:{line}" if line else str(self.path)

    def says(self, path: Path_) -> bool:
        """Whether the file itself sets the field at ``path`` (an empty mapping, Pkl's default, is not)."""
        value: Any = self.data
        for part in path:
            if not isinstance(value, Mapping) or part not in value:
                return False
            value = value[part]
        return value is not None and value != {}


def locate(home: Path, explicit: str | None, env: Mapping[str, str]) -> Path | None:
    """The configuration file in force: ``--config``, ``$FORMAE_CONFIG``, or one in the home."""
    chosen = explicit or env.get(CONFIG_ENV, "").strip()
    if chosen:
        path = Path(chosen).expanduser()
        if not path.is_file():
            origin = "--config" if explicit else CONFIG_ENV
            raise ConfigFileError([f"{path}: no such configuration file (given by {origin})"])
        return path
    found = [home / name for name in NAMES if (home / name).is_file()]
    if len(found) > 1:
        raise ConfigFileError([f"{found[0]}: {found[1].name} is there too; keep one configuration file"])
    return found[0] if found else None


def read_config(path: Path | None) -> ConfigFile:
    """The validated file at ``path`` (an empty configuration when None)."""
    if path is None:
        return ConfigFile.empty()
    _check_owner_only(path)
    data, lines = _parse(path)
    if not isinstance(data, Mapping):
        raise ConfigFileError([f"{path}: a configuration is an object of sections (api, logging, …)"])
    try:
        model = ConfigFileModel.model_validate(data)
    except ValidationError as error:
        raise ConfigFileError([_problem(path, lines, detail) for detail in error.errors()]) from None
    return ConfigFile(path, model, data, lines)


def _check_owner_only(path: Path) -> None:
    """A file anyone else may write could grant itself every credential of the agent (``plugins``)."""
    info = path.stat()
    if info.st_uid != os.geteuid() or info.st_mode & (stat.S_IWGRP | stat.S_IWOTH):
        raise ConfigFileError(
            [f"{path}: a configuration file must belong to the agent's user and be writable by it alone"]
        )


def _parse(path: Path) -> tuple[Any, dict[Path_, int]]:
    source = str(path)
    try:
        suffix = path.suffix.lower()
        if suffix == ".pkl":
            data = evaluate_pkl(path)
            check_shape(data, source)
            return data, {}
        if suffix not in (".json", ".yaml", ".yml"):
            raise FormaError.single(
                source, f"unsupported file type {suffix!r}: use .pkl, .yaml, .yml or .json"
            )
        text = read_text(path)
        data = _json(source, text) if suffix == ".json" else parse_yaml(source, text)
        check_shape(data, source)
        return data, _key_lines(text)
    except FormaError as error:
        raise ConfigFileError([str(problem) for problem in error.problems]) from None


def _json(source: str, text: str) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError as error:
        raise FormaError.single(source, f"invalid JSON: {error}") from None
    except RecursionError:
        raise FormaError.single(source, "invalid JSON: nested too deep") from None


def _key_lines(text: str) -> dict[Path_, int]:
    """The line of every key, from a round-trip parse (JSON is YAML 1.2); none if that parse fails."""
    try:
        tree = YAML(typ="rt", pure=True).load(text)
    except (YAMLError, RecursionError, ValueError):
        return {}
    lines: dict[Path_, int] = {}
    pending: list[tuple[Path_, Any]] = [((), tree)]
    while pending:
        prefix, node = pending.pop()
        if isinstance(node, CommentedMap):
            for key, value in node.items():
                lines[(*prefix, str(key))] = node.lc.key(key)[0] + 1
                pending.append(((*prefix, str(key)), value))
        elif isinstance(node, CommentedSeq):
            for index, value in enumerate(node):
                lines[(*prefix, index)] = node.lc.item(index)[0] + 1
                pending.append(((*prefix, index), value))
    return lines


def _line_of(lines: Mapping[Path_, int], path: Path_) -> int | None:
    """The line of ``path``, or of its nearest enclosing field that has one."""
    for end in range(len(path), 0, -1):
        if path[:end] in lines:
            return lines[path[:end]]
    return None


def _problem(path: Path, lines: Mapping[Path_, int], detail: ErrorDetails) -> str:
    raw = detail["loc"]
    loc = tuple(part for part in raw if not str(part).startswith("function-") and part != "[key]")
    line = _line_of(lines, loc)
    where = f"{path}:{line}" if line else str(path)
    key = "not a name this section takes: " if "[key]" in raw else ""
    return f"{where}: {_dotted(loc) or '(top level)'}: {key}{_message(detail, loc)}"


def _fields_at(loc: Path_) -> list[str]:
    """The fields of the section at ``loc`` (keys of a mapping such as ``plugins`` are skipped)."""
    model: Any = ConfigFileModel
    skip_key = False
    for part in loc:
        if skip_key:
            skip_key = False
            continue
        if not (isinstance(model, type) and issubclass(model, BaseModel)) or part not in model.model_fields:
            return []
        model, skip_key = _inner(model.model_fields[str(part)].annotation)
    return list(model.model_fields) if isinstance(model, type) and issubclass(model, BaseModel) else []


def _inner(annotation: Any) -> tuple[Any, bool]:
    """The model a field holds (through ``X | None``), and whether it is a mapping of them by key."""
    args = [a for a in get_args(annotation) if a is not type(None)]
    if get_origin(annotation) is dict:
        return args[-1], True
    if args and get_origin(annotation) is not None:
        return _inner(args[0])
    return annotation, False


def _dotted(loc: Path_) -> str:
    text = ""
    for part in loc:
        text += f"[{part}]" if isinstance(part, int) else f".{part}" if text else str(part)
    return text


def _message(detail: ErrorDetails, loc: Path_) -> str:
    kind = detail["type"]
    if kind == "extra_forbidden":
        known = _fields_at(loc[:-1])
        return f"unknown field (expected one of: {', '.join(known)})" if known else "unknown field"
    if kind == "missing":
        return "is required"
    return detail["msg"].removeprefix("Value error, ")

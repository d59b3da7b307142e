"""Read a forma file (JSON, YAML or Pkl) into a validated :class:`~formae.model.Forma`.

Checks that are cheap here but costly later are made up front, and every problem is reported
at once, each naming the file, the resource and the field:

- the shape: ``stacks``, ``targets`` and ``resources`` lists of objects with the right fields;
  formae's Go-style capitalised keys (``Label``, ``Properties`` …) are accepted and normalised;
- resource types of the form ``Namespace::Service::Kind``;
- no two stacks, targets or resources with the same identity;
- **every stack and target that a resource names must be declared in the same forma.** This is
  the simple, explicit rule: a forma says what it reconciles (its stacks) and where resources
  live (its targets), so nothing is implied and a typo in a stack name cannot silently create
  (or, under reconcile, wipe) a stack; a forma with no stacks is only valid without resources;
- a resource's type belongs to the namespace of its target (the plugin that will handle it);
- references are well formed. A reference may name a resource that is not in the forma,
  because it may already be managed by the agent; the planner checks that it exists.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any, Protocol, TypeVar

from pydantic import BaseModel, ValidationError
from pydantic_core import ErrorDetails
from ruamel.yaml import YAML
from ruamel.yaml.error import MarkedYAMLError, YAMLError

from formae.forma.errors import FormaError, Problem
from formae.forma.limits import MAX_TEXT_BYTES, check_shape
from formae.forma.pkl import DEFAULT_TIMEOUT_SECONDS, evaluate_pkl
from formae.model import Forma, Reference, Resource, ResourceKey, ResourceType, Stack, Target
from formae.model.references import REFERENCE_MARKER
from formae.model.text import name_problem, shown, text_problem

_TOP_LEVEL_FIELDS = ("stacks", "targets", "resources")
_STACK_FIELDS = ("label", "description", "policies")
_TARGET_FIELDS = ("label", "namespace", "config")
_RESOURCE_FIELDS = ("label", "type", "stack", "target", "properties")
_JSON_SCALARS = (str, int, float, bool)

_Model = TypeVar("_Model", bound=BaseModel)


class _Labelled(Protocol):
    @property
    def label(self) -> str: ...


def load_forma(path: Path, *, pkl_timeout: float = DEFAULT_TIMEOUT_SECONDS) -> Forma:
    """Load and validate the forma in ``path``; the suffix (.json, .yaml, .yml, .pkl) picks the reader."""
    return forma_from_json(_read(path, pkl_timeout), str(path))


def forma_from_json(data: Any, source: str) -> Forma:
    """Validate a forma already parsed from JSON (as the agent receives it over REST).

    ``source`` names the forma in problems, usually its file name.
    """
    check_shape(data, source)
    return _FormaReader(source).read(data)


def forma_text(path: Path, *, pkl_timeout: float = DEFAULT_TIMEOUT_SECONDS) -> str:
    """The forma in ``path`` as JSON text that parses, not yet validated: what a client sends.

    The agent validates what it receives (:func:`forma_from_json`) with the same problems, so a
    client need not build a model of every resource first: for 100,000 resources that took the
    CLI ~15 s and ~300 MB. A JSON file is only parsed, to name a syntax error here, and sent as
    written; YAML and Pkl are read, YAML checked for alias bombs, and written as JSON.
    """
    source = str(path)
    if path.suffix.lower() != ".json" or not path.is_file():
        data = _read(path, pkl_timeout)
        if path.suffix.lower() in (".yaml", ".yml"):
            check_shape(data, source)  # before anything expands its aliases
        return json.dumps(data, default=_json_default)
    text = read_text(path)
    _parse_json(source, text)
    return text


def _json_default(value: Any) -> Any:
    """YAML's timestamps as the models would have written them (ISO 8601); anything else refused."""
    if hasattr(value, "isoformat"):
        return value.isoformat()
    raise TypeError(f"{type(value).__name__} is not JSON")


def _read(path: Path, pkl_timeout: float) -> Any:
    source = str(path)
    if not path.is_file():
        raise FormaError.single(source, "no such file")
    suffix = path.suffix.lower()
    if suffix == ".pkl":
        return evaluate_pkl(path, timeout=pkl_timeout)
    if suffix == ".json":
        return _parse_json(source, read_text(path))
    if suffix in (".yaml", ".yml"):
        return parse_yaml(source, read_text(path))
    raise FormaError.single(source, f"unsupported forma file type {suffix!r}: use .pkl, .json, .yaml or .yml")


def read_text(path: Path) -> str:
    """The file as UTF-8 text, refused beyond :data:`MAX_TEXT_BYTES` (formas, the agent's configuration)."""
    try:
        with path.open("rb") as file:
            raw = file.read(MAX_TEXT_BYTES + 1)
        if len(raw) > MAX_TEXT_BYTES:
            raise FormaError.single(str(path), f"larger than {MAX_TEXT_BYTES // 2**20} MiB")
        return raw.decode("utf-8")
    except (OSError, UnicodeDecodeError) as error:
        raise FormaError.single(str(path), f"cannot read: {error}") from None


def _parse_json(source: str, text: str) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError as error:
        raise FormaError.single(source, f"invalid JSON: {error}") from None
    except RecursionError:
        raise FormaError.single(source, "invalid JSON: nested too deep") from None


def parse_yaml(source: str, text: str) -> Any:
    """YAML 1.2 (core schema), as Kubernetes and most tools read it: ``NO`` and ``on`` stay strings.

    YAML 1.1 read ``Country: NO`` as false and ``Mode: 0755`` as 493; under 1.2 they are the
    string "NO" and the integer 755 (octal is ``0o755``). Aliases are kept shared while parsing;
    :func:`~formae.forma.limits.check_shape` then refuses documents they would blow up.
    """
    yaml = YAML(typ="safe", pure=True)
    yaml.composer.warn_double_anchors = False  # YAML 1.2 allows it: an alias names the latest anchor
    try:
        return yaml.load(text)
    except YAMLError as error:
        raise FormaError.single(source, f"invalid YAML: {_yaml_problem(error)}") from None
    except RecursionError:
        raise FormaError.single(source, "invalid YAML: nested too deep") from None
    except TypeError:  # ruamel builds a key it cannot hash from a nested complex key (`? - : `)
        raise FormaError.single(source, "invalid YAML: a mapping key is a list or a mapping") from None


def _yaml_problem(error: YAMLError) -> str:
    """Where and what, in one line: the parser's own text quotes the document and links its docs."""
    if isinstance(error, MarkedYAMLError) and error.problem_mark is not None:
        mark = error.problem_mark
        return f"line {mark.line + 1}, column {mark.column + 1}: {error.problem}"
    return str(error).strip()


@dataclass(frozen=True, slots=True)
class _Where:
    """Where a problem sits: a resource label (if known) and the path of the item holding it."""

    resource: str | None
    prefix: str

    def field(self, name: str) -> str:
        return f"{self.prefix}.{name}" if self.prefix and name else self.prefix or name


class _FormaReader:
    """Collects every problem in one forma, so that the user sees them all at once."""

    def __init__(self, source: str) -> None:
        self.source = source
        self.problems: list[Problem] = []

    def read(self, data: Any) -> Forma:
        if not isinstance(data, Mapping):
            raise FormaError.single(
                self.source, "a forma must be an object with stacks, targets and resources"
            )
        top = self._normalise(data, _TOP_LEVEL_FIELDS, _Where(None, ""))
        stacks = self._section(top, "stacks", Stack, _STACK_FIELDS)
        targets = self._section(top, "targets", Target, _TARGET_FIELDS)
        resources = self._section(top, "resources", Resource, _RESOURCE_FIELDS)
        self._check_unique_labels("stacks", stacks)
        self._check_unique_labels("targets", targets)
        for where, target in targets:
            self._check_value(where, None, target.config, "config")
        self._check_resources(resources, {s.label for _, s in stacks}, {t.label: t for _, t in targets})
        if self.problems:
            raise FormaError(self.problems)
        return Forma(stacks=_models(stacks), targets=_models(targets), resources=_models(resources))

    def _add(self, where: _Where, field: str, message: str) -> None:
        self.problems.append(Problem(self.source, where.resource, where.field(field) or None, message))

    def _normalise(self, item: Mapping[Any, Any], fields: tuple[str, ...], where: _Where) -> dict[str, Any]:
        """Map Go-style ``Label`` to ``label``; report keys that are not fields at all."""
        canonical = _canonical(fields)
        normalised: dict[str, Any] = {}
        for key, value in item.items():
            name = canonical.get(key.lower()) if isinstance(key, str) else None
            if name is None:
                self._add(where, str(key), f"unknown field (expected one of: {', '.join(fields)})")
            elif name in normalised:
                self._add(where, name, "given twice, in different capitalisations")
            else:
                normalised[name] = value
        return normalised

    def _section(
        self, top: Mapping[str, Any], name: str, model: type[_Model], fields: tuple[str, ...]
    ) -> list[tuple[_Where, _Model]]:
        """The valid items of one top-level list, each with where it sits in the file."""
        items = top.get(name)
        if items is None:
            return []
        if not isinstance(items, list):
            self._add(_Where(None, name), "", "must be a list")
            return []
        valid = []
        for index, item in enumerate(items):
            where = _where_of(name, index, item)
            parsed = self._validate(model, item, fields, where)
            if parsed is not None:
                valid.append((where, parsed))
        return valid

    def _validate(
        self, model: type[_Model], item: Any, fields: tuple[str, ...], where: _Where
    ) -> _Model | None:
        """Unknown fields are reported and dropped, so the item still takes part in later checks."""
        if not isinstance(item, Mapping):
            self._add(where, "", "must be an object")
            return None
        normalised = self._normalise(item, fields, where)
        try:
            return model.model_validate(normalised)
        except ValidationError as error:
            for detail in error.errors():
                self._add(where, _location(detail["loc"]), _message(detail))
            return None

    def _check_unique_labels(self, section: str, items: Sequence[tuple[_Where, _Labelled]]) -> None:
        seen: set[str] = set()
        for where, item in items:
            if item.label in seen:
                self._add(where, "label", f'"{item.label}" is declared twice in {section}')
            seen.add(item.label)

    def _check_resources(
        self, resources: list[tuple[_Where, Resource]], stacks: set[str], targets: Mapping[str, Target]
    ) -> None:
        seen: set[ResourceKey] = set()
        for where, resource in resources:
            if resource.key in seen:
                self._add(where, "", f'declared twice in stack "{resource.stack}" with type {resource.type}')
            seen.add(resource.key)
            self._check_placement(where, resource, stacks, targets)
            self._check_value(where, resource.key, resource.properties, "properties")

    def _check_placement(
        self, where: _Where, resource: Resource, stacks: set[str], targets: Mapping[str, Target]
    ) -> None:
        if resource.stack not in stacks:
            self._add(where, "stack", f'stack "{resource.stack}" is not declared in the forma\'s stacks')
        target = targets.get(resource.target)
        if target is None:
            self._add(where, "target", f'target "{resource.target}" is not declared in the forma\'s targets')
        elif target.namespace != resource.namespace:
            self._add(
                where,
                "target",
                f'target "{target.label}" is for namespace {target.namespace}, '
                f"but type {resource.type} belongs to namespace {resource.namespace}",
            )

    def _check_value(self, where: _Where, owner: ResourceKey | None, value: Any, path: str) -> None:
        """Every property must be plain JSON that every store can hold, and every reference well formed.

        ``owner`` is None for a target's configuration, where references make no sense.
        """
        if isinstance(value, Mapping):
            if REFERENCE_MARKER in value and owner is not None:
                self._check_reference(where, owner, value, path)
                return
            for key, item in value.items():
                problem = _key_problem(key)
                if problem is not None:
                    self._add(where, path, problem)
                else:
                    self._check_value(where, owner, item, f"{path}.{key}")
        elif isinstance(value, list):
            for index, item in enumerate(value):
                self._check_value(where, owner, item, f"{path}[{index}]")
        elif isinstance(value, str):
            problem = text_problem(value)
            if problem is not None:
                self._add(where, path, problem)
        elif isinstance(value, float) and not math.isfinite(value):
            self._add(where, path, f"{value} is not a JSON number")
        elif value is not None and not isinstance(value, _JSON_SCALARS):
            self._add(where, path, f"a {type(value).__name__} is not a JSON value (quote it in YAML)")

    def _check_reference(self, where: _Where, owner: ResourceKey, raw: Mapping[str, Any], path: str) -> None:
        if raw[REFERENCE_MARKER] is not True:
            self._add(where, path, f"{REFERENCE_MARKER} must be true in a reference")
            return
        try:
            reference = Reference.from_json(raw)
            ResourceType(reference.type)
        except ValueError as error:
            self._add(where, path, str(error))
            return
        if reference.target_key == tuple(owner):
            self._add(where, path, "a resource cannot refer to itself")


@cache
def _canonical(fields: tuple[str, ...]) -> dict[str, str]:
    """Each field by its lower-case spelling (``Label`` and ``label`` are one field)."""
    return {name.lower(): name for name in fields}


def _where_of(section: str, index: int, item: Any) -> _Where:
    """Resources are named by their label when they have one; anything else by its position."""
    label = _label_of(item)
    if section == "resources" and label:
        return _Where(label, "")
    return _Where(None, f"{section}[{index}]")


def _label_of(item: Any) -> str | None:
    if not isinstance(item, Mapping):
        return None
    for key, value in item.items():
        if isinstance(key, str) and key.lower() == "label" and isinstance(value, str) and value:
            return value if name_problem(value) is None else None  # an unprintable one: by position
    return None


def _key_problem(key: Any) -> str | None:
    if not isinstance(key, str):
        return f"key {key!r} must be a string"
    problem = name_problem(key)
    return None if problem is None else f'key "{shown(key)}" {problem}'


def _location(loc: Iterable[int | str]) -> str:
    text = ""
    for part in loc:
        text += f"[{part}]" if isinstance(part, int) else f".{part}" if text else str(part)
    return text


def _message(detail: ErrorDetails) -> str:
    if detail["type"] == "missing":
        return "is required"
    if detail["type"] == "string_unicode":  # pydantic's words for a lone surrogate
        return "contains a lone UTF-16 surrogate, which cannot be stored"
    return detail["msg"].removeprefix("Value error, ")


def _models(items: list[tuple[_Where, _Model]]) -> list[_Model]:
    return [item for _, item in items]

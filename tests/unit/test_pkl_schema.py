"""Typed Pkl: the generated modules are current; pkl eval refuses what schemas refuse, at file and line."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from formae_aws import AWSPlugin
from formae_fake_aws import FakeAWSPlugin
from formae_postgres import PostgresPlugin

from formae.forma import FormaError, load_forma
from formae.forma.pkl import find_pkl
from formae.plugin import ResourcePlugin, ResourceSchema
from formae.schema import BASE_MODULE, pkl_module

pytestmark = pytest.mark.timeout(60)

REPO = Path(__file__).resolve().parents[2]
MODULES: dict[str, tuple[ResourcePlugin, Path]] = {
    "PostgreSQL": (PostgresPlugin(), REPO / "plugins" / "postgres" / "pkl" / "PostgreSQL.pkl"),
    "FakeAWS": (FakeAWSPlugin(), REPO / "plugins" / "fake_aws" / "pkl" / "FakeAWS.pkl"),
    "AWS": (AWSPlugin(), REPO / "plugins" / "aws" / "pkl" / "AWS.pkl"),
}


@pytest.fixture(scope="module")
def pkl_binary() -> str:
    try:
        return find_pkl("tests")
    except FormaError as error:
        if os.environ.get("CI"):
            pytest.fail(f"pkl is required in CI: {error}")
        pytest.skip(f"pkl not installed (run .ci/install-pkl): {error}")


def generated(namespace: str) -> str:
    plugin, path = MODULES[namespace]
    base = os.path.relpath(BASE_MODULE, path.parent)
    return pkl_module(namespace, plugin.schemas(), base, f"{plugin.name} {plugin.version}")


@pytest.mark.parametrize("namespace", sorted(MODULES))
def test_checked_in_modules_match_what_the_plugins_announce(namespace: str) -> None:
    plugin, path = MODULES[namespace]
    executable = f"$(command -v {plugin.name}-plugin)"
    regenerate = f"formae schema pkl {namespace} --plugin {executable} -o {path.relative_to(REPO)}"
    assert path.read_text() == generated(namespace), f"{path} is stale: run `{regenerate}`"


def example_in(tmp_path: Path, name: str, change: tuple[str, str] | None = None) -> Path:
    """A copy of an example whose imports still resolve, with one line changed."""
    text = (REPO / "examples" / name).read_text().replace('"../', f'"{REPO}/')
    if change is not None:
        assert change[0] in text
        text = text.replace(change[0], change[1])
    path = tmp_path / name
    path.write_text(text)
    return path


def line_of(path: Path, needle: str) -> int:
    return next(i for i, line in enumerate(path.read_text().splitlines(), 1) if needle in line)


def test_the_typed_examples_load(pkl_binary: str, tmp_path: Path) -> None:
    forma = load_forma(example_in(tmp_path, "postgres.pkl"))
    app = next(r for r in forma.resources if r.label == "app")
    assert app.type == "PostgreSQL::Role"
    assert app.properties["Password"] == {"$value": "change-me", "$visibility": "Opaque"}
    assert "Superuser" not in app.properties, "unset optional properties are left out"
    assert load_forma(REPO / "examples" / "network.pkl") == load_forma(REPO / "examples" / "network.json")


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (("ConnectionLimit = 10", "ConnectionLimt = 10"), r"Cannot find property `ConnectionLimt`"),
        (('ObjectType = "table"', 'ObjectType = "tabel"'), r'Expected value of type `"table"\|"sequence"'),
        (("ConnectionLimit = 10", "ConnectionLimit = -5"), r"Type constraint `this >= -1` violated"),
        (('properties { Name = "\\(prefix)readers" }', "properties {}"), r"`Name`"),
    ],
    ids=["misspelt", "enum", "bound", "required"],
)
def test_pkl_eval_refuses_what_the_schema_refuses_naming_file_and_line(
    pkl_binary: str, tmp_path: Path, change: tuple[str, str], message: str
) -> None:
    path = example_in(tmp_path, "postgres.pkl", change)

    with pytest.raises(FormaError) as caught:
        load_forma(path)

    text = str(caught.value)
    assert re.search(message, text), text
    if change[1] != "properties {}":
        assert f"(file://{path}, line {line_of(path, change[1])})" in text, text


def test_references_are_typed(pkl_binary: str, tmp_path: Path) -> None:
    path = example_in(tmp_path, "postgres.pkl", ('Owner = owner.ref("Name")', 'Owner = owner.ref("Nmae")'))

    with pytest.raises(FormaError, match=r'Expected value of type `("\w+"\|?)+`, but got `"Nmae"`'):
        load_forma(path)


def test_every_generated_module_is_valid_pkl(pkl_binary: str, tmp_path: Path) -> None:
    imports = "\n".join(f'import "{path}"' for _, path in MODULES.values())
    forma = tmp_path / "all.pkl"
    forma.write_text(f'amends "{BASE_MODULE}"\n{imports}\n')
    done = subprocess.run(
        [pkl_binary, "eval", "-f", "json", str(forma)], capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stderr


def test_the_generator_covers_json_schema(pkl_binary: str, tmp_path: Path) -> None:
    schema = ResourceSchema(
        "Ns::Svc::Kind",
        "Id",
        create_only=("Name",),
        read_only=("Id",),
        json_schema={
            "type": "object",
            "properties": {
                "Name": {"type": "string", "pattern": '^[a-z"#]+$'},
                "Id": {"type": "string"},
                "Size": {"type": ["integer", "string"]},
                "Days": {"enum": [1, 7, 30]},
                "Tags": {
                    "oneOf": [
                        {"type": "object", "additionalProperties": {"type": "string"}},
                        {
                            "type": "array",
                            "items": {"type": "object", "properties": {"Key": {"type": "string"}}},
                        },
                    ]
                },
                "Rule": {
                    "type": "object",
                    "properties": {"Days": {"type": "integer", "maximum": 30}},
                    "required": ["Days"],
                },
                "class": {"type": "boolean"},
            },
            "required": ["Name"],
        },
    )
    (tmp_path / "Ns.pkl").write_text(pkl_module("Ns", [schema], str(BASE_MODULE)))
    forma = tmp_path / "f.pkl"
    forma.write_text(
        f'amends "{BASE_MODULE}"\nimport "Ns.pkl" as ns\n'
        'resources { new ns.Kind { label = "k"; stack = "s"; target = "t"\n'
        '  properties { Name = "a#b"; Size = "big"; Days = 7; Tags = new Mapping { ["env"] = "dev" }\n'
        "    Rule { Days = 7 }; `class` = true } } }\n"
    )
    done = subprocess.run(
        [pkl_binary, "eval", "-f", "json", str(forma)], capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stderr
    assert '"Days": 7' in done.stdout


def test_the_cli_generates_from_an_installed_plugin(tmp_path: Path) -> None:
    home = tmp_path / "home"
    env = {**os.environ, "FORMAE_HOME": str(home)}
    postgres_plugin = Path(sys.executable).parent / "postgres-plugin"
    install = [sys.executable, "-m", "formae", "plugin", "install", str(postgres_plugin), "--home", str(home)]
    assert subprocess.run(install, env=env, capture_output=True, check=False, timeout=60).returncode == 0
    out = tmp_path / "pkl" / "PostgreSQL.pkl"

    command = [
        sys.executable,
        "-m",
        "formae",
        "schema",
        "pkl",
        "PostgreSQL",
        "--home",
        str(home),
        "-o",
        str(out),
    ]
    done = subprocess.run(command, env=env, capture_output=True, text=True, check=False, timeout=60)

    assert done.returncode == 0, done.stderr
    plugin, _ = MODULES["PostgreSQL"]
    expected = pkl_module(
        "PostgreSQL", plugin.schemas(), os.path.relpath(BASE_MODULE, out.parent), "postgres 0.1.0"
    )
    assert out.read_text() == expected
    missing = [sys.executable, "-m", "formae", "schema", "pkl", "Nope", "--home", str(home)]
    refused = subprocess.run(missing, env=env, capture_output=True, text=True, check=False, timeout=60)
    assert refused.returncode == 1
    assert "no plugin serving Nope is installed" in refused.stderr

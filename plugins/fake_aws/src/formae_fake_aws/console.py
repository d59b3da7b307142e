"""``fake-aws-cloud``: change the fake cloud behind the agent's back, as someone with a cloud console would.

Tests and demos need out-of-band changes — a bucket deleted by hand, a tag edited, a VPC nobody
manages — to show what sync, drift and discovery do about them. Every command opens the same
SQLite file the plugin replicas share (``--state-file``, else ``FAKE_AWS_STATE_FILE``, else the
plugin's default) and prints JSON, so a script can read the answer::

    fake-aws-cloud list [--type FakeAWS::S3::Bucket]
    fake-aws-cloud get ID
    fake-aws-cloud create TYPE '{"BucketName": "b"}'         # prints the new resource
    fake-aws-cloud update ID '{"Tags": {"env": "prod"}}'     # merged; a null removes a key; --replace
    fake-aws-cloud delete ID

Exit codes: 0 done, 1 no such resource (or the id is taken), 2 bad usage.
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any, NoReturn

from formae_fake_aws.cloud import CloudResource, NativeIdTaken, SqliteCloud, state_file
from formae_fake_aws.plugin import kind_of

EXIT_MISSING = 1
EXIT_USAGE = 2


def main(argv: Sequence[str] | None = None) -> None:
    args = _parser().parse_args(argv)
    path = Path(args.state_file) if args.state_file else state_file(os.environ)
    if path is None:
        _exit("the cloud is in memory (FAKE_AWS_STATE_FILE=:memory:): there is no file to change", EXIT_USAGE)
    path.parent.mkdir(parents=True, exist_ok=True)
    cloud = SqliteCloud(path)
    try:
        result = args.run(cloud, args)
    finally:
        cloud.close()
    print(json.dumps(result, indent=2, sort_keys=True))


def _list(cloud: SqliteCloud, args: argparse.Namespace) -> list[dict[str, Any]]:
    found = cloud.of_type(args.type) if args.type else list(cloud.resources.values())
    return [_shown(r) for r in sorted(found, key=lambda r: (r.type, r.native_id))]


def _get(cloud: SqliteCloud, args: argparse.Namespace) -> dict[str, Any]:
    return _shown(_existing(cloud, args.id))


def _create(cloud: SqliteCloud, args: argparse.Namespace) -> dict[str, Any]:
    kind = kind_of(args.type)
    if kind is None:
        _exit(f"fake-aws does not serve {args.type}", EXIT_USAGE)
    properties = _properties(args.properties)
    identifier = kind.schema.identifier
    native_id = str(properties.get(identifier) or "") or (
        f"{kind.id_prefix}{secrets.token_hex(9)[:17]}" if kind.id_prefix else ""
    )
    if not native_id:
        _exit(f"{args.type} needs {identifier}", EXIT_USAGE)
    resource = CloudResource(args.type, native_id, {**properties, identifier: native_id})
    try:
        cloud.create(resource, "", None)
    except NativeIdTaken as taken:
        _exit(str(taken), EXIT_MISSING)
    return _shown(resource)


def _update(cloud: SqliteCloud, args: argparse.Namespace) -> dict[str, Any]:
    resource = _existing(cloud, args.id)
    changes = _properties(args.properties)
    merged = dict(changes) if args.replace else {**resource.properties, **changes}
    kind = kind_of(resource.type)
    if kind is not None:  # the identifier is the resource's name: it cannot change in place
        merged[kind.schema.identifier] = resource.native_id
    kept = {name: value for name, value in merged.items() if value is not None}
    updated = CloudResource(resource.type, resource.native_id, kept)
    if not cloud.update(updated, None):
        _exit(f"no resource {args.id!r}", EXIT_MISSING)
    return _shown(updated)


def _delete(cloud: SqliteCloud, args: argparse.Namespace) -> dict[str, Any]:
    resource = _existing(cloud, args.id)
    if not cloud.remove(resource.native_id, None):
        _exit(f"no resource {args.id!r}", EXIT_MISSING)
    return {"deleted": _shown(resource)}


def _existing(cloud: SqliteCloud, native_id: str) -> CloudResource:
    resource = cloud.get(native_id)
    if resource is None:
        _exit(f"no resource {native_id!r}", EXIT_MISSING)
    return resource


def _properties(text: str) -> dict[str, Any]:
    try:
        value = json.loads(text)
    except ValueError as error:
        _exit(f"properties must be a JSON object: {error}", EXIT_USAGE)
    if not isinstance(value, dict):
        _exit("properties must be a JSON object", EXIT_USAGE)
    return value


def _shown(resource: CloudResource) -> dict[str, Any]:
    return {"type": resource.type, "native_id": resource.native_id, "properties": resource.properties}


def _exit(message: str, code: int) -> NoReturn:
    print(f"fake-aws-cloud: {message}", file=sys.stderr)
    raise SystemExit(code)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="fake-aws-cloud", description=__doc__.split("\n\n")[0])
    parser.add_argument("--state-file", help="the cloud's SQLite file [env FAKE_AWS_STATE_FILE]")
    commands = parser.add_subparsers(required=True, metavar="COMMAND")
    listing = commands.add_parser("list", help="every resource, or those of one --type")
    listing.add_argument("--type")
    listing.set_defaults(run=_list)
    get = commands.add_parser("get", help="one resource")
    get.add_argument("id")
    get.set_defaults(run=_get)
    create = commands.add_parser("create", help="a resource no agent asked for")
    create.add_argument("type")
    create.add_argument("properties", nargs="?", default="{}")
    create.set_defaults(run=_create)
    update = commands.add_parser("update", help="change properties (merged; null removes a key)")
    update.add_argument("id")
    update.add_argument("properties")
    update.add_argument("--replace", action="store_true", help="replace the properties instead of merging")
    update.set_defaults(run=_update)
    delete = commands.add_parser("delete", help="delete a resource")
    delete.add_argument("id")
    delete.set_defaults(run=_delete)
    return parser


if __name__ == "__main__":
    main()

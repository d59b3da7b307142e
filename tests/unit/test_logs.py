"""Log lines: JSON objects one per line, and the context bound where work runs on every line inside it."""

from __future__ import annotations

import asyncio
import io
import json
import logging
from collections.abc import Iterator
from pathlib import Path

import pytest

from formae.logs import JsonFormatter, TextFormatter, bound, configure_logging, current_fields, set_level
from formae.logs.context import ContextFilter

pytestmark = pytest.mark.timeout(10)


@pytest.fixture
def captured() -> Iterator[tuple[logging.Logger, io.StringIO, logging.StreamHandler[io.StringIO]]]:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.addFilter(ContextFilter())
    logger = logging.getLogger("formae.test.logs")
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG)
    logger.propagate = False
    yield logger, stream, handler
    logger.removeHandler(handler)


def test_json_lines_carry_the_bound_fields_and_parse_one_by_one(captured) -> None:  # type: ignore[no-untyped-def]
    logger, stream, handler = captured
    handler.setFormatter(JsonFormatter())

    with bound(command_id="c1"):
        logger.info("planned %d updates", 3)
        with bound(resource="net/vpc", namespace="FakeAWS"):
            logger.warning("retrying\nafter Throttling")
    logger.info("outside")

    entries = [json.loads(line) for line in stream.getvalue().splitlines()]
    assert [e["message"] for e in entries] == ["planned 3 updates", "retrying\nafter Throttling", "outside"]
    assert entries[0]["command_id"] == "c1"
    assert "resource" not in entries[0]
    assert entries[1] | {"time": "t"} == {
        "time": "t",
        "level": "warning",
        "logger": "formae.test.logs",
        "message": "retrying\nafter Throttling",
        "command_id": "c1",
        "resource": "net/vpc",
        "namespace": "FakeAWS",
    }
    assert "command_id" not in entries[2]


def test_an_exception_is_one_field_of_one_line(captured) -> None:  # type: ignore[no-untyped-def]
    logger, stream, handler = captured
    handler.setFormatter(JsonFormatter())
    try:
        raise ValueError("boom")
    except ValueError:
        logger.exception("failed")

    (line,) = stream.getvalue().splitlines()
    assert "ValueError: boom" in json.loads(line)["exception"]


def test_text_lines_append_the_fields_the_message_does_not_already_say(captured) -> None:  # type: ignore[no-untyped-def]
    logger, stream, handler = captured
    handler.setFormatter(TextFormatter())

    with bound(command_id="c1", namespace="FakeAWS"):
        logger.info("Plugin registered namespace=FakeAWS node=n")

    assert stream.getvalue().rstrip().endswith("Plugin registered namespace=FakeAWS node=n command_id=c1")


async def test_tasks_inherit_the_fields_bound_when_they_were_created_and_keep_their_own() -> None:
    seen: dict[str, dict[str, str]] = {}

    async def update(key: str) -> None:
        with bound(resource=key):
            await asyncio.sleep(0)
            seen[key] = dict(current_fields())

    with bound(command_id="c9"):
        async with asyncio.TaskGroup() as group:
            for key in ("a", "b"):
                group.create_task(update(key))

    assert seen == {"a": {"command_id": "c9", "resource": "a"}, "b": {"command_id": "c9", "resource": "b"}}
    assert current_fields() == {}


def test_only_known_fields_are_bound() -> None:
    with pytest.raises(ValueError, match="not a log context field: colour"), bound(colour="red"):
        pass


def test_the_file_is_rotated_at_its_size_and_the_level_changes_live(tmp_path: Path) -> None:
    root = logging.getLogger()
    saved = root.handlers[:], root.level
    try:
        configure_logging("info", tmp_path / "agent.log", format="json", max_bytes=4096, backups=2)
        log = logging.getLogger("formae.test.rotation")
        log.debug("hidden")
        for number in range(200):
            log.info("line %d %s", number, "x" * 40)
        set_level("debug")
        log.debug("shown")
        for handler in root.handlers:
            handler.flush()
    finally:
        for handler in root.handlers:
            handler.close()
        root.handlers[:], root.level = saved
        logging.captureWarnings(False)

    files = sorted(p.name for p in tmp_path.iterdir())
    assert files == ["agent.log", "agent.log.1", "agent.log.2"]
    assert all(p.stat().st_size <= 4096 for p in tmp_path.iterdir())
    lines = [json.loads(line) for line in (tmp_path / "agent.log").read_text().splitlines()]
    assert lines[-1]["message"] == "shown"
    assert not any(line["message"] == "hidden" for line in lines)

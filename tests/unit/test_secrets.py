"""Secrets without an agent: the key file, sealing and its reuse, the gate to plugins, redaction, masking."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import pytest

from formae.agent.plugin_secrets import SecretGate
from formae.model import Operation
from formae.secrets import (
    MASK,
    KeyringError,
    RedactingFilter,
    Redactor,
    SecretError,
    SecretKeyring,
    mask,
    seal_forma,
)
from formae.wire.types import CreateRequest, ProgressResult, TargetInfo, UpdateRequest


def opaque(value: Any, **extra: str) -> dict[str, Any]:
    return {"$value": value, "$visibility": "Opaque", **extra}


@pytest.fixture
def keyring(tmp_path: Path) -> SecretKeyring:
    return SecretKeyring.load_or_create(tmp_path / "secrets.key")


def test_the_key_file_is_private_and_sealing_round_trips(keyring: SecretKeyring, tmp_path: Path) -> None:
    assert (tmp_path / "secrets.key").stat().st_mode & 0o777 == 0o600
    sealed = keyring.seal("hunter22")
    assert "hunter22" not in str(sealed)
    assert keyring.unseal(sealed) == "hunter22"
    assert keyring.seal("hunter22") == sealed  # deterministic: equal secrets compare equal
    assert SecretKeyring.load_or_create(tmp_path / "secrets.key").unseal(sealed) == "hunter22"


def test_rotation_keeps_old_values_readable_and_hashes_stable(keyring: SecretKeyring) -> None:
    old = keyring.seal("hunter22")
    assert keyring.rotate() == "k2"
    new = keyring.seal("hunter22")
    assert new["$sealed"].startswith("k2:")
    assert new["$hash"] == old["$hash"]
    assert keyring.unseal(old) == "hunter22"


def test_a_forged_or_foreign_sealed_value_does_not_open(keyring: SecretKeyring) -> None:
    sealed = keyring.seal("hunter22")
    with pytest.raises(KeyringError, match="damaged or forged"):
        keyring.unseal({**sealed, "$sealed": sealed["$sealed"][:-6] + "AAAA=="})
    with pytest.raises(KeyringError, match="does not hold"):
        keyring.unseal({**sealed, "$sealed": "k9:" + sealed["$sealed"][3:]})


def _forma(properties: dict[str, Any], config: dict[str, Any] | None = None) -> dict[str, Any]:
    return {
        "targets": [{"label": "t", "namespace": "N", "config": config or {}}],
        "resources": [
            {"label": "r", "type": "N::S::K", "stack": "s", "target": "t", "properties": properties}
        ],
    }


def test_sealing_reuses_an_unchanged_secret_and_not_a_changed_one(keyring: SecretKeyring) -> None:
    redactor = Redactor()
    first = seal_forma(_forma({"P": opaque("one-secret")}), keyring, redactor, {}, {}, {})
    stored = first["resources"][0]["properties"]
    keyring.rotate()
    key = ("s", "N::S::K", "r")
    again = seal_forma(_forma({"P": opaque("one-secret")}), keyring, redactor, {}, {key: stored}, {})
    assert again["resources"][0]["properties"] == stored
    changed = seal_forma(_forma({"P": opaque("two-secret")}), keyring, redactor, {}, {key: stored}, {})
    assert changed["resources"][0]["properties"]["P"]["$hash"] != stored["P"]["$hash"]
    once = seal_forma(
        _forma({"P": opaque("two-secret", **{"$strategy": "SetOnce"})}),
        keyring,
        redactor,
        {},
        {key: stored},
        {},
    )
    assert once["resources"][0]["properties"]["P"] == stored["P"]
    assert redactor.redact("one-secret two-secret") == f"{MASK} {MASK}"


def test_references_are_resolved_by_the_agent(keyring: SecretKeyring, tmp_path: Path) -> None:
    (tmp_path / "key").write_text("from-a-file\n")
    document = _forma({"E": {"$secret": {"env": "PW"}}}, {"F": {"$secret": {"file": str(tmp_path / "key")}}})
    sealed = seal_forma(document, keyring, Redactor(), {"PW": "from-env"}, {}, {})
    assert keyring.unseal(sealed["resources"][0]["properties"]["E"]) == "from-env"
    assert keyring.unseal(sealed["targets"][0]["config"]["F"]) == "from-a-file"
    with pytest.raises(SecretError, match="no variable PW"):
        seal_forma(document, keyring, Redactor(), {}, {}, {})


def test_the_gate_reveals_to_the_plugin_and_conceals_its_answer(keyring: SecretKeyring) -> None:
    gate = SecretGate(keyring, Redactor())
    sealed = keyring.seal("s3cr3t-value")
    target = TargetInfo("t", "N", {"Key": keyring.seal("target-key")})
    request = CreateRequest("N::S::K", "r", {"P": sealed, "Q": 1}, target)
    sent, revealed = gate.reveal(request)
    assert isinstance(sent, CreateRequest)
    assert sent.properties == {"P": opaque("s3cr3t-value"), "Q": 1}
    assert sent.target.config == {"Key": opaque("target-key")}
    answer = ProgressResult.failure(Operation.CREATE, None, "bad P 's3cr3t-value'")  # type: ignore[arg-type]
    answer = ProgressResult(
        Operation.CREATE, answer.status, properties={"P": opaque("s3cr3t-value"), "Echo": "s3cr3t-value"},
        message="bad P 's3cr3t-value'",
    )  # fmt: skip
    concealed = gate.conceal(answer, revealed)
    assert isinstance(concealed, ProgressResult)
    assert concealed.properties == {"P": sealed, "Echo": sealed}
    assert concealed.message == f"bad P '{MASK}'"


def test_set_once_secrets_are_left_out_of_updates(keyring: SecretKeyring) -> None:
    gate = SecretGate(keyring, Redactor())
    once = keyring.seal("first-only", set_once=True)
    update = UpdateRequest(
        "N::S::K", "id", {"P": once, "A": 1}, {"P": once, "A": 2}, [], TargetInfo("t", "N")
    )
    sent, _ = gate.reveal(update)
    assert isinstance(sent, UpdateRequest)
    assert sent.desired_properties == {"A": 2}
    assert sent.prior_properties == {"A": 1}


def test_masking_and_log_redaction(keyring: SecretKeyring, caplog: pytest.LogCaptureFixture) -> None:
    document = {"a": [keyring.seal("x-secret")], "b": opaque("y"), "c": {"$secret": {"env": "E"}}, "d": "ok"}
    assert mask(document) == {"a": [MASK], "b": MASK, "c": MASK, "d": "ok"}
    redactor = Redactor()
    redactor.learn("leaky-value")
    logger = logging.getLogger("test.redaction")
    handler = logging.Handler()
    seen: list[str] = []
    handler.emit = lambda record: seen.append(record.getMessage())  # type: ignore[method-assign]
    handler.addFilter(RedactingFilter(redactor))
    logger.addHandler(handler)
    try:
        logger.warning("plugin said %s", "leaky-value!")
    finally:
        logger.removeHandler(handler)
    assert seen == [f"plugin said {MASK}!"]

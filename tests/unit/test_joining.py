"""JoinService: tokens in, certificates out; a token's lifetime runs on the service's clock."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from formae.agent.joining import JoinService
from formae.agent.pki import CertificateAuthority
from formae.store import Datastore
from formae.wire import certificates
from formae.wire.join import JoinAsk
from formae.wire.transport import JoinDenied

pytestmark = pytest.mark.timeout(10)


def ask(token_id: str, secret: str) -> JoinAsk:
    request = certificates.certificate_request(certificates.new_private_key(), "aws@host")
    return JoinAsk(token_id, secret, request, "aws@host", "ipv4:10.0.0.7:5000")


async def test_a_token_used_after_its_lifetime_is_refused_naming_when_it_expired(
    store: Datastore, tmp_path: Path
) -> None:
    created = datetime.now(UTC) - timedelta(hours=2)  # the clock says the token was made two hours ago
    joins = JoinService(
        store, CertificateAuthority.load_or_create(tmp_path / "pki"), "c", "h:1", clock=lambda: created
    )
    token, _ = await joins.create_token(["AWS"], ttl=timedelta(hours=1))

    expired = (created + timedelta(hours=1)).isoformat(timespec="seconds")
    with pytest.raises(JoinDenied, match=re.escape(f"join token {token.token_id} expired at {expired}")):
        await joins.join(ask(token.token_id, token.secret))


async def test_a_token_within_its_lifetime_joins_once(store: Datastore, tmp_path: Path) -> None:
    created = datetime.now(UTC) - timedelta(minutes=59)
    joins = JoinService(
        store, CertificateAuthority.load_or_create(tmp_path / "pki"), "c", "h:1", clock=lambda: created
    )
    token, _ = await joins.create_token(["AWS"], ttl=timedelta(hours=1))

    grant = await joins.join(ask(token.token_id, token.secret))

    assert certificates.namespaces_of(grant.certificate) == frozenset({"AWS"})
    with pytest.raises(JoinDenied, match="was already used"):
        await joins.join(ask(token.token_id, token.secret))

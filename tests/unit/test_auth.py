"""The handshake's proofs of the network cookie, and protocol version negotiation."""

from __future__ import annotations

import pytest

from formae.wire import PROTOCOL_VERSIONS, auth

pytestmark = pytest.mark.timeout(10)

COOKIE = "s3cret-cookie"


@pytest.fixture
def nonces() -> tuple[bytes, bytes]:
    return auth.new_nonce(), auth.new_nonce()


def test_nonces_are_fresh_and_full_length() -> None:
    first, second = auth.new_nonce(), auth.new_nonce()
    assert len(first) == len(second) == auth.NONCE_BYTES == 32
    assert first != second


def test_proofs_verify_with_the_same_cookie(nonces: tuple[bytes, bytes]) -> None:
    agent_nonce, plugin_nonce = nonces
    assert auth.verify(
        auth.plugin_proof(COOKIE, agent_nonce, plugin_nonce), auth.plugin_proof(COOKIE, *nonces)
    )
    assert auth.verify(auth.agent_proof(COOKIE, agent_nonce, plugin_nonce), auth.agent_proof(COOKIE, *nonces))
    assert len(auth.plugin_proof(COOKIE, *nonces)) == 32  # HMAC-SHA256


def test_proofs_differ_by_role_so_one_cannot_be_reflected(nonces: tuple[bytes, bytes]) -> None:
    plugin = auth.plugin_proof(COOKIE, *nonces)
    agent = auth.agent_proof(COOKIE, *nonces)
    assert plugin != agent
    assert not auth.verify(plugin, agent)


def test_a_wrong_cookie_fails(nonces: tuple[bytes, bytes]) -> None:
    expected = auth.plugin_proof(COOKIE, *nonces)
    assert not auth.verify(expected, auth.plugin_proof("wrong-cookie", *nonces))
    assert not auth.verify(expected, auth.plugin_proof(COOKIE + " ", *nonces))
    assert not auth.verify(expected, b"")


def test_a_proof_is_bound_to_both_nonces(nonces: tuple[bytes, bytes]) -> None:
    agent_nonce, plugin_nonce = nonces
    expected = auth.plugin_proof(COOKIE, agent_nonce, plugin_nonce)
    assert not auth.verify(expected, auth.plugin_proof(COOKIE, auth.new_nonce(), plugin_nonce))
    assert not auth.verify(expected, auth.plugin_proof(COOKIE, agent_nonce, auth.new_nonce()))
    assert not auth.verify(expected, auth.plugin_proof(COOKIE, plugin_nonce, agent_nonce))


def test_the_cookie_never_appears_in_a_proof(nonces: tuple[bytes, bytes]) -> None:
    assert COOKIE.encode() not in auth.plugin_proof(COOKIE, *nonces) + auth.agent_proof(COOKIE, *nonces)


@pytest.mark.parametrize(
    ("ours", "theirs", "chosen"),
    [
        ((1,), (1,), 1),
        ((1, 2, 3), (2, 3, 4), 3),
        ((3, 1, 2), (2, 1), 2),
        ((1, 2), (2,), 2),
        ((1,), (2, 3), None),
        ((1,), (), None),
        ((), (), None),
    ],
)
def test_negotiate_picks_the_highest_common_version(
    ours: tuple[int, ...], theirs: tuple[int, ...], chosen: int | None
) -> None:
    assert auth.negotiate(ours, theirs) == chosen
    assert auth.negotiate(theirs, ours) == chosen


def test_this_build_speaks_version_one() -> None:
    assert PROTOCOL_VERSIONS == (1,)
    assert auth.negotiate(PROTOCOL_VERSIONS, PROTOCOL_VERSIONS) == 1

"""Renewal of joined plugins' certificates: what the agent's CA issues, when, and what the SDK keeps."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization

from formae.agent.node_claims import Claimant, Location, NodeClaimRefused, check_claim, fingerprint
from formae.agent.pki import CertificateAuthority, PkiError
from formae.agent.renewal import CertificateRenewer
from formae.plugin.identity import GrantStore, IdentityKeeper
from formae.wire import certificates
from formae.wire.frames import CertificateRenewal
from formae.wire.join import JoinGrant
from formae.wire.transport import StreamClosed

pytestmark = pytest.mark.timeout(10)

VALIDITY = dt.timedelta(hours=3)


@pytest.fixture
def authority(tmp_path: Path) -> CertificateAuthority:
    return CertificateAuthority.load_or_create(tmp_path / "pki")


def joined(authority: CertificateAuthority, validity: dt.timedelta = VALIDITY) -> tuple[bytes, bytes]:
    """A joined plugin's key and certificate, as ``Join`` grants them."""
    key = certificates.new_private_key()
    request = certificates.certificate_request(key, "aws@host")
    return certificates.key_to_pem(key), authority.sign_plugin_request(request, frozenset({"AWS"}), validity)


def spki(certificate_pem: bytes) -> bytes:
    return (
        x509.load_pem_x509_certificate(certificate_pem)
        .public_key()
        .public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    )


def expiry(certificate_pem: bytes) -> dt.datetime:
    return x509.load_pem_x509_certificate(certificate_pem).not_valid_after_utc


# ---------------------------------------------------------------- the agent's CA


def test_a_renewal_keeps_key_subject_and_namespaces_with_a_fresh_validity(
    authority: CertificateAuthority,
) -> None:
    _, old = joined(authority, dt.timedelta(seconds=30))

    new = authority.renew_plugin_certificate(old, VALIDITY)

    assert spki(new) == spki(old)
    assert certificates.namespaces_of(new) == frozenset({"AWS"})
    assert x509.load_pem_x509_certificate(new).subject == x509.load_pem_x509_certificate(old).subject
    left = expiry(new) - dt.datetime.now(dt.UTC)
    assert VALIDITY - dt.timedelta(seconds=30) < left <= VALIDITY
    x509.load_pem_x509_certificate(new).verify_directly_issued_by(authority.certificate)


def test_only_certificates_of_this_ca_are_renewed(tmp_path: Path, authority: CertificateAuthority) -> None:
    other = CertificateAuthority.load_or_create(tmp_path / "other-pki")
    _, foreign = joined(other)

    with pytest.raises(PkiError, match="not a plugin certificate of this agent's CA"):
        authority.renew_plugin_certificate(foreign, VALIDITY)


def test_a_renewed_certificate_keeps_its_plugins_node_name_and_no_other_key_gets_it(
    authority: CertificateAuthority,
) -> None:
    _, old = joined(authority)
    holder = Claimant("AWS", Location.REMOTE, fingerprint(old))
    renewed = Claimant("AWS", Location.REMOTE, fingerprint(authority.renew_plugin_certificate(old, VALIDITY)))
    other = Claimant("AWS", Location.REMOTE, fingerprint(joined(authority)[1]))

    check_claim("aws@host", renewed, holder, spawned_here=False)
    with pytest.raises(NodeClaimRefused, match="is bound to the plugin that registered it first"):
        check_claim("aws@host", other, holder, spawned_here=False)


# ---------------------------------------------------------------- when the agent renews


class Link:
    """What a renewer sends on, with a sleep that records its delays and lets ``renewals`` renewals happen."""

    def __init__(self, renewals: int) -> None:
        self.delays: list[float] = []
        self.sent: list[CertificateRenewal] = []
        self._renewals = renewals

    async def sleep(self, seconds: float) -> None:
        self.delays.append(seconds)

    async def send(self, frame: CertificateRenewal) -> None:
        if len(self.sent) == self._renewals:
            raise StreamClosed("the plugin hung up")
        self.sent.append(frame)


async def test_the_renewer_renews_when_a_third_of_the_validity_is_left_again_and_again(
    authority: CertificateAuthority,
) -> None:
    _, first = joined(authority)
    link = Link(renewals=3)

    await CertificateRenewer(authority, VALIDITY, sleep=link.sleep).serve(link.send, first, "aws@host")

    two_thirds = (VALIDITY * 2 / 3).total_seconds()
    assert len(link.sent) == 3
    assert [round(d / two_thirds, 2) for d in link.delays] == [1.0] * 4  # the fourth send found it closed
    renewed = [frame.certificate for frame in link.sent]
    assert len({first, *renewed}) == 4
    assert {spki(c) for c in renewed} == {spki(first)}


async def test_a_certificate_already_past_its_renewal_time_is_renewed_at_once(
    authority: CertificateAuthority,
) -> None:
    _, short = joined(authority, dt.timedelta(seconds=60))  # issued before the agent's validity was raised
    link = Link(renewals=1)

    await CertificateRenewer(authority, VALIDITY, sleep=link.sleep).serve(link.send, short, "aws@host")

    assert link.delays[0] == 0.0
    assert expiry(link.sent[0].certificate) - dt.datetime.now(dt.UTC) > VALIDITY - dt.timedelta(minutes=1)


# ---------------------------------------------------------------- what the plugin keeps


def a_joined_plugin(tmp_path: Path, authority: CertificateAuthority) -> tuple[IdentityKeeper, Path]:
    key, certificate = joined(authority)
    grants = GrantStore(tmp_path / "state")
    grants.prepare()
    identity = grants.save(
        "tok-1", key, JoinGrant(certificate, authority.certificate_pem, "cookie", ("AWS",))
    )
    return IdentityKeeper(identity), tmp_path / "state" / "plugin.crt"


def test_the_plugin_keeps_a_renewed_certificate_on_disk_and_for_its_next_dial(
    tmp_path: Path, authority: CertificateAuthority
) -> None:
    keeper, kept = a_joined_plugin(tmp_path, authority)
    assert keeper.renews
    assert keeper.current.credentials is not None
    renewed = authority.renew_plugin_certificate(keeper.current.credentials.certificate, VALIDITY)

    keeper.renew(renewed)

    assert kept.read_bytes() == renewed
    assert keeper.current.credentials.certificate == renewed
    reloaded = GrantStore(tmp_path / "state").load("tok-1")
    assert reloaded is not None
    assert reloaded.credentials is not None
    assert reloaded.credentials.certificate == renewed


@pytest.mark.parametrize("fault", ["another key", "another CA", "not PEM"])
def test_a_renewal_the_plugin_could_not_present_is_refused_and_the_old_one_kept(
    tmp_path: Path, authority: CertificateAuthority, fault: str, caplog: pytest.LogCaptureFixture
) -> None:
    keeper, kept = a_joined_plugin(tmp_path, authority)
    before = kept.read_bytes()
    makers: dict[str, Callable[[], bytes]] = {
        "another key": lambda: joined(authority)[1],
        "another CA": lambda: joined(CertificateAuthority.load_or_create(tmp_path / "other"))[1],
        "not PEM": lambda: b"garbage",
    }
    bad = makers[fault]()

    keeper.renew(bad)

    assert kept.read_bytes() == before
    assert keeper.current.credentials is not None
    assert keeper.current.credentials.certificate == before
    assert "renewed certificate not kept (the current one stays)" in caplog.text


def test_a_plugin_with_credentials_of_its_own_does_not_ask_for_renewals() -> None:
    from formae.plugin.identity import Identity
    from formae.wire.tls import ClientCredentials

    assert not IdentityKeeper(Identity(ClientCredentials(b"cert", b"key", b"ca"), "cookie")).renews
    assert not IdentityKeeper(Identity(None, "cookie")).renews

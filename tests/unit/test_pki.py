"""The agent's CA, the certificates it issues, and join tokens on the wire."""

from __future__ import annotations

import datetime as dt
import stat
from pathlib import Path

import pytest
from cryptography import x509

from formae.agent.pki import CertificateAuthority, LocalPluginCredentials, PkiError
from formae.wire import certificates, tls
from formae.wire.join import JoinToken, JoinTokenError

pytestmark = pytest.mark.timeout(10)


@pytest.fixture
def authority(tmp_path: Path) -> CertificateAuthority:
    return CertificateAuthority.load_or_create(tmp_path / "pki")


def test_the_ca_is_created_once_with_a_private_key_only_its_owner_reads(tmp_path: Path) -> None:
    first = CertificateAuthority.load_or_create(tmp_path / "pki")
    again = CertificateAuthority.load_or_create(tmp_path / "pki")

    assert again.certificate_pem == first.certificate_pem
    assert stat.S_IMODE((tmp_path / "pki" / "ca.key").stat().st_mode) == 0o600


def test_a_signed_request_allows_exactly_the_token_namespaces(authority: CertificateAuthority) -> None:
    key = certificates.new_private_key()
    certificate = authority.sign_plugin_request(
        certificates.certificate_request(key, "aws@host"), frozenset({"AWS"})
    )

    allowed = certificates.namespaces_of(certificate)
    assert allowed == frozenset({"AWS"})
    assert certificates.allows(allowed, "AWS")
    assert not certificates.allows(allowed, "FakeAWS")
    issued = x509.load_pem_x509_certificate(certificate)
    assert issued.issuer == authority.certificate.subject
    assert issued.public_key() == key.public_key()


def test_spawned_plugins_may_claim_any_namespace_and_bootstrap_certificates_none(
    authority: CertificateAuthority, tmp_path: Path
) -> None:
    env = LocalPluginCredentials(authority, tmp_path / "local").environment("fake-aws")
    bootstrap = authority.bootstrap_keypair("t1", dt.timedelta(minutes=5))

    assert certificates.allows(
        certificates.namespaces_of(Path(env["FORMAE_PLUGIN_CERT"]).read_bytes()), "Anything"
    )
    assert stat.S_IMODE(Path(env["FORMAE_PLUGIN_KEY"]).stat().st_mode) == 0o600
    assert certificates.namespaces_of(bootstrap.certificate_pem) == frozenset()


def test_garbage_requests_are_refused_before_anything_is_signed(authority: CertificateAuthority) -> None:
    with pytest.raises(PkiError, match="not a PEM certificate request"):
        authority.sign_plugin_request(b"hello", frozenset({"AWS"}))


def test_the_server_certificate_answers_to_the_name_plugins_verify(authority: CertificateAuthority) -> None:
    pair = authority.server_keypair(["10.231.0.1"])
    names = x509.load_pem_x509_certificate(pair.certificate_pem).extensions.get_extension_for_class(
        x509.SubjectAlternativeName
    )
    assert tls.AGENT_SERVER_NAME in names.value.get_values_for_type(x509.DNSName)
    assert "10.231.0.1" in {str(ip) for ip in names.value.get_values_for_type(x509.IPAddress)}


def test_a_join_token_round_trips_and_never_shows_its_secret() -> None:
    token = JoinToken("agent:49685", "abc", "s3cret", b"CA", b"CERT", b"KEY")

    assert JoinToken.decode(token.encode()) == token
    assert "s3cret" not in repr(token)
    with pytest.raises(JoinTokenError, match=r"starts with 'fmj1\.'"):
        JoinToken.decode("nope")
    with pytest.raises(JoinTokenError, match="damaged"):
        JoinToken.decode("fmj1.!!!")


def test_a_spawned_plugin_key_left_readable_by_all_is_made_private_again(
    authority: CertificateAuthority, tmp_path: Path
) -> None:
    directory = tmp_path / "local"
    directory.mkdir()
    stale = directory / "fake-aws.key"
    stale.write_bytes(b"an old key")
    stale.chmod(0o644)

    environment = LocalPluginCredentials(authority, directory).environment("fake-aws")

    assert environment["FORMAE_PLUGIN_KEY"] == str(stale)
    assert stat.S_IMODE(stale.stat().st_mode) == 0o600

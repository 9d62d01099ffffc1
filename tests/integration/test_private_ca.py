"""``IDP_CA_BUNDLE``: TLS to an IdP behind a private certificate authority, through the real handler.

The IdP is the dev IdP served over HTTPS on 127.0.0.1 with a certificate from a CA made for the test
(tests/support/private_ca.py): trusted with the bundle, an outage (500, never cached) without it, and a
bundle that cannot be used is a configuration error naming the variable.
"""

from __future__ import annotations

import logging

import pytest
from event_factory import rest_token
from outcomes import outcome_of
from private_ca import PrivateCa, TlsIdp

from idp_authorizer import handler


@pytest.fixture
def ca(tmp_path):
    return PrivateCa(tmp_path)


@pytest.fixture
def tls_idp(ca):
    with TlsIdp(ca) as idp:
        yield idp


def tls_env(idp: TlsIdp, **extra: str) -> dict[str, str]:
    return {"IDP_PROVIDER": "oidc", "IDP_ISSUER": idp.issuer, "IDP_AUDIENCE": idp.audience, **extra}


def test_an_idp_behind_a_private_ca_is_trusted_with_the_bundle(tls_idp, ca, configure):
    configure(tls_env(tls_idp, IDP_CA_BUNDLE=str(ca.bundle)))
    assert tls_idp.issuer.startswith("https://127.0.0.1:")
    assert outcome_of(lambda: handler.handler(rest_token(tls_idp.mint()), None)) == "allow"
    assert tls_idp.hits["/.well-known/jwks.json"] == 1


def test_without_the_bundle_tls_fails_and_every_request_is_a_500(tls_idp, configure, caplog):
    configure(tls_env(tls_idp))
    token = tls_idp.mint()
    with caplog.at_level(logging.WARNING):
        first = outcome_of(lambda: handler.handler(rest_token(token), None))
    # Not remembered as a verdict: the same token is an outage again, not a 401.
    second = outcome_of(lambda: handler.handler(rest_token(token), None))
    assert (first, second) == ("unavailable", "unavailable")
    assert "idp_tls_error" in caplog.text
    assert tls_idp.hits["/.well-known/openid-configuration"] == 0  # no HTTP request got through


def test_another_cas_bundle_does_not_trust_the_idp(tls_idp, configure, tmp_path):
    (tmp_path / "other").mkdir()
    other = PrivateCa(tmp_path / "other")
    configure(tls_env(tls_idp, IDP_CA_BUNDLE=str(other.bundle)))
    assert outcome_of(lambda: handler.handler(rest_token(tls_idp.mint()), None)) == "unavailable"


@pytest.mark.parametrize("content", [None, b"", b"not a certificate\n", b"-----BEGIN CERTIFICATE-----\nAAAA\n"])
def test_an_unusable_bundle_is_a_configuration_error_naming_the_variable(
    monkeypatch, tmp_path, tls_idp, caplog, content
):
    bundle = tmp_path / "bundle.pem"
    if content is not None:
        bundle.write_bytes(content)
    for name, value in tls_env(tls_idp, IDP_CA_BUNDLE=str(bundle)).items():
        monkeypatch.setenv(name, value)
    try:
        with caplog.at_level(logging.ERROR):
            assert handler.init() is None
        assert "IDP_CA_BUNDLE" in caplog.text
        assert outcome_of(lambda: handler.handler(rest_token(tls_idp.mint()), None)) == "unavailable"
    finally:
        monkeypatch.delenv("IDP_CA_BUNDLE")
        handler.init()

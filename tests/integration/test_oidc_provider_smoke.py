"""Smoke tests for the real oidc-provider fixture (tests/support/oidc_op.py): it starts, issues the token
formats the conformance tests rely on, introspects, revokes, rotates keys and never leaves orphans."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from joserfc import jwt
from joserfc.errors import InvalidKeyIdError
from joserfc.jwk import KeySet
from oidc_op import (  # noqa: F401  (the two fixtures are registered by importing them)
    CLIENT_BASIC,
    CLIENT_POST,
    CLIENT_READ_ONLY,
    CLIENT_SPECIAL,
    JWT_RESOURCES,
    RESOURCE_ES256,
    RESOURCE_OPAQUE,
    RESOURCE_RS256,
    RESOURCE_SHORT,
    SHORT_TTL_SECONDS,
    OidcOp,
    OpError,
    decode_jwt_unverified,
    oidc_op_fixture,
    oidc_op_private_fixture,
    ttl_resource,
)

pytestmark = pytest.mark.conformance


def _verify(op: OidcOp, token: str, alg: str) -> jwt.Token:
    """Verify a JWT against the key set the OP publishes right now."""
    keys = KeySet.import_key_set(op.jwks())
    return jwt.decode(token, keys, algorithms=[alg])


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie still answers kill(0); treat it as gone.
    try:
        return Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0] != "Z"
    except OSError:
        return False


def test_discovery(oidc_op: OidcOp) -> None:
    doc = oidc_op.discovery(refresh=True)
    assert oidc_op.issuer == f"http://127.0.0.1:{oidc_op.port}"
    assert doc["issuer"] == oidc_op.issuer
    assert doc["jwks_uri"] == f"{oidc_op.issuer}/jwks"
    assert doc["token_endpoint"] == f"{oidc_op.issuer}/token"
    assert doc["introspection_endpoint"] == f"{oidc_op.issuer}/token/introspection"
    assert doc["revocation_endpoint"] == f"{oidc_op.issuer}/token/revocation"
    assert "client_credentials" in doc["grant_types_supported"]
    assert {"client_secret_basic", "client_secret_post"} <= set(doc["token_endpoint_auth_methods_supported"])

    jwks = oidc_op.jwks()
    assert [k["kid"] for k in jwks["keys"]] == [k["kid"] for k in oidc_op.private_jwks["keys"]]
    assert {k["alg"] for k in jwks["keys"]} == {"RS256", "PS256", "ES256"}
    for key in jwks["keys"]:
        assert key["use"] == "sig"
        assert not {"d", "p", "q", "dp", "dq", "qi"} & set(key), "private members published"


@pytest.mark.parametrize("alg", ["RS256", "ES256", "PS256"])
def test_jwt_access_token(oidc_op: OidcOp, alg: str) -> None:
    resource = JWT_RESOURCES[alg]
    resp = oidc_op.token_response(CLIENT_BASIC, resource, "read write")
    assert resp["token_type"] == "Bearer"
    assert resp["scope"] == "read write"
    assert resp["expires_in"] == 600
    token = resp["access_token"]

    header, claims = decode_jwt_unverified(token)
    assert header == {"alg": alg, "typ": "at+jwt", "kid": oidc_op.signing_kid(alg)}
    assert set(claims) == {"jti", "sub", "iat", "exp", "scope", "client_id", "iss", "aud"}
    assert claims["iss"] == oidc_op.issuer
    assert claims["aud"] == resource  # a plain string, not a list
    assert claims["scope"] == "read write"  # space-separated string
    assert claims["client_id"] == CLIENT_BASIC.client_id
    assert claims["sub"] == CLIENT_BASIC.client_id  # client_credentials: sub is the client id
    assert claims["exp"] - claims["iat"] == 600
    assert abs(claims["iat"] - time.time()) < 60
    assert isinstance(claims["jti"], str) and claims["jti"]

    verified = _verify(oidc_op, token, alg)
    assert verified.claims == claims


def test_jwt_with_post_and_special_clients(oidc_op: OidcOp) -> None:
    for client in (CLIENT_POST, CLIENT_SPECIAL):
        _header, claims = decode_jwt_unverified(oidc_op.token(client, RESOURCE_RS256, "admin"))
        assert claims["client_id"] == client.client_id
        assert claims["scope"] == "admin"


def test_scope_rules(oidc_op: OidcOp) -> None:
    # No scope requested: the token has no scope claim at all.
    _h, claims = decode_jwt_unverified(oidc_op.token(CLIENT_BASIC, RESOURCE_RS256))
    assert "scope" not in claims
    # Unknown scopes are dropped silently.
    _h, claims = decode_jwt_unverified(oidc_op.token(CLIENT_BASIC, RESOURCE_RS256, "read bogus"))
    assert claims["scope"] == "read"
    # The read-only client gets `read`, and is refused anything more.
    _h, claims = decode_jwt_unverified(oidc_op.token(CLIENT_READ_ONLY, RESOURCE_RS256, "read"))
    assert claims["scope"] == "read"
    with pytest.raises(OpError) as err:
        oidc_op.token(CLIENT_READ_ONLY, RESOURCE_RS256, "read write")
    assert err.value.status == 400
    assert err.value.body["error"] == "invalid_scope"
    # Unknown resource.
    with pytest.raises(OpError) as err:
        oidc_op.token(CLIENT_BASIC, "urn:test:nope", "read")
    assert err.value.body["error"] == "invalid_target"
    # Wrong secret.
    bad = CLIENT_BASIC.__class__(CLIENT_BASIC.client_id, "wrong", "client_secret_basic", "read")
    with pytest.raises(OpError) as err:
        oidc_op.token(bad, RESOURCE_RS256, "read")
    assert err.value.status == 401
    assert err.value.body["error"] == "invalid_client"


def test_short_lived_tokens(oidc_op: OidcOp) -> None:
    resp = oidc_op.token_response(CLIENT_BASIC, RESOURCE_SHORT, "read")
    assert resp["expires_in"] == SHORT_TTL_SECONDS
    header, claims = decode_jwt_unverified(resp["access_token"])
    assert header["alg"] == "RS256"
    assert claims["aud"] == RESOURCE_SHORT
    assert claims["exp"] - claims["iat"] == SHORT_TTL_SECONDS

    resp = oidc_op.token_response(CLIENT_BASIC, ttl_resource("es256", 7), "read")
    assert resp["expires_in"] == 7
    header, claims = decode_jwt_unverified(resp["access_token"])
    assert header["alg"] == "ES256"
    assert claims["aud"] == "urn:test:es256:ttl:7"

    resp = oidc_op.token_response(CLIENT_BASIC, ttl_resource("opaque", 3), "read")
    assert resp["expires_in"] == 3
    info = oidc_op.introspect(resp["access_token"])
    assert info["active"] is True
    assert info["exp"] - info["iat"] == 3


def test_opaque_token_introspection(oidc_op: OidcOp) -> None:
    resp = oidc_op.token_response(CLIENT_BASIC, RESOURCE_OPAQUE, "read admin")
    token = resp["access_token"]
    assert token.count(".") == 0  # not a JWT
    assert resp["scope"] == "read admin"

    for client in (CLIENT_BASIC, CLIENT_POST, CLIENT_SPECIAL, CLIENT_READ_ONLY):
        info = oidc_op.introspect(token, client)
        assert info["active"] is True
        assert set(info) == {"active", "client_id", "exp", "iat", "iss", "aud", "scope", "token_type"}
        assert info["client_id"] == CLIENT_BASIC.client_id  # the client the token was issued to
        assert info["iss"] == oidc_op.issuer
        assert info["aud"] == RESOURCE_OPAQUE  # a plain string
        assert info["scope"] == "read admin"
        assert info["token_type"] == "Bearer"
        assert info["exp"] - info["iat"] == 600
        assert "sub" not in info  # client_credentials tokens have no subject in introspection

    assert oidc_op.introspect(token, CLIENT_POST, token_type_hint="access_token")["active"] is True

    # An opaque token minted with no resource has no audience.
    info = oidc_op.introspect(oidc_op.token(CLIENT_POST, None, "read"), CLIENT_POST)
    assert info["active"] is True
    assert "aud" not in info

    assert oidc_op.introspect("not-a-token-we-issued") == {"active": False}


def test_revocation(oidc_op: OidcOp) -> None:
    token = oidc_op.token(CLIENT_POST, RESOURCE_OPAQUE, "read")
    assert oidc_op.introspect(token, CLIENT_BASIC)["active"] is True
    # Only the client the token was issued to may revoke it.
    with pytest.raises(OpError) as err:
        oidc_op.revoke(token, CLIENT_BASIC)
    assert err.value.body["error"] == "invalid_request"
    oidc_op.revoke(token, CLIENT_POST)
    assert oidc_op.introspect(token, CLIENT_BASIC) == {"active": False}
    assert oidc_op.introspect(token, CLIENT_POST) == {"active": False}
    oidc_op.revoke(token, CLIENT_POST)  # revoking again is fine


def test_jwts_cannot_be_introspected(oidc_op: OidcOp) -> None:
    token = oidc_op.token(CLIENT_BASIC, RESOURCE_RS256, "read")
    with pytest.raises(OpError) as err:
        oidc_op.introspect(token)
    assert err.value.status == 400
    assert err.value.body["error"] == "unsupported_token_type"


def test_key_rotation(oidc_op_private: OidcOp) -> None:
    op = oidc_op_private
    old_kids = op.kids()
    old_rs_token = op.token(CLIENT_BASIC, RESOURCE_RS256, "read")
    opaque = op.token(CLIENT_BASIC, RESOURCE_OPAQUE, "read")

    # Overlap: new keys published first (and signing), old keys still published.
    new = op.rotate_keys(keep_old=True)
    new_kids = [k["kid"] for k in new["keys"]]
    assert not set(new_kids) & set(old_kids)
    assert op.kids() == new_kids + old_kids
    header, _ = decode_jwt_unverified(op.token(CLIENT_BASIC, RESOURCE_ES256, "read"))
    assert header["kid"] == new_kids[2]
    _verify(op, old_rs_token, "RS256")  # old token still verifiable

    # Retire the old keys.
    op.retire_keys(old_kids)
    assert op.kids() == new_kids
    with pytest.raises(InvalidKeyIdError):
        _verify(op, old_rs_token, "RS256")

    # Hard rotation: new key added, old removed in one step.
    newer = op.rotate_keys()
    newer_kids = [k["kid"] for k in newer["keys"]]
    assert op.kids() == newer_kids
    for alg, resource in JWT_RESOURCES.items():
        token = op.token(CLIENT_BASIC, resource, "read")
        header, _ = decode_jwt_unverified(token)
        assert header["kid"] == op.signing_kid(alg)
        assert header["kid"] in newer_kids
        _verify(op, token, alg)

    # The runtime swap keeps opaque tokens.
    assert op.introspect(opaque)["active"] is True


def test_restart_same_issuer_same_keys(oidc_op_private: OidcOp) -> None:
    op = oidc_op_private
    issuer, kids, pid = op.issuer, op.kids(), op.pid
    token = op.token(CLIENT_BASIC, RESOURCE_RS256, "read")
    op.stop()
    assert pid is not None and not _pid_alive(pid)
    with pytest.raises(OSError):
        op.discovery(refresh=True)  # connection refused while down
    op.start()
    assert op.pid != pid
    assert op.issuer == issuer
    assert op.discovery(refresh=True)["issuer"] == issuer
    assert op.kids() == kids
    _verify(op, token, "RS256")


def test_no_orphan_when_parent_dies(tmp_path: Path) -> None:
    """The node server exits on its own when the Python process that started it is SIGKILLed."""
    tests_dir = Path(__file__).resolve().parents[1] / "support"
    code = (
        "import sys, time\n"
        f"sys.path.insert(0, {str(tests_dir)!r})\n"
        "from oidc_op import OidcOp\n"
        "op = OidcOp().start()\n"
        "print(op.pid, op._tmp, flush=True)\n"
        "time.sleep(60)\n"
    )
    parent = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    try:
        assert parent.stdout is not None
        line = parent.stdout.readline().split()
        assert line, "child did not start the OP"
        node_pid, tmp = int(line[0]), line[1]
        assert _pid_alive(node_pid)
        os.kill(parent.pid, signal.SIGKILL)
        parent.wait(timeout=5)
        deadline = time.monotonic() + 5
        while _pid_alive(node_pid) and time.monotonic() < deadline:
            time.sleep(0.05)
        alive = _pid_alive(node_pid)
        if alive:
            os.kill(node_pid, signal.SIGKILL)
        assert not alive, "oidc-provider outlived its parent"
        shutil.rmtree(tmp, ignore_errors=True)
    finally:
        if parent.poll() is None:
            parent.kill()
            parent.wait()

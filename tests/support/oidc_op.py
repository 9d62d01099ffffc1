"""A real, certified OpenID Provider for the test suite: panva's ``oidc-provider`` (npm).

The server lives in ``tests/oidc_provider/server.mjs`` (dependencies pinned by its
``package-lock.json``). This module starts and stops it, generates its signing keys, and talks to it
(client_credentials, introspection, revocation, key rotation) with plain ``urllib``.

Use from tests (``tests/support`` is not a package; pyproject.toml puts it on ``sys.path``)::

    # tests/conftest.py
    from oidc_op import oidc_op_fixture, oidc_op_private_fixture  # noqa: F401

    def test_something(oidc_op):               # session-wide shared OP
        token = oidc_op.token(CLIENT_BASIC, RESOURCE_RS256, "read")

Fixtures (the names pytest sees):

* ``oidc_op``: one OP for the whole session. Do not rotate its keys or stop it.
* ``oidc_op_private``: a fresh OP per test, for tests that rotate keys, stop/restart the server or
  otherwise change its state. Stopped after the test.

What the OP issues (all tokens via client_credentials; the resource is the RFC 8707 ``resource``):

* ``urn:test:rs256`` / ``urn:test:es256`` / ``urn:test:ps256``: RFC 9068 JWT access tokens, header
  ``{"alg": ..., "typ": "at+jwt", "kid": ...}``, claims ``jti sub iat exp scope client_id iss aud``
  (``aud`` is the resource indicator as a *string*; ``sub`` is the client id; ``scope`` is a
  space-separated string, absent when no scope was granted; no ``nbf``). Lifetime 600 s.
* ``urn:test:opaque``: opaque access tokens (introspect / revoke them). Lifetime 600 s.
* ``urn:test:short``: RS256 JWT with a 2 s lifetime; ``ttl_resource(kind, seconds)`` builds
  ``urn:test:<kind>:ttl:<seconds>`` for any kind and lifetime.
* Every resource offers scopes ``read write admin``; requested scopes a resource does not offer are
  silently dropped. With no ``scope`` parameter, the token carries no scope at all.
* JWTs cannot be introspected or revoked: oidc-provider answers 400 ``unsupported_token_type``.
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import secrets
import shutil
import subprocess
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import npm
import pytest
from joserfc.jwk import ECKey, RSAKey

OP_DIR = Path(__file__).resolve().parents[1] / "oidc_provider"
SERVER_SCRIPT = OP_DIR / "server.mjs"
READY_PREFIX = "OIDC_OP_READY "


@dataclass(frozen=True)
class OpClient:
    """A confidential client registered at the OP. ``auth_method`` is used at every endpoint."""

    client_id: str
    client_secret: str
    auth_method: str  # "client_secret_basic" or "client_secret_post"
    scope: str  # the scopes the client may request


# Keep in sync with `clients` in tests/oidc_provider/server.mjs.
CLIENT_BASIC = OpClient(
    "op-basic-client", "op-basic-secret-0123456789abcdef", "client_secret_basic", "read write admin"
)
CLIENT_POST = OpClient("op-post-client", "op-post-secret-0123456789abcdef", "client_secret_post", "read write admin")
# May only request `read` (asking for more gets `invalid_scope`); use it for scope-lacking tokens.
CLIENT_READ_ONLY = OpClient(
    "op-read-only-client", "op-read-only-secret-0123456789abcdef", "client_secret_basic", "read"
)
# id and secret full of characters that RFC 6749 section 2.3.1 form-urlencodes inside Basic auth.
CLIENT_SPECIAL = OpClient(
    "op special:client", "sec:ret with%20+special/chars=&?", "client_secret_basic", "read write admin"
)
ALL_CLIENTS = (CLIENT_BASIC, CLIENT_POST, CLIENT_READ_ONLY, CLIENT_SPECIAL)

RESOURCE_RS256 = "urn:test:rs256"
RESOURCE_ES256 = "urn:test:es256"
RESOURCE_PS256 = "urn:test:ps256"
RESOURCE_OPAQUE = "urn:test:opaque"
RESOURCE_SHORT = "urn:test:short"  # RS256 JWT, expires_in 2
SHORT_TTL_SECONDS = 2
JWT_RESOURCES = {"RS256": RESOURCE_RS256, "ES256": RESOURCE_ES256, "PS256": RESOURCE_PS256}
SCOPES = ("read", "write", "admin")
DEFAULT_TTL_SECONDS = 600


def ttl_resource(kind: str, seconds: int) -> str:
    """Resource indicator for ``kind`` (rs256, es256, ps256, opaque) with a custom lifetime."""
    if kind not in {"rs256", "es256", "ps256", "opaque"} or not 1 <= seconds <= 999_999:
        raise ValueError(f"bad kind/ttl: {kind!r} {seconds!r}")
    return f"urn:test:{kind}:ttl:{seconds}"


class OpError(Exception):
    """The OP answered with an HTTP error. ``body`` is the parsed JSON error (or raw text)."""

    def __init__(self, status: int, body: Any) -> None:
        super().__init__(f"OP answered HTTP {status}: {body!r}")
        self.status = status
        self.body = body


# ----------------------------------------------------------------------------------------------
# keys


def generate_signing_jwks(tag: str | None = None) -> dict[str, Any]:
    """A private JWKS with one key per signing alg the OP uses, each with ``kid``, ``alg``, ``use``.

    RSA 2048 for RS256, another RSA 2048 for PS256 (oidc-provider uses a key whose ``alg`` is set
    only for that alg), EC P-256 for ES256. Kids are ``<alg>-<tag>``; ``tag`` defaults to random hex.
    """
    tag = tag or secrets.token_hex(4)
    keys = []
    for alg in ("RS256", "PS256"):
        params = {"kid": f"{alg.lower()}-{tag}", "alg": alg, "use": "sig"}
        keys.append(RSAKey.generate_key(2048, parameters=params, private=True).as_dict(private=True))
    params = {"kid": f"es256-{tag}", "alg": "ES256", "use": "sig"}
    keys.append(ECKey.generate_key("P-256", parameters=params, private=True).as_dict(private=True))
    return {"keys": keys}


def public_jwks(private: dict[str, Any]) -> dict[str, Any]:
    """Strip private members from a JWKS (what the OP publishes at its jwks_uri)."""
    secret_members = {"d", "p", "q", "dp", "dq", "qi", "oth", "k"}
    return {"keys": [{k: v for k, v in key.items() if k not in secret_members} for key in private["keys"]]}


def decode_jwt_unverified(token: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """(header, claims) of a compact JWS, without verifying anything. For assertions only."""

    def part(segment: str) -> dict[str, Any]:
        return json.loads(base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4)))

    header, payload, _sig = token.split(".")
    return part(header), part(payload)


# ----------------------------------------------------------------------------------------------
# npm


def ensure_node_modules() -> None:
    """``npm ci`` in tests/oidc_provider once if node_modules is missing."""
    npm.ensure_node_modules(OP_DIR, "oidc-provider", timeout=300)


# ----------------------------------------------------------------------------------------------
# the OP


class OidcOp:
    """One oidc-provider server process on 127.0.0.1.

    ``start()`` generates keys (unless given), launches node, waits for the ready line and returns
    self. The first start picks a free port (unless ``port`` is given); later starts reuse it, so
    ``stop()`` + ``start()`` (or ``restart()``) brings the "same" IdP back at the same issuer and
    with the same keys (in-memory opaque tokens are lost). While stopped, connections are refused:
    handy for IdP-down tests.
    """

    def __init__(
        self,
        port: int = 0,
        *,
        jwks: dict[str, Any] | None = None,
        startup_timeout: float = 20.0,
        http_timeout: float = 10.0,
    ) -> None:
        self.port = port
        self.issuer = f"http://127.0.0.1:{port}" if port else ""
        self.private_jwks: dict[str, Any] = jwks or generate_signing_jwks()
        self.startup_timeout = startup_timeout
        self.http_timeout = http_timeout
        self._admin_token = secrets.token_urlsafe(24)
        self._proc: subprocess.Popen[bytes] | None = None
        self._tmp = Path(tempfile.mkdtemp(prefix="oidc-op-"))
        self._discovery: dict[str, Any] | None = None

    # -- lifecycle ---------------------------------------------------------------------------

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc is not None else None

    def start(self) -> OidcOp:
        if self.running:
            return self
        ensure_node_modules()
        node = shutil.which("node")
        if node is None:
            raise RuntimeError("node is needed for the oidc-provider tests")
        jwks_path = self._tmp / "jwks.json"
        jwks_path.write_text(json.dumps(self.private_jwks))
        jwks_path.chmod(0o600)
        self._log_out = self._tmp / "stdout.log"
        self._log_err = self._tmp / "stderr.log"
        with open(self._log_out, "wb") as out, open(self._log_err, "wb") as err:
            # stdin stays a pipe we hold open: when this process dies, the server sees EOF and exits.
            self._proc = subprocess.Popen(
                [node, str(SERVER_SCRIPT), "--port", str(self.port), "--jwks", str(jwks_path)],
                cwd=OP_DIR,
                stdin=subprocess.PIPE,
                stdout=out,
                stderr=err,
                env={**os.environ, "OP_ADMIN_TOKEN": self._admin_token, "NODE_ENV": "test"},
            )
        deadline = time.monotonic() + self.startup_timeout
        while True:
            ready = self._read_ready_line()
            if ready is not None:
                break
            if self._proc.poll() is not None or time.monotonic() > deadline:
                why = "exited" if self._proc.poll() is not None else "did not get ready in time"
                self.stop()
                raise RuntimeError(f"oidc-provider {why}; stderr:\n{self._log_err.read_text()[-4000:]}")
            time.sleep(0.02)
        self.port = int(ready["port"])
        self.issuer = ready["issuer"]
        assert self.issuer == f"http://127.0.0.1:{self.port}", ready
        self._discovery = None
        return self

    def _read_ready_line(self) -> dict[str, Any] | None:
        for line in self._log_out.read_text(errors="replace").splitlines():
            if line.startswith(READY_PREFIX):
                return json.loads(line[len(READY_PREFIX) :])
        return None

    def stop(self, timeout: float = 5.0) -> None:
        """Stop the server by PID: close its stdin, SIGTERM, then SIGKILL after ``timeout``."""
        proc, self._proc = self._proc, None
        if proc is None:
            return
        if proc.stdin is not None:
            with contextlib.suppress(OSError):
                proc.stdin.close()
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=timeout)

    def restart(self) -> OidcOp:
        self.stop()
        return self.start()

    def close(self) -> None:
        """Stop and delete the temporary directory (keys, logs)."""
        self.stop()
        shutil.rmtree(self._tmp, ignore_errors=True)

    def __enter__(self) -> OidcOp:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()

    def stderr_text(self) -> str:
        return self._log_err.read_text(errors="replace") if hasattr(self, "_log_err") else ""

    # -- HTTP --------------------------------------------------------------------------------

    def _request(
        self,
        method: str,
        url: str,
        *,
        form: dict[str, str] | None = None,
        headers: dict[str, str] | None = None,
        body: bytes | None = None,
    ) -> tuple[int, dict[str, str], bytes]:
        if form is not None:
            body = urllib.parse.urlencode(form).encode()
            headers = {"Content-Type": "application/x-www-form-urlencoded", **(headers or {})}
        req = urllib.request.Request(url, data=body, method=method, headers=headers or {})
        try:
            with urllib.request.urlopen(req, timeout=self.http_timeout) as resp:
                return resp.status, dict(resp.headers.items()), resp.read()
        except urllib.error.HTTPError as exc:
            return exc.code, dict(exc.headers.items()), exc.read()

    def _json(self, method: str, url: str, **kw: Any) -> Any:
        status, _headers, raw = self._request(method, url, **kw)
        try:
            data = json.loads(raw) if raw else None
        except ValueError:
            data = raw.decode(errors="replace")
        if status >= 400:
            raise OpError(status, data)
        return data

    @staticmethod
    def _client_auth(client: OpClient, form: dict[str, str]) -> dict[str, str]:
        """Apply the client's auth method: returns headers; may add to ``form``."""
        if client.auth_method == "client_secret_post":
            form["client_id"] = client.client_id
            form["client_secret"] = client.client_secret
            return {}
        if client.auth_method == "client_secret_basic":
            # RFC 6749 section 2.3.1: form-urlencode id and secret, then base64 "id:secret".
            user = urllib.parse.quote_plus(client.client_id)
            password = urllib.parse.quote_plus(client.client_secret)
            creds = f"{user}:{password}"
            return {"Authorization": "Basic " + base64.b64encode(creds.encode()).decode()}
        raise ValueError(f"unsupported auth method {client.auth_method}")

    def endpoint(self, name: str) -> str:
        """An endpoint URL from discovery, e.g. ``endpoint("introspection_endpoint")``."""
        return str(self.discovery()[name])

    # -- protocol ----------------------------------------------------------------------------

    @property
    def discovery_url(self) -> str:
        return f"{self.issuer}/.well-known/openid-configuration"

    def discovery(self, *, refresh: bool = False) -> dict[str, Any]:
        if self._discovery is None or refresh:
            self._discovery = self._json("GET", self.discovery_url)
        return self._discovery

    @property
    def jwks_uri(self) -> str:
        return self.endpoint("jwks_uri")

    @property
    def token_endpoint(self) -> str:
        return self.endpoint("token_endpoint")

    @property
    def introspection_endpoint(self) -> str:
        return self.endpoint("introspection_endpoint")

    @property
    def revocation_endpoint(self) -> str:
        return self.endpoint("revocation_endpoint")

    def jwks(self) -> dict[str, Any]:
        """The public JWKS as served right now at jwks_uri."""
        return self._json("GET", self.jwks_uri)

    def kids(self) -> list[str]:
        return [k["kid"] for k in self.jwks()["keys"]]

    def token_response(self, client: OpClient, resource: str | None, scope: str | None = None) -> dict[str, Any]:
        """The full client_credentials token response (``access_token``, ``expires_in``, ...).

        ``resource=None`` sends no resource: the OP then issues an opaque token *without* ``aud``.
        ``scope=None`` sends no scope: the token then carries no scope at all.
        """
        form = {"grant_type": "client_credentials"}
        if resource is not None:
            form["resource"] = resource
        if scope is not None:
            form["scope"] = scope
        headers = self._client_auth(client, form)
        return self._json("POST", self.token_endpoint, form=form, headers=headers)

    def token(self, client: OpClient, resource: str | None, scope: str | None = None) -> str:
        """A client_credentials access token (see ``token_response``)."""
        return str(self.token_response(client, resource, scope)["access_token"])

    def introspect(
        self, token: str, client: OpClient = CLIENT_BASIC, token_type_hint: str | None = None
    ) -> dict[str, Any]:
        """RFC 7662 introspection response. Any of our clients may introspect any opaque token."""
        form = {"token": token}
        if token_type_hint:
            form["token_type_hint"] = token_type_hint
        headers = self._client_auth(client, form)
        return dict(self._json("POST", self.introspection_endpoint, form=form, headers=headers))

    def revoke(self, token: str, client: OpClient = CLIENT_BASIC) -> None:
        """RFC 7009 revocation. oidc-provider only lets the client the token was issued to revoke it
        (another client gets 400 invalid_request); an unknown token is a silent 200."""
        form = {"token": token}
        headers = self._client_auth(client, form)
        self._json("POST", self.revocation_endpoint, form=form, headers=headers)

    # -- keys --------------------------------------------------------------------------------

    def set_signing_keys(self, private_jwks: dict[str, Any]) -> None:
        """Replace the OP's whole key set at runtime (no restart; opaque tokens survive).

        The OP signs each alg with the *first* key in the list that fits it and publishes every
        key's public part at jwks_uri, in list order. Tokens issued after this returns use the new
        set. Also kept for later restarts.
        """
        if not self.running:
            self.private_jwks = private_jwks
            return
        self._json(
            "POST",
            f"{self.issuer}/__test__/jwks",
            body=json.dumps(private_jwks).encode(),
            headers={"Content-Type": "application/json", "x-test-admin": self._admin_token},
        )
        self.private_jwks = private_jwks
        (self._tmp / "jwks.json").write_text(json.dumps(private_jwks))

    def rotate_keys(self, *, keep_old: bool = False, tag: str | None = None) -> dict[str, Any]:
        """Rotate to a freshly generated key set (one RS256, one PS256, one ES256 key, new kids).

        * ``keep_old=False`` (default): the new keys are added and the old ones removed at once:
          the JWKS then holds only new kids; tokens signed before are no longer verifiable.
        * ``keep_old=True``: overlap phase: new keys first (they sign from now on), old keys still
          published after them, so old tokens stay verifiable. Call ``retire_keys(old_kids)`` later.

        Returns the new private key set (``{"keys": [...]}``). Runtime swap, no restart.
        """
        new = generate_signing_jwks(tag)
        keys = new["keys"] + (self.private_jwks["keys"] if keep_old else [])
        self.set_signing_keys({"keys": keys})
        return new

    def retire_keys(self, kids: list[str] | set[str]) -> None:
        """Remove the keys with these kids from the published set (at least one key must stay)."""
        kept = [k for k in self.private_jwks["keys"] if k["kid"] not in set(kids)]
        self.set_signing_keys({"keys": kept})

    def signing_kid(self, alg: str) -> str:
        """The kid the OP currently signs ``alg`` with (first key whose alg matches)."""
        return next(k["kid"] for k in self.private_jwks["keys"] if k.get("alg") == alg)


# ----------------------------------------------------------------------------------------------
# pytest fixtures (import them into tests/conftest.py; see the module docstring)

_shared: OidcOp | None = None


def shared_oidc_op() -> OidcOp:
    """The process-wide OP behind the ``oidc_op`` fixture, started on first use."""
    global _shared  # noqa: PLW0603
    if _shared is None or not _shared.running:
        _shared = OidcOp().start()
    return _shared


@pytest.fixture(scope="session", name="oidc_op")
def oidc_op_fixture() -> Iterator[OidcOp]:
    """A session-wide oidc-provider. Shared: don't rotate its keys or stop it (use oidc_op_private)."""
    global _shared  # noqa: PLW0603
    op = shared_oidc_op()
    yield op
    if _shared is op:
        _shared = None
    op.close()


@pytest.fixture(name="oidc_op_private")
def oidc_op_private_fixture() -> Iterator[OidcOp]:
    """A fresh oidc-provider for one test: rotate keys, stop and restart it at will."""
    op = OidcOp().start()
    try:
        yield op
    finally:
        op.close()

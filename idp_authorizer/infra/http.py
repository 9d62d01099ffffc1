"""The one HTTP client toward identity providers: explicit timeouts, bounded reads, no redirects.

One aiohttp ``ClientSession`` per event loop, created lazily on first use and reused across warm
invocations. URLs must be ``https://``; plain ``http://`` only to loopback hosts (development, tests).
Every failure becomes :class:`UpstreamUnavailable` (fail closed, never cached as a verdict); a status
other than 200 is its subclass :class:`HttpStatusError`, which carries the OAuth ``error`` code of a
4xx body so that a driver can tell "this token" from "this client" (RFC 6749 section 5.2).

TLS is always verified: against the system store, or against the PEM bundle ``IDP_CA_BUNDLE`` names
(:func:`tls_context`) for an IdP behind a private certificate authority. A certificate that does not
verify is an outage (``idp_tls_error``), never retried and never a verdict.
"""

from __future__ import annotations

import asyncio
import ipaddress
import json
import re
import ssl
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import aiohttp

from idp_authorizer.core.errors import ConfigurationError, Reason, UpstreamUnavailable

_LOOPBACK_NAMES = {"localhost"}
_ERROR_BODY_BYTES = 4096
"""Most read of an error response: enough for ``{"error": ...}``, not for a flood."""
_OAUTH_ERROR = re.compile(r"[\x20\x21\x23-\x5b\x5d-\x7e]{1,64}")
"""An RFC 6749 section 5.2 ``error`` code (its character set), short enough to be a code and not a message."""


def is_loopback(host: str) -> bool:
    if host.lower() in _LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def check_url(url: str, what: str, *, allow_loopback_http: bool = True) -> str:
    """Refuse IdP URLs that are not ``https://`` (``http://`` is allowed to loopback hosts only)."""
    try:
        parts = urlsplit(url)
        host = parts.hostname
    except ValueError:  # e.g. an unclosed IPv6 bracket: urlsplit raises instead of returning parts
        host = None
    if host and parts.scheme == "https":
        return url
    if host and parts.scheme == "http" and allow_loopback_http and is_loopback(host):
        return url
    raise ConfigurationError(Reason.INSECURE_URL, f"{what} must be an https:// URL (http:// only to loopback hosts)")


def tls_context(ca_bundle: str | None) -> ssl.SSLContext | None:
    """A context that trusts only the certificates of the PEM file ``ca_bundle``; ``None`` for the system store.

    Read once, at cold start. A file that cannot be read, or holds no certificate, is a
    :class:`ConfigurationError` naming ``IDP_CA_BUNDLE`` (the message never shows the file's content).
    """
    if ca_bundle is None:
        return None
    try:
        with open(ca_bundle, encoding="ascii") as pem:
            text = pem.read(4 * 1024 * 1024)
    except (OSError, ValueError) as exc:
        raise _bundle_error(f"cannot be read ({type(exc).__name__})") from None
    if "-----BEGIN CERTIFICATE-----" not in text:
        raise _bundle_error("holds no PEM certificate")
    try:
        # With ``cadata`` the default context loads these certificates and not the system store.
        context = ssl.create_default_context(cadata=text)
    except ssl.SSLError as exc:
        raise _bundle_error(f"is not a valid PEM bundle ({exc.reason or 'unreadable certificate'})") from None
    return context


def _bundle_error(problem: str) -> ConfigurationError:
    return ConfigurationError(Reason.CONFIGURATION_ERROR, f"IDP_CA_BUNDLE: the file {problem}")


@dataclass(frozen=True, slots=True)
class HttpResponse:
    """A decoded JSON object and the response headers that matter (``Date``, ``Cache-Control``)."""

    body: dict[str, Any]
    headers: Mapping[str, str]


class HttpStatusError(UpstreamUnavailable):
    """The IdP answered a status other than 200 (code ``http_<status>``).

    ``oauth_error`` is the ``error`` member of a 4xx JSON body when it is a well-formed RFC 6749
    section 5.2 code, else ``None``. Nothing else of the body is kept, so nothing else can be logged.
    """

    def __init__(self, status: int, oauth_error: str | None = None) -> None:
        super().__init__(Reason.http(status), f"the IdP answered {status}")
        self.status = status
        self.oauth_error = oauth_error


class HttpClient:
    """Fetches JSON from IdPs with bounded time and size; safe to share across providers."""

    def __init__(
        self,
        *,
        timeout: float = 3.0,
        connect_timeout: float = 1.0,
        max_bytes: int = 512 * 1024,
        tls: ssl.SSLContext | None = None,
    ) -> None:
        self._timeout = aiohttp.ClientTimeout(total=timeout, sock_connect=connect_timeout)
        self._max_bytes = max_bytes
        self._tls: ssl.SSLContext | bool = True if tls is None else tls
        self._session: aiohttp.ClientSession | None = None
        self.requests = 0
        """Requests sent, for tests and metrics."""

    def _get_session(self) -> aiohttp.ClientSession:
        session = self._session
        if session is None or session.closed or session._loop is not asyncio.get_running_loop():
            session = aiohttp.ClientSession(timeout=self._timeout, raise_for_status=False, trust_env=False)
            self._session = session
        return session

    async def close(self) -> None:
        if self._session is not None and not self._session.closed:
            await self._session.close()

    async def get_json(self, url: str) -> HttpResponse:
        """GET a JSON object; retried once when no connection could be made.

        A connection that drops mid-request is not retried here: aiohttp already retries an
        idempotent request once in that case, and a second layer would send four requests to a
        struggling IdP.
        """
        return await self._once_more_if_unsent("GET", url)

    async def post_form(
        self, url: str, form: Mapping[str, str], headers: Mapping[str, str] | None = None
    ) -> HttpResponse:
        """POST form data; retried once only when the connection failed before the request was sent."""
        return await self._once_more_if_unsent("POST", url, form=form, headers=headers)

    async def _once_more_if_unsent(
        self,
        method: str,
        url: str,
        *,
        form: Mapping[str, str] | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> HttpResponse:
        try:
            try:
                return await self._request(method, url, form=form, headers=headers)
            except _NotSentError:
                return await self._request(method, url, form=form, headers=headers)
        except _ConnectionFailedError as exc:
            raise UpstreamUnavailable(Reason.IDP_UNREACHABLE, "connection to the IdP failed") from exc

    async def _request(
        self,
        method: str,
        url: str,
        *,
        form: Mapping[str, str] | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> HttpResponse:
        session = self._get_session()
        self.requests += 1
        try:
            async with session.request(
                method,
                url,
                data=dict(form) if form is not None else None,
                headers=headers,
                allow_redirects=False,
                ssl=self._tls,
            ) as response:
                if response.status != 200:
                    raise HttpStatusError(response.status, await self._oauth_error(response))
                raw = await self._read_bounded(response)
                return HttpResponse(_json_object(raw), dict(response.headers))
        except aiohttp.ClientSSLError as exc:
            # Checked before the connection errors it inherits from: a certificate that does not verify
            # will not verify on a retry either.
            raise UpstreamUnavailable(Reason.IDP_TLS_ERROR, "TLS to the IdP failed (certificate not trusted?)") from exc
        except aiohttp.ClientConnectorError as exc:
            raise _NotSentError from exc
        except (aiohttp.ServerDisconnectedError, aiohttp.ClientOSError) as exc:
            raise _ConnectionFailedError from exc
        except (TimeoutError, aiohttp.ClientError) as exc:
            raise UpstreamUnavailable(
                Reason.IDP_TIMEOUT if isinstance(exc, TimeoutError) else Reason.IDP_ERROR, type(exc).__name__
            ) from exc

    async def _oauth_error(self, response: aiohttp.ClientResponse) -> str | None:
        """The ``error`` code of a 4xx JSON body (RFC 6749 section 5.2), read up to 4 KiB; ``None`` if there is none."""
        if not 400 <= response.status < 500:
            return None
        try:
            error = _json_object(await self._read_bounded(response, _ERROR_BODY_BYTES)).get("error")
        except UpstreamUnavailable:  # too large, not JSON: no usable code
            return None
        return error if isinstance(error, str) and _OAUTH_ERROR.fullmatch(error) else None

    async def _read_bounded(self, response: aiohttp.ClientResponse, limit: int | None = None) -> bytes:
        limit = self._max_bytes if limit is None else limit
        length = response.content_length
        if length is not None and length > limit:
            raise UpstreamUnavailable(Reason.RESPONSE_TOO_LARGE, "the IdP response exceeds the size limit")
        chunks: list[bytes] = []
        size = 0
        async for chunk in response.content.iter_chunked(64 * 1024):
            size += len(chunk)
            if size > limit:
                raise UpstreamUnavailable(Reason.RESPONSE_TOO_LARGE, "the IdP response exceeds the size limit")
            chunks.append(chunk)
        return b"".join(chunks)


class _ConnectionFailedError(Exception):
    """The connection broke; the request may or may not have reached the IdP."""


class _NotSentError(_ConnectionFailedError):
    """No connection was made, so the request never left: safe to retry even a POST."""


def _json_object(raw: bytes) -> dict[str, Any]:
    try:
        value = json.loads(raw)
    except (ValueError, RecursionError) as exc:
        raise UpstreamUnavailable(Reason.INVALID_JSON, "the IdP response is not JSON") from exc
    if not isinstance(value, dict):
        raise UpstreamUnavailable(Reason.INVALID_JSON, "the IdP response is not a JSON object")
    return value

"""The authorizer's errors: three outcome families plus configuration errors.

Every error carries a stable machine ``code`` (logged, counted in metrics) next to a human
description. Drivers translate library exceptions at their edge; the mapping of these families
to API Gateway responses lives in exactly one place, :mod:`idp_authorizer.core.outcome`.
Messages never contain a token, an Authorization header value or a secret.
"""

from __future__ import annotations


class AuthorizerError(Exception):
    """Base of every error the authorizer raises on purpose."""

    code: str = "error"

    def __init__(self, code: str | None = None, description: str = "") -> None:
        self.code = code or self.code
        self.description = description
        super().__init__(f"{self.code}: {description}" if description else self.code)


class InvalidToken(AuthorizerError):  # noqa: N818 - named after the RFC 6750 error
    """No token, malformed, bad signature, expired, wrong iss/aud, inactive (RFC 6750 ``invalid_token``)."""

    code = "invalid_token"


class AccessDenied(AuthorizerError):  # noqa: N818 - named after the outcome
    """A valid token that lacks a scope or claim value the route requires (RFC 6750 ``insufficient_scope``)."""

    code = "insufficient_scope"


class UpstreamUnavailable(AuthorizerError):  # noqa: N818 - named after the outcome
    """The IdP could not be asked and nothing usable was cached: fail closed, never allow."""

    code = "upstream_unavailable"


class ConfigurationError(AuthorizerError):
    """A setting is missing or wrong; raised at cold start, then every request fails closed."""

    code = "configuration_error"


class AuthorizerUnavailable(Exception):  # noqa: N818 - what API Gateway turns into a 500
    """Raised out of the handler when the IdP is down or the configuration is broken.

    API Gateway answers 500 and, unlike a Deny policy or a 401, does not cache it, so users
    are not locked out after the IdP recovers.
    """

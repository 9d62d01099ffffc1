"""The authorizer's reasons and errors: one catalogue of reason codes, each with its outcome.

Every decision and every error carries a stable machine code, a :class:`Reason` (logged, counted in
metrics, shown by the doctor) next to a human description. :data:`OUTCOMES` is the one table from a
reason to its outcome; :mod:`idp_authorizer.core.outcome` turns outcomes into what API Gateway sees.
Drivers translate library exceptions at their edge into one of the three error families below.
Messages never contain a token, an Authorization header value or a secret.
"""

from __future__ import annotations

from collections.abc import Mapping
from enum import StrEnum
from typing import Literal, NamedTuple

Outcome = Literal["allow", "deny", "invalid", "unavailable"]


class Reason(StrEnum):
    """Why a request was decided as it was; the value is the code in logs and metrics."""

    # allow
    ALLOWED = "allowed"
    VERIFIED = "verified"
    ACTIVE = "active"
    # deny: a valid token the rules refuse (explicit Deny / isAuthorized false)
    INSUFFICIENT_SCOPE = "insufficient_scope"
    WILDCARD_IN_PATH = "wildcard_in_path"
    SENDER_CONSTRAINED_ROUTE = "sender_constrained_route"
    # invalid: the token (or the event) is bad (401)
    INVALID_TOKEN = "invalid_token"
    MISSING_TOKEN = "missing_token"
    TOKEN_TOO_LARGE = "token_too_large"
    MALFORMED_EVENT = "malformed_event"
    MALFORMED_TOKEN = "malformed_token"
    MULTIPLE_TOKENS = "multiple_tokens"
    JWE_NOT_SUPPORTED = "jwe_not_supported"
    UNKNOWN_ISSUER = "unknown_issuer"
    ALG_NOT_ALLOWED = "alg_not_allowed"
    ALG_KEY_MISMATCH = "alg_key_mismatch"
    CRIT_NOT_SUPPORTED = "crit_not_supported"
    MISSING_KID = "missing_kid"
    UNKNOWN_KID = "unknown_kid"
    WRONG_TYP = "wrong_typ"
    NOT_AN_ACCESS_TOKEN = "not_an_access_token"
    BAD_SIGNATURE = "bad_signature"
    EXPIRED = "expired"
    NOT_YET_VALID = "not_yet_valid"
    ISSUED_IN_FUTURE = "issued_in_future"
    MISSING_EXP = "missing_exp"
    INVALID_EXP = "invalid_exp"
    INVALID_NBF = "invalid_nbf"
    INVALID_IAT = "invalid_iat"
    INVALID_JTI = "invalid_jti"
    WRONG_ISSUER = "wrong_issuer"
    WRONG_AUDIENCE = "wrong_audience"
    WRONG_TOKEN_USE = "wrong_token_use"
    WRONG_CLIENT = "wrong_client"
    TENANT_NOT_ALLOWED = "tenant_not_allowed"
    TENANT_MISMATCH = "tenant_mismatch"
    WRONG_TOKEN_TYPE = "wrong_token_type"
    MISSING_SUB = "missing_sub"
    CONTROL_CHARACTERS = "control_characters"
    # invalid: a sender-constrained token whose binding is not proven (RFC 9449, RFC 8705)
    DPOP_PROOF_MISSING = "dpop_proof_missing"
    DPOP_MULTIPLE_PROOFS = "dpop_multiple_proofs"
    DPOP_PROOF_INVALID = "dpop_proof_invalid"
    DPOP_WRONG_TYP = "dpop_wrong_typ"
    DPOP_ALG_NOT_ALLOWED = "dpop_alg_not_allowed"
    DPOP_JWK_INVALID = "dpop_jwk_invalid"
    DPOP_PRIVATE_KEY = "dpop_private_key"
    DPOP_BAD_SIGNATURE = "dpop_bad_signature"
    DPOP_HTM_MISMATCH = "dpop_htm_mismatch"
    DPOP_HTU_MISMATCH = "dpop_htu_mismatch"
    DPOP_PROOF_EXPIRED = "dpop_proof_expired"
    DPOP_ISSUED_IN_FUTURE = "dpop_issued_in_future"
    DPOP_ATH_MISMATCH = "dpop_ath_mismatch"
    DPOP_REPLAY = "dpop_replay"
    DPOP_SCHEME_REQUIRED = "dpop_scheme_required"
    DPOP_TOKEN_NOT_BOUND = "dpop_token_not_bound"
    DPOP_TOKEN_EVENT = "dpop_token_event"
    CNF_MISMATCH = "cnf_mismatch"
    CNF_UNSUPPORTED = "cnf_unsupported"
    CLIENT_CERT_MISSING = "client_cert_missing"
    SENDER_CONSTRAINT_REQUIRED = "sender_constraint_required"
    INACTIVE = "inactive"
    INTROSPECTION_REFUSED = "introspection_refused"
    # unavailable: the IdP could not be asked, or answered nonsense (500, never cached)
    UPSTREAM_UNAVAILABLE = "upstream_unavailable"
    IDP_UNREACHABLE = "idp_unreachable"
    IDP_TIMEOUT = "idp_timeout"
    IDP_TLS_ERROR = "idp_tls_error"
    IDP_ERROR = "idp_error"
    IDP_BACKOFF = "idp_backoff"
    RESPONSE_TOO_LARGE = "response_too_large"
    INVALID_JSON = "invalid_json"
    INVALID_JWKS = "invalid_jwks"
    INVALID_INTROSPECTION = "invalid_introspection"
    ISSUER_MISMATCH = "issuer_mismatch"
    DISCOVERY_INCOMPLETE = "discovery_incomplete"
    DISCOVERY_INSECURE_URL = "discovery_insecure_url"
    INTROSPECTION_INVALID_CLIENT = "introspection_invalid_client"
    INTROSPECTION_UNAUTHORIZED_CLIENT = "introspection_unauthorized_client"
    INTROSPECTION_INVALID_REQUEST = "introspection_invalid_request"
    ROUTES_UNAVAILABLE = "routes_unavailable"
    INVALID_ROUTES = "invalid_routes"
    HTTP_301 = "http_301"
    HTTP_302 = "http_302"
    HTTP_303 = "http_303"
    HTTP_307 = "http_307"
    HTTP_308 = "http_308"
    HTTP_400 = "http_400"
    HTTP_401 = "http_401"
    HTTP_403 = "http_403"
    HTTP_404 = "http_404"
    HTTP_405 = "http_405"
    HTTP_406 = "http_406"
    HTTP_408 = "http_408"
    HTTP_409 = "http_409"
    HTTP_410 = "http_410"
    HTTP_413 = "http_413"
    HTTP_415 = "http_415"
    HTTP_422 = "http_422"
    HTTP_429 = "http_429"
    HTTP_500 = "http_500"
    HTTP_501 = "http_501"
    HTTP_502 = "http_502"
    HTTP_503 = "http_503"
    HTTP_504 = "http_504"
    HTTP_OTHER = "http_other"
    # unavailable too: the configuration is wrong (500 for every request)
    CONFIGURATION_ERROR = "configuration_error"
    INSECURE_URL = "insecure_url"

    @classmethod
    def of(cls, code: str, default: Reason) -> Reason:
        """The reason named ``code`` (read back from a cache), or ``default`` when none is."""
        return cls._value2member_map_.get(code, default)  # type: ignore[return-value]

    @classmethod
    def refusal(cls, code: str) -> Reason:
        """The refusal named ``code`` (read back from a cache); any code that is not one, ``invalid_token``.

        A cache another instance can write must never turn a remembered refusal into anything else.
        """
        reason = cls.of(code, cls.INVALID_TOKEN)
        return reason if OUTCOMES[reason] == "invalid" else cls.INVALID_TOKEN

    @classmethod
    def http(cls, status: int) -> Reason:
        """The reason for an HTTP status from the IdP (``http_other`` for a rare one)."""
        return cls.of(f"http_{status}", cls.HTTP_OTHER)


_ALLOW = {Reason.ALLOWED, Reason.VERIFIED, Reason.ACTIVE}
_DENY = {Reason.INSUFFICIENT_SCOPE, Reason.WILDCARD_IN_PATH, Reason.SENDER_CONSTRAINED_ROUTE}
_INVALID_END = list(Reason).index(Reason.INTROSPECTION_REFUSED)
OUTCOMES: Mapping[Reason, Outcome] = {
    reason: "allow"
    if reason in _ALLOW
    else "deny"
    if reason in _DENY
    else "invalid"
    if list(Reason).index(reason) <= _INVALID_END
    else "unavailable"
    for reason in Reason
}
"""The one table from a reason to its outcome (the order of :class:`Reason` groups them)."""


class AuthorizerError(Exception):
    """Base of every error the authorizer raises on purpose."""

    code: Reason = Reason.UPSTREAM_UNAVAILABLE

    def __init__(self, code: Reason | None = None, description: str = "") -> None:
        self.code = code or self.code
        self.description = description
        super().__init__(f"{self.code}: {description}" if description else str(self.code))


class InvalidToken(AuthorizerError):  # noqa: N818 - named after the RFC 6750 error
    """No token, malformed, bad signature, expired, wrong iss/aud, inactive (RFC 6750 ``invalid_token``)."""

    code = Reason.INVALID_TOKEN


class UpstreamUnavailable(AuthorizerError):  # noqa: N818 - named after the outcome
    """The IdP could not be asked and nothing usable was cached: fail closed, never allow."""

    code = Reason.UPSTREAM_UNAVAILABLE


class Problem(NamedTuple):
    """One thing wrong with the settings: what to say (never a value) and the variables left unset."""

    message: str
    missing: tuple[str, ...] = ()


class ConfigurationError(AuthorizerError):
    """A setting is missing or wrong; raised at cold start, then every request fails closed.

    ``problems`` lists each one as data (:class:`Problem`), so tools read variable names without
    parsing the description, which is the problems' messages joined.
    """

    code = Reason.CONFIGURATION_ERROR

    def __init__(
        self, code: Reason | None = None, description: str = "", *, problems: tuple[Problem, ...] = ()
    ) -> None:
        self.problems = problems or (Problem(description),)
        super().__init__(code, description or "; ".join(problem.message for problem in self.problems))


class AuthorizerUnavailable(Exception):  # noqa: N818 - what API Gateway turns into a 500
    """Raised out of the handler when the IdP is down or the configuration is broken.

    API Gateway answers 500 and, unlike a Deny policy or a 401, does not cache it, so users
    are not locked out after the IdP recovers.
    """

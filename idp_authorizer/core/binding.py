"""Sender-constrained tokens: the ``cnf`` binding and the rule that it is never optional once present. Pure.

A token whose claims (or introspection answer) carry ``cnf`` is bound to a key: ``cnf.jkt`` to the key
of DPoP proofs (RFC 9449 section 6), ``cnf.x5t#S256`` to a mutual-TLS client certificate (RFC 8705
section 3). :func:`required_proofs` says what a request must prove for its token, and refuses what
can never be proven here; the proofs themselves are checked by a :class:`SenderCheck`
(:mod:`idp_authorizer.infra.sender`), which needs cryptography and so lives outside the core.
"""

from __future__ import annotations

from collections.abc import Awaitable, Mapping
from typing import TYPE_CHECKING, Any, NamedTuple, Protocol

from idp_authorizer.core.errors import InvalidToken, Reason
from idp_authorizer.core.events import Request, SenderEvidence
from idp_authorizer.core.principal import Principal

if TYPE_CHECKING:
    from idp_authorizer.core.outcome import Decision


DPOP_ALGORITHMS = ("ES256", "RS256", "PS256", "EdDSA")
"""``IDP_DPOP_ALGORITHMS`` when unset: the asymmetric algorithms DPoP clients use."""


class Binding(NamedTuple):
    """What a token is bound to: a DPoP key thumbprint, a certificate thumbprint, or both."""

    jkt: str | None
    x5t_s256: str | None


def binding_of(claims: Mapping[str, Any]) -> Binding | None:
    """The token's ``cnf`` binding, ``None`` for a bearer token; raises ``cnf_unsupported`` for a ``cnf``
    this authorizer cannot prove (another confirmation method, such as ``jwk`` or ``kid``, or a bad form)."""
    cnf = claims.get("cnf")
    if cnf is None and "cnf" not in claims:
        return None
    jkt = cnf.get("jkt") if isinstance(cnf, Mapping) else None
    x5t = cnf.get("x5t#S256") if isinstance(cnf, Mapping) else None
    if (jkt is None and x5t is None) or not all(isinstance(v, str) and v for v in (jkt, x5t) if v is not None):
        raise InvalidToken(Reason.CNF_UNSUPPORTED, "token cnf names no jkt or x5t#S256 this authorizer can prove")
    return Binding(jkt, x5t)


def is_bound(principal: Principal) -> bool:
    """Whether ``principal``'s token is sender-constrained (and, once decided, its binding was proven)."""
    return "cnf" in principal.claims


def required_proofs(request: Request, binding: Binding | None, *, require_bound: bool) -> bool:
    """Whether the request must prove ``binding`` (``True``), or needs nothing (``False``, a bearer token).

    Raises :class:`InvalidToken` for what no proof can fix: the ``DPoP`` scheme with a token that is not
    DPoP-bound, a DPoP-bound token with another scheme (RFC 9449 section 7.1), a DPoP token on a TOKEN
    authorizer (which sees the ``Authorization`` header only, never the ``DPoP`` header), and a bearer
    token when ``IDP_REQUIRE_SENDER_CONSTRAINED`` is on.
    """
    dpop_scheme = request.scheme == "dpop"
    if request.shape == "rest-token" and (dpop_scheme or (binding is not None and binding.jkt is not None)):
        raise InvalidToken(Reason.DPOP_TOKEN_EVENT, "a TOKEN authorizer cannot see the DPoP header: use REQUEST")
    if binding is None:
        if dpop_scheme:
            raise InvalidToken(Reason.DPOP_TOKEN_NOT_BOUND, "DPoP scheme with a token that is not DPoP-bound")
        if require_bound:
            raise InvalidToken(Reason.SENDER_CONSTRAINT_REQUIRED, "a sender-constrained token is required")
        return False
    if binding.jkt is not None and not dpop_scheme:
        raise InvalidToken(Reason.DPOP_SCHEME_REQUIRED, "a DPoP-bound token must be sent with the DPoP scheme")
    if binding.jkt is None and dpop_scheme:
        raise InvalidToken(Reason.DPOP_TOKEN_NOT_BOUND, "DPoP scheme with a token that is not DPoP-bound")
    return True


class SenderCheck(Protocol):
    """Proves a binding from a request's evidence (:func:`~idp_authorizer.core.events.sender_evidence`)."""

    def check(self, evidence: SenderEvidence, token: str, binding: Binding) -> Awaitable[Decision] | None:
        """Raise :class:`InvalidToken` for a failed proof; ``None`` when proven here, or an awaitable that
        finishes the check across instances (the shared replay cache) and gives the decision."""
        ...

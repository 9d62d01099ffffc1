"""Proving a sender-constrained token's binding: DPoP proofs with a replay cache, and mTLS certificates.

:class:`SenderConstraints` is the :class:`~idp_authorizer.core.binding.SenderCheck` the decision path
calls on every request whose token is bound, verdict cached or not: the access token's signature may
be spared by the verdict cache, a proof never is. A proof's ``jti`` is remembered (per proof key)
until the proof could no longer pass the ``iat`` window: in the in-process tier always, and with a
shared tier by an atomic add (Redis ``SET NX``, memcached ``add``) where the first writer wins, so a
proof replayed at another instance is refused too. A shared-tier outage leaves the in-process check
(logged once by the tier); it never fails a request.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Collection
from typing import TYPE_CHECKING

from idp_authorizer.core.binding import Binding
from idp_authorizer.core.clock import Clock
from idp_authorizer.core.errors import InvalidToken, Reason
from idp_authorizer.core.events import SenderEvidence
from idp_authorizer.core.outcome import Decision, decision_for
from idp_authorizer.core.principal import fingerprint
from idp_authorizer.infra.cache import BoundedMemoryCache

if TYPE_CHECKING:
    from idp_authorizer.infra.shared_cache import SharedTier

_PROVEN = Decision("allow", Reason.VERIFIED)


class SenderConstraints:
    """Checks DPoP proofs (``IDP_DPOP_ALGORITHMS``, ``IDP_DPOP_MAX_AGE_SECONDS``) and certificate bindings."""

    def __init__(
        self,
        *,
        algorithms: Collection[str],
        max_age: float,
        leeway: float,
        replay: BoundedMemoryCache,
        shared: SharedTier | None = None,
        clock: Clock = time.time,
    ) -> None:
        self.algorithms = frozenset(algorithms)
        self.max_age = max_age
        self.leeway = leeway
        self.replay = replay
        self.shared = shared
        self._clock = clock

    def check(self, evidence: SenderEvidence, token: str, binding: Binding) -> Awaitable[Decision] | None:
        if binding.x5t_s256 is not None:
            self._check_certificate(evidence.client_cert_pem, binding.x5t_s256)
        if binding.jkt is None:
            return None
        return self._check_dpop(evidence, token, binding.jkt)

    def _check_certificate(self, pem: str | None, x5t_s256: str) -> None:
        """RFC 8705 section 3.1: the token's ``x5t#S256`` is the SHA-256 of the client certificate's DER."""
        from idp_authorizer.jose.dpop import cert_thumbprint

        if pem is None:
            raise InvalidToken(Reason.CLIENT_CERT_MISSING, "certificate-bound token without a client certificate")
        try:
            thumbprint = cert_thumbprint(pem)
        except ValueError:
            raise InvalidToken(Reason.CNF_MISMATCH, "the client certificate cannot be read") from None
        # Thumbprints are public values: == (hmac.compare_digest would raise on a non-ASCII claim).
        if thumbprint != x5t_s256:
            raise InvalidToken(Reason.CNF_MISMATCH, "the client certificate is not the one the token is bound to")

    def _check_dpop(self, evidence: SenderEvidence, token: str, jkt: str) -> Awaitable[Decision] | None:
        from idp_authorizer.jose.dpop import check_proof

        if not evidence.proofs:
            raise InvalidToken(Reason.DPOP_PROOF_MISSING, "DPoP-bound token without a DPoP header")
        if len(evidence.proofs) > 1:
            raise InvalidToken(Reason.DPOP_MULTIPLE_PROOFS, "more than one DPoP proof")
        if evidence.htu is None:
            raise InvalidToken(Reason.DPOP_HTU_MISMATCH, "the event does not say which URL the client called")
        now = self._clock()
        proof = check_proof(
            evidence.proofs[0],
            method=evidence.htm,
            url=evidence.htu,
            access_token=token,
            algorithms=self.algorithms,
            max_age=self.max_age,
            leeway=self.leeway,
            now=now,
        )
        if proof.jkt != jkt:
            raise InvalidToken(Reason.CNF_MISMATCH, "the DPoP proof key is not the one the token is bound to")
        # Remembered as long as the proof could pass the iat window, plus a second for rounding.
        key = "dpop:" + fingerprint(f"{proof.jkt}\n{proof.jti}")
        until = proof.iat + self.max_age + self.leeway + 1
        if self.replay.get_fresh(key) is not None:
            raise InvalidToken(Reason.DPOP_REPLAY, "this DPoP proof was used before")
        self.replay.put(key, True, until)
        return None if self.shared is None else self._first_use(key, until)

    async def _first_use(self, key: str, until: float) -> Decision:
        """Across instances: an atomic add that only the first writer of ``key`` wins."""
        from idp_authorizer.infra.shared_cache import shared_key

        assert self.shared is not None
        if await self.shared.claim(shared_key(key), until - self._clock()):
            return _PROVEN
        return decision_for(InvalidToken(Reason.DPOP_REPLAY, "this DPoP proof was used at another instance"))

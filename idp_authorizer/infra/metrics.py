"""CloudWatch metrics as Embedded Metric Format (EMF) lines, on when ``IDP_METRICS=true``.

https://docs.aws.amazon.com/AmazonCloudWatch/latest/monitoring/CloudWatch_Embedded_Metric_Format_Specification.html

Counters are aggregated in memory during an invocation and written as ONE JSON line at its end,
on stdout, where CloudWatch Logs extracts the metrics; no API call, no extra dependency. Why per
invocation and not per N invocations or per interval: Lambda may freeze the process right after
an invocation and later end it without running any of our code, so anything buffered across
invocations can be lost, and its timestamp would be wrong; one line per invocation also lands
next to that invocation's decision line. The line costs one ``json.dumps`` of a small dict
(about 9 µs; the ``_aws`` metadata is serialized once per combination of metrics present).

Hand-written rather than Powertools Metrics: importing ``aws_lambda_powertools`` adds about
36-39 ms to a cold start on top of the handler's own imports (measured with ``-X importtime``
and wall clock, 21 runs, Python 3.11, Powertools 3.37), while this module needs only ``json``.

Metrics (namespace ``IDP_METRICS_NAMESPACE``, dimension ``Service`` = the function name):

- ``Decisions`` by ``Outcome`` (allow, deny, invalid, unavailable) and ``Reason`` (the stable code);
- ``Latency`` (ms) of the authorizer's own work for the invocation;
- ``TokenCacheHits`` / ``TokenCacheMisses`` (verified-JWT verdicts) or ``IntrospectionCacheHits`` /
  ``IntrospectionCacheMisses`` (introspection verdicts), one lookup per request with a token;
- ``IdpRequests``, ``IdpErrors`` and ``IdpLatency`` (ms, one value per call) of calls to the IdP;
- ``KeySetFetches`` (the first fetch and every refetch) and ``PenaltyBoxHits`` (unknown ``kid``
  refused without asking the IdP, during the cooldown).

Nothing identifying a token, a user or a secret is ever written: only codes and counts.
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Awaitable, Collection, Iterable, Mapping
from typing import IO, TYPE_CHECKING, Any, Protocol, TypeGuard

from idp_authorizer.infra.http import HttpClient, HttpResponse

if TYPE_CHECKING:
    from idp_authorizer.core.clock import Clock
    from idp_authorizer.core.outcome import Decision

DECISION_DIMENSIONS = [["Service"], ["Service", "Outcome"], ["Service", "Outcome", "Reason"]]


class KeySetCounters(Protocol):
    """What a key set store exposes for metrics (cumulative since the container started)."""

    fetches: int
    penalty_hits: int


class Metrics:
    """Per-invocation counters, flushed as one EMF line by :meth:`flush`."""

    def __init__(
        self,
        namespace: str = "IdpAuthorizer",
        service: str = "idp-authorizer",
        *,
        introspection_providers: Collection[str] = (),
        stream: IO[str] | None = None,
        clock: Clock = time.time,
    ) -> None:
        self.namespace = namespace
        self.service = service
        self.stream = stream
        self._introspection = frozenset(introspection_providers)
        self._clock = clock
        self._stores: list[KeySetCounters] = []
        self._seen = (0, 0)
        self._idp_ms: list[float] = []
        self._idp_errors = 0
        self._metadata: dict[tuple[str, ...], str] = {}
        self._service = json.dumps(service)

    def watch_key_sets(self, stores: Iterable[KeySetCounters]) -> None:
        """Report key-set fetches and penalty-box hits of these stores as per-invocation deltas."""
        self._stores.extend(stores)
        self._seen = self._key_totals()

    def watch_providers(self, providers: Iterable[object]) -> None:
        """Watch the key set store of every provider that has one (JWT providers)."""
        stores = [getattr(provider, "store", None) for provider in providers]
        self.watch_key_sets(store for store in stores if _is_key_set(store))

    def idp_call(self, seconds: float, ok: bool) -> None:
        """One HTTP call to an IdP finished (called by :class:`TimedHttpClient`)."""
        self._idp_ms.append(round(seconds * 1000, 3))
        self._idp_errors += not ok

    def flush(self, decision: Decision, cache_hit: bool, looked_up: bool, started: float) -> None:
        """Write this invocation's line and start counting afresh. ``started`` is a ``perf_counter``."""
        values: dict[str, float | list[float]] = {"Latency": round((time.perf_counter() - started) * 1000, 3)}
        if looked_up:
            kind = self._cache_kind(decision)
            values[f"{kind}CacheHits"] = int(cache_hit)
            values[f"{kind}CacheMisses"] = int(not cache_hit)
        values["IdpRequests"] = len(self._idp_ms)
        values["IdpErrors"] = self._idp_errors
        if self._idp_ms:
            values["IdpLatency"] = self._idp_ms
        if self._stores:
            values["KeySetFetches"], values["PenaltyBoxHits"] = self._key_deltas()
        self._idp_ms, self._idp_errors = [], 0
        (self.stream or sys.stdout).write(self.line(decision.outcome, decision.code, values))

    def line(self, outcome: str, reason: str, values: Mapping[str, float | list[float]]) -> str:
        """The EMF object as one line: ``_aws`` metadata, then dimension and metric values at the root.

        The metadata depends only on which metrics are present (a handful of combinations), so its
        JSON is built once per combination; per invocation only the values are serialized.
        """
        names = tuple(values)
        metadata = self._metadata.get(names)
        if metadata is None:
            metadata = self._metadata[names] = json.dumps(self.directives(names), separators=(",", ":"))
        # Metric values are ints, finite floats or lists of them, whose str() is already JSON.
        numbers = ",".join(f'"{name}":{value}' for name, value in values.items())
        dimensions = f'"Service":{self._service},"Outcome":{json.dumps(outcome)},"Reason":{json.dumps(reason)}'
        aws = f'"_aws":{{"Timestamp":{int(self._clock() * 1000)},"CloudWatchMetrics":{metadata}}}'
        return f'{{{aws},{dimensions},"Decisions":1,{numbers}}}\n'

    def directives(self, names: Iterable[str]) -> list[dict[str, Any]]:
        """``CloudWatchMetrics``: decisions by outcome and reason; everything else by service only."""
        return [
            {
                "Namespace": self.namespace,
                "Dimensions": DECISION_DIMENSIONS,
                "Metrics": [{"Name": "Decisions", "Unit": "Count"}],
            },
            {
                "Namespace": self.namespace,
                "Dimensions": [["Service"]],
                "Metrics": [{"Name": n, "Unit": "Milliseconds" if n.endswith("Latency") else "Count"} for n in names],
            },
        ]

    def _cache_kind(self, decision: Decision) -> str:
        principal = decision.principal
        if principal is not None and principal.provider in self._introspection:
            return "Introspection"
        # A refused token names no provider: count it with introspection only when that is all there is.
        if principal is None and self._introspection and not self._stores:
            return "Introspection"
        return "Token"

    def _key_totals(self) -> tuple[int, int]:
        return sum(s.fetches for s in self._stores), sum(s.penalty_hits for s in self._stores)

    def _key_deltas(self) -> tuple[int, int]:
        totals = self._key_totals()
        deltas = totals[0] - self._seen[0], totals[1] - self._seen[1]
        self._seen = totals
        return deltas


def _is_key_set(store: object) -> TypeGuard[KeySetCounters]:
    return isinstance(getattr(store, "fetches", None), int) and isinstance(getattr(store, "penalty_hits", None), int)


class TimedHttpClient(HttpClient):
    """The IdP HTTP client, timing every call into :class:`Metrics` (used only when metrics are on)."""

    def __init__(self, metrics: Metrics, **options: Any) -> None:
        super().__init__(**options)
        self._metrics = metrics

    async def get_json(self, url: str) -> HttpResponse:
        return await self._timed(super().get_json(url))

    async def post_form(
        self, url: str, form: Mapping[str, str], headers: Mapping[str, str] | None = None
    ) -> HttpResponse:
        return await self._timed(super().post_form(url, form, headers))

    async def _timed(self, call: Awaitable[HttpResponse]) -> HttpResponse:
        started = time.perf_counter()
        ok = False
        try:
            response = await call
            ok = True
            return response
        finally:
            self._metrics.idp_call(time.perf_counter() - started, ok)

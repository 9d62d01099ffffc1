"""The IdP side of ``idp-authorizer doctor``: discovery, key set, introspection endpoint, clock.

Each check fetches what the authorizer would fetch: the URLs come from the provider's driver
(:func:`idp_authorizer.aws.registry.endpoints`, the derivation the runtime builds with), fetched with
the same URL rules and timeouts. What it sees becomes :class:`~idp_authorizer.tools.report.Finding`
values. Nothing here prints or returns a token or a secret; URLs are shown without credentials or query.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from email.utils import parsedate_to_datetime
from typing import TYPE_CHECKING, Any

from idp_authorizer.aws.registry import endpoints
from idp_authorizer.aws.settings import ProviderConfig
from idp_authorizer.core.clock import Clock
from idp_authorizer.core.errors import ConfigurationError, UpstreamUnavailable
from idp_authorizer.infra.http import HttpClient, HttpResponse, check_url
from idp_authorizer.jose.jwk import ASYMMETRIC_ALGORITHMS, build_key_set
from idp_authorizer.tools.report import Finding, note, ok, problem, shown_url

if TYPE_CHECKING:
    from providers.driver import Endpoints

PROBE_TOKEN = "idp-authorizer-doctor-probe-not-a-token"  # noqa: S105 - a made-up token, on purpose
SKEW_NOTE_SECONDS = 5.0
SKEW_PROBLEM_SECONDS = 30.0


class Checkup:
    """Checks one configured provider. ``var(field)`` names the variable that sets a field."""

    def __init__(
        self,
        config: ProviderConfig,
        index: int | None,
        http: HttpClient,
        *,
        loopback: bool,
        leeway: float,
        clock: Clock,
    ) -> None:
        self.config = config
        self.topic = f"[{config.label}]"
        self._index = index
        self._http = http
        self._loopback = loopback
        self._leeway = leeway
        self._clock = clock
        self._clock_finding: Finding | None = None
        self.findings: list[Finding] = []

    def var(self, field: str) -> str:
        return f"IDP_{field.upper()}" if self._index is None else f"IDP_PROVIDERS[{self._index}].{field}"

    async def run(self) -> list[Finding]:
        where = endpoints(self.config)  # what the provider fetches, derived by its driver as at run time
        document: Mapping[str, Any] = {}
        if where.discovery is not None and where.issuer is not None:
            document = await self.discovery(where)
        url = where.url or document.get(where.fetches)
        if where.fetches == "introspection_endpoint":
            await self.introspection(url if isinstance(url, str) else None)
        else:
            await self.key_set(url if isinstance(url, str) else None)
        return self.findings + ([self._clock_finding] if self._clock_finding else [])

    async def discovery(self, where: Endpoints) -> Mapping[str, Any]:
        """The discovery document (``{issuer}/.well-known/openid-configuration``); its ``issuer`` must equal ours."""
        issuer, url = where.issuer, where.discovery
        assert url is not None
        # A preset that derives its key set URL never reads discovery at run time: there it is a cross-check.
        response = await self._fetch(url, "discovery", where.issuer_setting, required=where.url is None)
        if response is None:
            return {}
        found = response.body.get("issuer")
        if found != issuer:
            self._add(
                problem(
                    f"{self.topic} discovery",
                    f"issuer mismatch: the document at {shown_url(url)} says "
                    f"{found!r}, the authorizer expects {issuer!r}; every token would be refused",
                    f"set {self.var('issuer')} to exactly {found!r} (trailing slash included) "
                    "if that is your IdP, else point it at the right IdP",
                )
            )
        else:
            self._add(ok(f"{self.topic} discovery", f"{shown_url(url)}: issuer matches"))
        return response.body

    async def key_set(self, url: str | None) -> None:
        topic = f"{self.topic} key set"
        if url is None:
            self._add(problem(topic, "the discovery document names no jwks_uri", f"set {self.var('jwks_url')}"))
            return
        response = await self._fetch(url, "key set", "jwks_url")
        if response is None:
            return
        keys = response.body.get("keys")
        if not isinstance(keys, list):
            self._add(
                problem(topic, f"{shown_url(url)} is not a JWK Set (no keys list)", f"check {self.var('jwks_url')}")
            )
            return
        self._judge_keys(topic, response.body, [k for k in keys if isinstance(k, Mapping)])

    def _judge_keys(self, topic: str, document: Mapping[str, Any], keys: list[Mapping[str, Any]]) -> None:
        allowed = self.config.algorithms
        variable = f"{self.var('algorithms')}={','.join(allowed)}"
        usable = build_key_set(document, allowed)
        types = ", ".join(f"{n} {kty}" for kty, n in sorted(Counter(str(k.get("kty")) for k in keys).items()))
        suits = sorted(
            {alg for key in build_key_set(document, ASYMMETRIC_ALGORITHMS).values() for alg in key.verifiers}
        )
        if not usable:
            self._add(
                problem(
                    topic,
                    f"no published key can verify {variable} (published: {types or 'no keys'}; "
                    f"they suit {', '.join(suits) or 'nothing allowed'}): every token would be refused",
                    f"set {self.var('algorithms')} to the algorithm your IdP signs access tokens with"
                    + (f", e.g. {_suggest(allowed, suits)}" if suits else ""),
                )
            )
            return
        per_alg = {alg: sorted(kid for kid, key in usable.items() if alg in key.verifiers) for alg in allowed}
        summary = "; ".join(f"{alg}: {', '.join(kids)}" for alg, kids in per_alg.items() if kids)
        self._add(ok(topic, f"{len(keys)} keys published ({types}); usable {summary}"))
        unused = [alg for alg, kids in per_alg.items() if not kids]
        if unused:
            self._add(note(topic, f"no published key for {', '.join(unused)}: tokens signed with it are refused"))

    async def introspection(self, url: str | None) -> None:
        """POST a made-up token: a working endpoint that accepts our credentials says ``active: false``."""
        topic = f"{self.topic} introspection"
        if url is None:
            self._add(
                problem(
                    topic,
                    "no introspection endpoint (not configured, none in discovery)",
                    f"set {self.var('introspection_url')}",
                )
            )
            return
        config = self.config
        assert config.client_id is not None and config.client_secret is not None
        from idp_authorizer.infra.client_auth import ClientCredentials

        form = {"token": PROBE_TOKEN, "token_type_hint": "access_token"}
        secret = config.client_secret.get_secret_value()
        headers = ClientCredentials(config.client_id, secret, config.client_auth).apply(form)
        response = await self._fetch(url, "introspection", "introspection_url", form=form, headers=headers)
        if response is not None:
            self._judge_probe(topic, url, response.body)

    def _judge_probe(self, topic: str, url: str, body: Mapping[str, Any]) -> None:
        if body.get("active") is False:
            self._add(
                ok(
                    topic,
                    f"{shown_url(url)} accepted the client credentials ({self.config.client_auth}); "
                    "a made-up token is inactive, as it should be",
                )
            )
        else:
            self._add(
                problem(
                    topic,
                    f"{shown_url(url)} did not answer active=false for a made-up token",
                    f"check that {self.var('introspection_url')} is an RFC 7662 endpoint",
                )
            )

    async def _fetch(
        self,
        url: str,
        what: str,
        field: str,
        *,
        form: Mapping[str, str] | None = None,
        headers: Mapping[str, str] | None = None,
        required: bool = True,
    ) -> HttpResponse | None:
        topic = f"{self.topic} {what}"
        try:
            check_url(url, self.var(field), allow_loopback_http=self._loopback)
            if form is None:
                response = await self._http.get_json(url)
            else:
                response = await self._http.post_form(url, form, headers)
        except ConfigurationError as exc:
            self._add(
                problem(
                    topic,
                    exc.description,
                    "use an https:// URL (http:// only to 127.0.0.1 or localhost, with IDP_ALLOW_LOOPBACK_HTTP=true)",
                )
            )
            return None
        except UpstreamUnavailable as exc:
            if not required:
                unchecked = "not read at run time (the key set URL is derived), so the issuer is not cross-checked"
                self._add(note(topic, f"{shown_url(url)}: {exc.code}; {unchecked}"))
                return None
            self._add(problem(topic, f"{shown_url(url)}: {exc.code} ({exc.description})", _fetch_fix(exc.code, self)))
            return None
        self._check_clock(response.headers)
        return response

    def _check_clock(self, headers: Mapping[str, str]) -> None:
        """Compare our clock with the IdP's ``Date`` header (1-second resolution) once per provider."""
        if self._clock_finding is None:
            self._clock_finding = self._judge_clock(headers)

    def _judge_clock(self, headers: Mapping[str, str]) -> Finding:
        topic = f"{self.topic} clock"
        date = next((value for name, value in headers.items() if name.lower() == "date"), None)
        try:
            # Date has 1-second resolution (truncated): compare with the middle of that second.
            skew = self._clock() - parsedate_to_datetime(date).timestamp() - 0.5 if date else None
        except (TypeError, ValueError):
            skew = None
        if skew is None:
            return note(topic, "the IdP sent no usable Date header; clock skew not checked")
        if abs(skew) > max(SKEW_PROBLEM_SECONDS, self._leeway):
            return problem(
                topic,
                f"this machine's clock is {round(skew):+d} s off the IdP's Date header: "
                "tokens look expired or not yet valid",
                "synchronise the clock (NTP); IDP_LEEWAY_SECONDS tolerates a few seconds of skew",
            )
        level = note if abs(skew) > SKEW_NOTE_SECONDS else ok
        return level(topic, f"{round(skew):+d} s from the IdP's Date header")

    def _add(self, finding: Finding) -> None:
        self.findings.append(finding)


def _suggest(allowed: Sequence[str], suits: Sequence[str]) -> str:
    """The published algorithm closest to what was configured (same family first), else the common RS256."""
    family = [alg for alg in suits if any(alg[:2] == want[:2] for want in allowed)]
    return (family or [alg for alg in ("RS256", "ES256", "PS256", "EdDSA") if alg in suits] or list(suits))[0]


def _fetch_fix(code: str, checkup: Checkup) -> str:
    if code in ("http_401", "http_403", "http_400") and checkup.config.provider == "introspection":
        return (
            f"check {checkup.var('client_id')}, {checkup.var('client_secret')} and {checkup.var('client_auth')} "
            "(client_secret_basic or client_secret_post, as the client is registered)"
        )
    if code.startswith("http_"):
        return "check the URL: the IdP answered with an error status"
    return "check the URL, and that this machine (and the Lambda, through its VPC or NAT) can reach the IdP"

"""Settings from ``IDP_*`` environment variables, read and validated once at cold start.

The variable names are the public interface (see README). A bad value raises one
:class:`ConfigurationError` naming the variable; the handler logs it once and fails closed.
Drivers never read ``os.environ``: they receive these values through their constructors.
"""

from __future__ import annotations

import json
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from idp_authorizer.core.binding import DPOP_ALGORITHMS
from idp_authorizer.core.claims import ClaimPath, claim_path, context_claim
from idp_authorizer.core.errors import ConfigurationError, Problem, Reason
from idp_authorizer.core.events import TokenSource
from idp_authorizer.core.responses import IDENTITY_KEYS
from idp_authorizer.core.rules import RouteTable
from idp_authorizer.infra.client_auth import ClientAuthMethod
from idp_authorizer.jose.issuer import TENANT

ProviderKind = Literal["auth0", "cognito", "entra", "oidc", "jwks", "introspection"]
ASYMMETRIC = (
    "RS256",
    "RS384",
    "RS512",
    "PS256",
    "PS384",
    "PS512",
    "ES256",
    "ES384",
    "ES512",
    "EdDSA",
    "Ed25519",
)

CommaList = Annotated[tuple[str, ...], NoDecode]


def _split(value: object) -> object:
    """Accept ``a,b c`` (commas or spaces) or a JSON list for list-valued variables.

    Every entry is a non-empty string, whichever the form: ``[""]`` in ``IDP_AUDIENCE`` would accept
    tokens with an empty ``aud``.
    """
    items = value
    if isinstance(value, str):
        text = value.strip()
        items = json.loads(text) if text.startswith("[") else text.replace(",", " ").split()
    if not isinstance(items, list | tuple):
        return items
    if not all(isinstance(item, str) and item.strip() for item in items):
        raise ValueError("every entry must be a non-empty string")
    return tuple(item.strip() for item in items)


def _asymmetric(value: tuple[str, ...]) -> tuple[str, ...]:
    # The refused values are not echoed: a secret pasted into the wrong variable must not reach the logs.
    refused = [alg for alg in value if alg not in ASYMMETRIC]
    if refused or not value:
        raise ValueError(f"only asymmetric algorithms are accepted ({', '.join(ASYMMETRIC)}); {len(refused)} refused")
    return value


PRESET_PREFIXES = ("auth0", "cognito", "entra")
"""Kinds whose own variables start with their name (``IDP_COGNITO_*``): set for another kind, they are a mistake."""


class ProviderFields(BaseModel):
    """What configures one provider: the ``IDP_*`` single-provider variables, or the keys of one
    ``IDP_PROVIDERS`` entry (lower case, no prefix). Each kind reads its own (see :meth:`ProviderConfig._complete`)."""

    auth0_domain: str | None = None
    cognito_user_pool_id: str | None = None
    cognito_client_ids: CommaList = ()
    cognito_token_use: Literal["access", "id"] = "access"  # noqa: S105 - a token kind, not a secret
    cognito_issuer_type: Literal["original", "updated"] = "original"
    entra_tenant_id: str | None = None
    entra_token_version: Literal["1", "2"] = "2"  # noqa: S105 - a version, not a secret
    entra_allowed_tenants: CommaList = ()
    issuer: str | None = None
    allowed_tenants: CommaList = ()
    """The tenants of an ``issuer`` template with ``{tenantid}`` (other multi-tenant IdPs than Entra)."""
    tenant_claim: str = "tid"
    jwks_url: str | None = None
    audience: CommaList = ()
    client_ids: CommaList = ()
    algorithms: CommaList = ("RS256",)
    introspection_url: str | None = None
    client_id: str | None = None
    client_secret: SecretStr | None = None
    client_auth: ClientAuthMethod = "client_secret_basic"
    required_typ: str | None = None

    _lists = field_validator(
        "audience",
        "algorithms",
        "client_ids",
        "cognito_client_ids",
        "entra_allowed_tenants",
        "allowed_tenants",
        mode="before",
    )(_split)

    @field_validator("cognito_issuer_type", mode="before")
    @classmethod
    def _lower(cls, value: object) -> object:
        return value.lower() if isinstance(value, str) else value  # the API spells it ORIGINAL | UPDATED

    @field_validator("entra_token_version", mode="before")
    @classmethod
    def _version(cls, value: object) -> object:
        return str(value) if isinstance(value, int) and not isinstance(value, bool) else value

    @field_validator("algorithms")
    @classmethod
    def _asymmetric_only(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        return _asymmetric(value)


class ProviderConfig(ProviderFields):
    """One identity provider: the ``IDP_*`` single-provider variables or one ``IDP_PROVIDERS`` entry."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    provider: ProviderKind
    name: str | None = None

    @model_validator(mode="after")
    def _complete(self) -> ProviderConfig:
        needs = {
            "auth0": ("auth0_domain", "audience"),
            "cognito": ("cognito_user_pool_id", "cognito_client_ids"),
            "entra": ("entra_tenant_id", "audience"),
            "oidc": ("issuer", "audience"),
            "jwks": ("jwks_url", "issuer", "audience"),
            "introspection": ("client_id", "client_secret"),
        }[self.provider]
        missing = [name for name in needs if not getattr(self, name)]
        if self.provider == "introspection" and not (self.introspection_url or self.issuer):
            missing.append("introspection_url (or issuer, for discovery)")
        if missing:
            variables = tuple(f"IDP_{name.split()[0].upper()}" for name in missing)
            message = f"provider {self.provider!r} needs {', '.join(missing)} ({', '.join(variables)})"
            raise MissingSettingsError(message, variables)
        template = self.issuer is not None and TENANT in self.issuer
        if template and not (self.provider == "jwks" or (self.provider == "oidc" and self.jwks_url)):
            # A template names no one discovery document and no introspection issuer: keys must come from a URL.
            raise ValueError(f"an IDP_ISSUER template with {TENANT} needs IDP_PROVIDER=jwks or oidc with IDP_JWKS_URL")
        defaults = ProviderFields.model_fields
        # Another kind's variables, or the generic issuer variables a preset derives itself: set, they would be ignored.
        kind = self.provider
        foreign = [name for name in defaults if name.split("_")[0] in PRESET_PREFIXES and not name.startswith(kind)]
        derived = ("issuer", "allowed_tenants", "tenant_claim") if kind in PRESET_PREFIXES else ()
        strays = [name for name in (*foreign, *derived) if getattr(self, name) != defaults[name].default]
        if strays:
            names = ", ".join(f"IDP_{name.upper()}" for name in strays)
            raise ValueError(f"{names} do not configure provider {self.provider!r} (it would ignore them): unset them")
        return self

    @property
    def label(self) -> str:
        return self.name or self.provider


class Settings(BaseSettings, ProviderFields):
    """Every ``IDP_*`` variable. Defaults are the safe choice."""

    model_config = SettingsConfigDict(env_prefix="IDP_", frozen=True, extra="ignore")

    provider: ProviderKind | None = None
    providers: Annotated[list[ProviderConfig] | None, NoDecode] = None

    token_sources: Annotated[tuple[TokenSource, ...], NoDecode] = (TokenSource("header", "Authorization"),)
    response: Literal["auto", "iam", "simple"] = "auto"
    required_scopes: CommaList = ()
    routes: Annotated[dict[str, Any], NoDecode] = Field(default_factory=dict)
    routes_default: Literal["deny", "allow"] = "deny"
    routes_url: str | None = None
    """Where the route rules are read (the same JSON as ``IDP_ROUTES``): https, or the AppConfig extension."""
    routes_reload_seconds: float = Field(60.0, ge=1, le=86400)
    context_claims: CommaList = ()
    usage_identifier_claim: str | None = None
    inject_context: bool = False
    """``authnCtx`` in the authorizer context: base64 of the verified claims (or introspection answer)."""

    cache_url: str = "memory://"
    cache_max_entries: int = Field(10_000, ge=1, le=10_000_000)
    token_cache_seconds: float = Field(300.0, ge=0)
    introspection_cache_seconds: float = Field(60.0, ge=0)
    negative_cache_seconds: float = Field(10.0, ge=0)

    http_timeout_seconds: float = Field(3.0, gt=0, le=30)
    http_connect_timeout_seconds: float = Field(1.0, gt=0, le=30)
    http_max_response_bytes: int = Field(512 * 1024, ge=1024)
    ca_bundle: str | None = None
    """PEM file of the certificate authorities trusted for TLS to the IdP, instead of the system store."""
    jwks_max_age_seconds: float = Field(3600.0, gt=0)
    jwks_cooldown_seconds: float = Field(30.0, ge=0)
    jwks_stale_seconds: float = Field(6 * 3600.0, ge=0)
    leeway_seconds: float = Field(0.0, ge=0, le=300)
    max_token_bytes: int = Field(10 * 1024, ge=64)
    allow_loopback_http: bool = False
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"] = "INFO"
    log_decisions: Literal["all", "refusals", "none"] = "all"
    metrics: bool = False
    """One CloudWatch Embedded Metric Format line per invocation (see :mod:`idp_authorizer.infra.metrics`)."""
    metrics_namespace: str = Field("IdpAuthorizer", pattern=r"^[A-Za-z0-9 ._#:/-]{1,255}$")
    prefetch: bool | None = None
    """Fetch every provider's discovery and keys at initialization; unset: by ``AWS_LAMBDA_INITIALIZATION_TYPE``
    (see :mod:`idp_authorizer.aws.initialization`)."""

    dpop_algorithms: CommaList = DPOP_ALGORITHMS
    dpop_max_age_seconds: float = Field(60.0, gt=0, le=3600)
    require_sender_constrained: bool = False

    _settings_lists = field_validator("required_scopes", "context_claims", "dpop_algorithms", mode="before")(_split)
    _dpop_asymmetric = field_validator("dpop_algorithms")(_asymmetric)

    @field_validator("log_level", mode="before")
    @classmethod
    def _upper(cls, value: object) -> object:
        return value.upper() if isinstance(value, str) else value

    @field_validator("metrics_namespace")
    @classmethod
    def _not_aws(cls, value: str) -> str:
        if value.startswith("AWS/"):
            raise ValueError("the AWS/ namespace prefix is reserved for AWS services")
        return value

    @field_validator("context_claims")
    @classmethod
    def _context_claims(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        keys = [context_claim(spec).name for spec in value]  # raises ValueError naming a bad name
        taken = sorted(set(keys) & IDENTITY_KEYS) + sorted({key for key in keys if keys.count(key) > 1})
        if taken:
            # The identity keys come from what was verified; a claim must not pass for them.
            raise ValueError(f"context keys {', '.join(taken)} are the authorizer's own or given twice")
        return value

    @field_validator("usage_identifier_claim")
    @classmethod
    def _usage_claim(cls, value: str | None) -> str | None:
        if value is not None:
            claim_path(value)
        return value

    @field_validator("token_sources", mode="before")
    @classmethod
    def _sources(cls, value: object) -> object:
        if isinstance(value, str):
            sources = tuple(TokenSource.parse(part) for part in value.split(",") if part.strip())
            if not sources:
                raise ValueError("needs at least one source such as header:Authorization")
            return sources
        return value

    @field_validator("providers", "routes", mode="before")
    @classmethod
    def _json(cls, value: object) -> object:
        # Decoded here, not by pydantic-settings, so a bad value is a validation error naming its variable.
        if not isinstance(value, str):
            return value
        try:
            return json.loads(value)
        except ValueError:
            raise ValueError("is not valid JSON") from None

    @field_validator("routes")
    @classmethod
    def _routes(cls, value: dict[str, Any]) -> dict[str, Any]:
        RouteTable.build(value)  # raises ValueError naming the bad pattern
        return value

    @model_validator(mode="after")
    def _one_way_to_name_providers(self) -> Settings:
        if self.providers is not None and self.provider is not None:
            raise ValueError("set IDP_PROVIDER (one provider) or IDP_PROVIDERS (several), not both")
        if self.providers is None and self.provider is None:
            raise MissingSettingsError("IDP_PROVIDER (or IDP_PROVIDERS) is required", ("IDP_PROVIDER",))
        if self.providers == []:
            raise ValueError("IDP_PROVIDERS is empty")
        return self

    def provider_configs(self) -> tuple[ProviderConfig, ...]:
        """The configured providers; the single-provider variables are shorthand for a list of one."""
        if self.providers is not None:
            return tuple(self.providers)
        fields = {"provider", *ProviderFields.model_fields}
        return (ProviderConfig.model_validate({name: getattr(self, name) for name in fields}),)

    def claim_paths(self) -> tuple[tuple[ClaimPath, ...], ClaimPath | None]:
        """``IDP_CONTEXT_CLAIMS`` and ``IDP_USAGE_IDENTIFIER_CLAIM`` as claim paths (validated when read)."""
        usage = self.usage_identifier_claim
        return tuple(map(context_claim, self.context_claims)), None if usage is None else claim_path(usage)

    def route_table(self) -> RouteTable:
        return RouteTable.build(self.routes, self.required_scopes, allow_unlisted=self.routes_default == "allow")


def load_settings() -> Settings:
    """Read and validate the settings; raise one :class:`ConfigurationError` naming each bad variable."""
    try:
        settings = Settings()
        settings.provider_configs()
    except ValidationError as exc:
        raise ConfigurationError(Reason.CONFIGURATION_ERROR, problems=_problems(exc)) from None
    except MissingSettingsError as exc:
        raise ConfigurationError(Reason.CONFIGURATION_ERROR, problems=(Problem(str(exc), exc.variables),)) from None
    except ValueError as exc:
        raise ConfigurationError(Reason.CONFIGURATION_ERROR, str(exc)) from None
    return settings


class MissingSettingsError(ValueError):
    """Variables a configuration needs and lacks, named as data."""

    def __init__(self, message: str, variables: tuple[str, ...]) -> None:
        super().__init__(message)
        self.variables = variables


def _problems(exc: ValidationError) -> tuple[Problem, ...]:
    """Name each bad variable with pydantic's message, never the value (it may be a secret)."""
    problems = []
    for error in exc.errors(include_input=False, include_url=False):
        loc = [str(part) for part in error["loc"]]
        if loc and loc[0] not in Settings.model_fields:
            loc = []
        variable = f"IDP_{loc[0].upper()}" if loc else "IDP_* settings"
        where = "".join(f"[{p}]" if p.isdigit() else f".{p}" for p in loc[1:])
        cause = error.get("ctx", {}).get("error")
        missing = cause.variables if isinstance(cause, MissingSettingsError) else ()
        problems.append(Problem(f"{variable}{where}: {error['msg']}", missing))
    return tuple(problems)

"""Amazon Cognito user pools as a preset of the JWT verifier (``IDP_PROVIDER=cognito``).

Pool ``{region}_{id}`` issues tokens with ``iss`` ``https://cognito-idp.{region}.amazonaws.com/{pool}``
and publishes its keys at ``{iss}/.well-known/jwks.json``
(https://docs.aws.amazon.com/cognito/latest/developerguide/amazon-cognito-user-pools-using-tokens-verifying-a-jwt.html);
a pool whose issuer configuration is ``UPDATED`` (multi-Region) issues ``https://issuer-cognito-idp.{region}...``
instead (``IDP_COGNITO_ISSUER_TYPE=updated``; API_IssuerConfigurationType in the user pools API reference).
A Cognito access token carries no ``aud``: its app client is ``client_id``, so the preset checks the
client instead (``IDP_COGNITO_CLIENT_IDS``), and ``aud`` only when ``IDP_AUDIENCE`` is set (tokens of
resource-bound clients carry one). ``token_use`` must be ``IDP_COGNITO_TOKEN_USE`` (``access`` by
default); an ID token names its client in ``aud``. Groups arrive in ``cognito:groups`` (a list), usable
in route rules; machine-to-machine tokens have ``sub`` equal to the client id and scopes such as
``orders-api/read``.
"""

from __future__ import annotations

import re

from idp_authorizer.core.errors import ConfigurationError, Reason
from idp_authorizer.jose.issuer import Issuers
from idp_authorizer.jose.jwt import ClaimRules
from providers.discovery import discovery_url
from providers.driver import Endpoints, ProviderOptions
from providers.jwks import jwt_driver

_POOL = re.compile(r"(?P<region>[a-z]{2}(?:-[a-z]+)+-\d{1,2})_[0-9A-Za-z]{1,55}")


def cognito_issuer(pool_id: str, issuer_type: str = "original") -> str:
    """The issuer of pool ``pool_id`` (its ``IssuerConfiguration`` type: ``original``, or ``updated`` at
    ``issuer-cognito-idp.{region}``); raises :class:`ConfigurationError` for a malformed pool id."""
    found = _POOL.fullmatch(pool_id.strip())
    if found is None:
        raise ConfigurationError(
            Reason.CONFIGURATION_ERROR,
            "IDP_COGNITO_USER_POOL_ID must be a user pool id such as eu-west-1_AbC123 (region, '_', id)",
        )
    host = "issuer-cognito-idp" if issuer_type == "updated" else "cognito-idp"
    return f"https://{host}.{found['region']}.amazonaws.com/{found[0]}"


def endpoints(config: ProviderOptions) -> Endpoints:
    """Everything from ``IDP_COGNITO_USER_POOL_ID``; ``IDP_JWKS_URL`` overrides the key set URL only."""
    assert config.cognito_user_pool_id is not None
    issuer = cognito_issuer(config.cognito_user_pool_id, config.cognito_issuer_type)
    url = config.jwks_url or f"{issuer}/.well-known/jwks.json"
    discovery = discovery_url(issuer)
    return Endpoints(issuer, "jwks_uri", url=url, discovery=discovery, issuer_setting="cognito_user_pool_id")


def claim_rules(config: ProviderOptions, where: Endpoints, leeway: float) -> ClaimRules:
    """``iss`` the pool, ``token_use`` as configured, the client (``client_id``, or an ID token's ``aud``)
    one of ``IDP_COGNITO_CLIENT_IDS``, and ``aud`` one of ``IDP_AUDIENCE`` when that is set."""
    assert where.issuer is not None
    if config.client_ids:
        raise ConfigurationError(
            Reason.CONFIGURATION_ERROR, "IDP_CLIENT_IDS: the Cognito preset reads IDP_COGNITO_CLIENT_IDS instead"
        )
    id_token = config.cognito_token_use == "id"  # noqa: S105 - a token kind, not a secret
    return ClaimRules(
        Issuers(where.issuer),
        frozenset(config.audience),
        leeway,
        clients=frozenset(config.cognito_client_ids),
        client_claims=("aud",) if id_token else ("client_id",),
        token_use=config.cognito_token_use,
    )


DRIVER = jwt_driver(endpoints, claim_rules)

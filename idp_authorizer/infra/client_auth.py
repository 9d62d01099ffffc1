"""OAuth 2.0 client authentication (RFC 6749 section 2.3.1): how the authorizer proves who it is to the IdP.

Used by the introspection provider (RFC 7662 section 2.1) and by the doctor's introspection probe.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass, field
from typing import Literal
from urllib.parse import quote_plus

ClientAuthMethod = Literal["client_secret_basic", "client_secret_post"]


@dataclass(frozen=True, slots=True)
class ClientCredentials:
    """How the authorizer authenticates to the introspection endpoint (RFC 7662 section 2.1)."""

    client_id: str
    client_secret: str = field(repr=False)
    method: ClientAuthMethod = "client_secret_basic"

    def apply(self, form: dict[str, str]) -> dict[str, str]:
        """Authenticate one request: returns the headers to send; ``client_secret_post`` adds to ``form``."""
        if self.method == "client_secret_post":
            form["client_id"] = self.client_id
            form["client_secret"] = self.client_secret
            return {}
        # RFC 6749 section 2.3.1: id and secret are form-urlencoded first, then joined and base64-encoded;
        # servers decode them that way, so a ':' or '%' in a secret would otherwise fail or mislead.
        pair = f"{quote_plus(self.client_id)}:{quote_plus(self.client_secret)}"
        return {"Authorization": "Basic " + base64.b64encode(pair.encode()).decode("ascii")}

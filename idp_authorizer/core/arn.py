"""Partition-safe parsing of API Gateway ``methodArn`` / ``routeArn`` values.

``arn:{partition}:execute-api:{region}:{account}:{apiId}/{stage}/{verb}/{path}``
(https://docs.aws.amazon.com/apigateway/latest/developerguide/api-gateway-control-access-using-iam-policies-to-invoke-api.html).
WebSocket ``$connect`` ARNs have ``{apiId}/{stage}/$connect`` with no verb.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

# Account and API id: any non-empty segment API Gateway (or a local emulator) could put there:
# serverless-offline sends `random-account-id` / `random-api-id`, SAM local `123456789012`.
# Never `*` or `?`: they are IAM wildcards, and every policy resource is built on this prefix, so a
# wildcard here would widen each Allow to other accounts or APIs. The stage keeps `*` (console tests).
_ARN = re.compile(
    r"arn:(?P<partition>aws(?:-[a-z]+)*):execute-api:(?P<region>[a-z0-9-]+):(?P<account>[^:/*?\s]+):"
    r"(?P<api>[^:/*?\s]+)/(?P<stage>[^/\s]+)/(?P<rest>[^\s]*)"
)


@dataclass(frozen=True, slots=True)
class ExecuteApiArn:
    """The parts of an execute-api ARN; ``verb`` and ``path`` are as the request used them."""

    partition: str
    region: str
    account: str
    api_id: str
    stage: str
    verb: str
    path: str
    value: str
    """The ARN exactly as the event carried it."""

    @property
    def api_prefix(self) -> str:
        """``arn:...:{apiId}/{stage}``: the part every resource of this API stage shares."""
        return f"arn:{self.partition}:execute-api:{self.region}:{self.account}:{self.api_id}/{self.stage}"

    def resource(self, verb: str, path: str) -> str:
        """The resource ARN for ``verb`` and ``path`` (without its leading slash); ``$connect`` has no path."""
        return f"{self.api_prefix}/{verb}" if verb.startswith("$") else f"{self.api_prefix}/{verb}/{path}"


_PARSED: dict[str, ExecuteApiArn | None] = {}
_PARSED_MAX = 4096


def parse_arn(value: object) -> ExecuteApiArn | None:
    """Parse ``value`` as an execute-api ARN; ``None`` when it is not one.

    A warm container sees the same few ARNs again and again (one per route), so results are
    remembered; the memo is bounded and simply starts over when full.
    """
    if not isinstance(value, str) or len(value) > 2048:
        return None
    try:
        return _PARSED[value]
    except KeyError:
        pass
    if len(_PARSED) >= _PARSED_MAX:
        _PARSED.clear()
    parsed = _PARSED[value] = _parse(value)
    return parsed


def _parse(value: str) -> ExecuteApiArn | None:
    # Printable ASCII only: fullwidth digits or a NUL have no place in an ARN (and \d, \s are Unicode-aware).
    if not (value.isascii() and value.isprintable()):
        return None
    match = _ARN.fullmatch(value)
    if match is None:
        return None
    verb, _, path = match["rest"].partition("/")
    return ExecuteApiArn(
        match["partition"], match["region"], match["account"], match["api"], match["stage"], verb, path, value
    )

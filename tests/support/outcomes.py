"""What API Gateway sees of an authorizer's answer, named once for every test.

:func:`outcome_of` (and :func:`outcome_of_async`) name the outcome of one call and fail the test on
anything outside the contract; :func:`answer` returns the handler's whole response, or ``"401"`` for
the deliberate ``Exception("Unauthorized")``, for tests that compare responses whole.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from idp_authorizer import handler
from idp_authorizer.core.errors import AuthorizerUnavailable


def answer(event: dict[str, Any]) -> dict[str, Any] | str:
    """The handler's answer, or ``"401"`` for the exact ``Exception("Unauthorized")`` API Gateway expects."""
    try:
        return handler.handler(event, None)
    except Exception as exc:
        assert type(exc) is Exception and str(exc) == "Unauthorized", repr(exc)
        return "401"


def outcome_of(call: Callable[[], Any]) -> str:
    """Run one authorizer call and name its outcome; anything outside the contract fails the test.

    ``allow`` (Allow policy or ``isAuthorized: true``), ``deny`` (explicit Deny policy),
    ``unauthorized`` (exactly ``Exception("Unauthorized")``), ``false`` (``{"isAuthorized": False}``),
    ``unavailable`` (:class:`AuthorizerUnavailable`, the fail-closed 500).
    """
    try:
        response = call()
    except AuthorizerUnavailable:
        return "unavailable"
    except Exception as exc:
        assert type(exc) is Exception and exc.args == ("Unauthorized",), f"unexpected {exc!r}"
        return "unauthorized"
    return classify_response(response)


async def outcome_of_async(awaitable: Awaitable[Any]) -> str:
    try:
        response = await awaitable
    except AuthorizerUnavailable:
        return "unavailable"
    except Exception as exc:
        assert type(exc) is Exception and exc.args == ("Unauthorized",), f"unexpected {exc!r}"
        return "unauthorized"
    return classify_response(response)


def classify_response(response: object) -> str:
    assert isinstance(response, dict), f"response is not an object: {response!r}"
    if "isAuthorized" in response:
        assert response["isAuthorized"] in (True, False), response
        assert set(response) <= {"isAuthorized", "context"}, response
        return "allow" if response["isAuthorized"] is True else "false"
    statements = response["policyDocument"]["Statement"]
    assert isinstance(response["principalId"], str) and response["principalId"], response
    assert response["policyDocument"]["Version"] == "2012-10-17"
    effects = {statement["Effect"] for statement in statements}
    assert effects <= {"Allow", "Deny"}, response
    return "allow" if "Allow" in effects else "deny"

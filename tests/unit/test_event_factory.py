"""The tests' one event factory (tests/support/event_factory.py) builds what the product reads as each shape."""

import pytest
from event_factory import ARN, BUILDERS, WS, shapes

from idp_authorizer.core.errors import InvalidToken
from idp_authorizer.core.events import parse_event

TOKEN = "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJ4In0.c2ln"


@pytest.mark.parametrize("shape", sorted(BUILDERS))
def test_each_builder_is_read_as_its_shape_with_its_token_and_arn(shape):
    request = parse_event(BUILDERS[shape](TOKEN))
    assert (request.shape, request.token) == (shape, TOKEN)
    assert request.arn is not None
    assert request.arn.value == (f"{WS}/$connect" if shape == "websocket" else ARN)


@pytest.mark.parametrize("shape", sorted(BUILDERS))
def test_each_builder_without_a_token_carries_none(shape):
    event = shapes(None)[shape]
    if shape == "rest-token":  # API Gateway's empty authorizationToken: malformed, a 401
        with pytest.raises(InvalidToken):
            parse_event(event)
    else:
        assert parse_event(event).token is None

"""The API behind the authorizers: 200 with the authorizer's context echoed (tests only)."""

import json


def handler(event, context):
    authorizer = (event.get("requestContext") or {}).get("authorizer")
    return {
        "statusCode": 200,
        "headers": {"Content-Type": "application/json"},
        "body": json.dumps({"authorizer": authorizer}),
    }

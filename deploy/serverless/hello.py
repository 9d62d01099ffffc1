"""Sample backend for the idp_authorizer Serverless Framework example: echoes the authorizer context."""

import json


def handler(event, context):
    # REST (payload 1.0): requestContext.authorizer is the authorizer context (+ principalId).
    # HTTP API (payload 2.0): requestContext.authorizer.lambda is the authorizer context.
    request_context = event.get("requestContext") or {}
    return {
        "statusCode": 200,
        "headers": {"content-type": "application/json"},
        "body": json.dumps(
            {
                "route": event.get("routeKey") or f"{event.get('httpMethod')} {event.get('resource')}",
                "authorizer": request_context.get("authorizer"),
            }
        ),
    }

# idp_authorizer: Terraform example for an HTTP API protected by the authorizer (payload 2.0).
# The same set-up as deploy/cloudformation/http-api.yaml, resource for resource.
#
#   make the zip first (the package script writes dist/idp-authorizer-lambda.zip), then
#   cd deploy/terraform && terraform init && \
#     terraform apply -var 'idp_issuer=https://issuer.example.com/' -var 'idp_audience=api://pets'
#
# Names carry the workspace (terraform workspace new staging), so one account and region can hold
# several copies; every log group it writes to is managed here (retention, deleted on destroy).
#
# Pitfalls avoided (see deploy/README.md):
#   - the authorizer's aws_lambda_permission exists (without it every request is a 500);
#   - no "Bearer" regex anywhere (the product accepts "Bearer x", "bearer x" and a bare token);
#   - $context.routeKey is part of the identity sources, so a cached per-route decision is never
#     replayed on another route;
#   - IDP_RESPONSE follows enable_simple_responses, so the function answers in the shape the
#     authorizer expects (simple response vs IAM policy).

terraform {
  # 1.9: variable validations that read other variables (the provider's required settings).
  required_version = ">= 1.9.0"
  required_providers {
    aws = {
      source  = "hashicorp/aws"
      version = ">= 5.0"
    }
    archive = {
      source  = "hashicorp/archive"
      version = ">= 2.4"
    }
  }
}

# Region and credentials come from the usual AWS_* environment variables or profile.
provider "aws" {}

data "aws_partition" "current" {}

locals {
  # Unique per workspace: two applies in one account and region never fight over a name.
  name = "${var.name}-${terraform.workspace}"

  # Built by the package script; override with -var lambda_zip_path=... for a zip elsewhere.
  lambda_zip_path = coalesce(var.lambda_zip_path, "${path.module}/../../dist/idp-authorizer-lambda.zip")

  # Settings every deployment sets.
  idp_required_environment = {
    IDP_PROVIDER             = var.idp_provider
    IDP_ALGORITHMS           = var.idp_algorithms
    IDP_ROUTES               = jsonencode(var.idp_routes)
    IDP_TOKEN_SOURCES        = var.idp_token_sources
    IDP_HTTP_TIMEOUT_SECONDS = tostring(var.idp_http_timeout_seconds)
    IDP_LOG_LEVEL            = var.idp_log_level
    IDP_CLIENT_AUTH          = var.idp_client_auth
    # A payload 2.0 event does not tell the function whether simple responses are on: it is a
    # setting of the authorizer. "auto" gives simple responses for 2.0; with simple responses off
    # the authorizer needs an IAM policy, hence "iam". Tied to the same variable so they cannot
    # disagree.
    IDP_RESPONSE = var.enable_simple_responses ? "auto" : "iam"
  }

  # Optional settings: left out of the environment when null, so the product's defaults apply.
  idp_optional_environment = {
    for name, value in {
      IDP_AUTH0_DOMAIN      = var.idp_auth0_domain
      IDP_ISSUER            = var.idp_issuer
      IDP_JWKS_URL          = var.idp_jwks_url
      IDP_AUDIENCE          = var.idp_audience
      IDP_INTROSPECTION_URL = var.idp_introspection_url
      IDP_CLIENT_ID         = var.idp_client_id
      IDP_REQUIRED_SCOPES   = var.idp_required_scopes
      IDP_CONTEXT_CLAIMS    = var.idp_context_claims
    } : name => value if value != null
  }

  # Kept apart from the map above because it is sensitive (a sensitive value in a for filter taints
  # the whole map). tomap() on both branches gives the conditional one type.
  idp_secret_environment = var.idp_client_secret == null ? tomap({}) : tomap({ IDP_CLIENT_SECRET = var.idp_client_secret })
}

# ---------------------------------------------------------------------------- IAM and logs

resource "aws_iam_role" "lambda" {
  name_prefix = "${local.name}-"
  # Logging only: the authorizer talks to the IdP over HTTPS and needs no AWS API.
  assume_role_policy = jsonencode({
    Version = "2012-10-17"
    Statement = [{
      Effect    = "Allow"
      Principal = { Service = "lambda.amazonaws.com" }
      Action    = "sts:AssumeRole"
    }]
  })
}

resource "aws_iam_role_policy_attachment" "lambda_logs" {
  role       = aws_iam_role.lambda.name
  policy_arn = "arn:${data.aws_partition.current.partition}:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole"
}

# Created before the function so Lambda does not create it first with "never expire" retention.
resource "aws_cloudwatch_log_group" "authorizer" {
  name              = "/aws/lambda/${local.name}-authorizer"
  retention_in_days = var.log_retention_days
}

resource "aws_cloudwatch_log_group" "hello" {
  name              = "/aws/lambda/${local.name}-hello"
  retention_in_days = var.log_retention_days
}

# Access logs: what a 500 needs to be diagnosed (the authorizer's own error and latency).
resource "aws_cloudwatch_log_group" "access" {
  count             = var.access_logs ? 1 : 0
  name              = "/aws/apigateway/${local.name}"
  retention_in_days = var.log_retention_days
}

# ---------------------------------------------------------------------------- authorizer function

resource "aws_lambda_function" "authorizer" {
  function_name = "${local.name}-authorizer"
  description   = "idp_authorizer: Lambda authorizer for the ${local.name} HTTP API"
  role          = aws_iam_role.lambda.arn

  # Plan fails with a clear "no file" error if the zip has not been built yet.
  filename         = local.lambda_zip_path
  source_code_hash = filebase64sha256(local.lambda_zip_path)
  handler          = "idp_authorizer.handler.handler"

  # Runtime and architecture must match the compiled wheels inside the zip (aiohttp, yarl, ...).
  runtime       = var.python_runtime
  architectures = [var.architecture]
  memory_size   = var.memory_size
  # At most 10 s (an HTTP API waits no longer for a Lambda authorizer), and above the IdP worst case
  # `idp-authorizer doctor` reports: the product fails closed by itself instead of being killed.
  timeout = var.timeout_seconds
  # A throttled authorizer makes every protected route a 500; -1 = the account's shared pool.
  reserved_concurrent_executions = var.reserved_concurrency

  # Every apply publishes a version, which the alias "live" (below) points at and API Gateway calls:
  # SnapStart only applies to published versions, never to $LATEST.
  publish = true
  snap_start {
    apply_on = var.snap_start ? "PublishedVersions" : "None"
  }

  environment {
    variables = merge(local.idp_required_environment, local.idp_optional_environment, local.idp_secret_environment)
  }

  lifecycle {
    precondition {
      condition     = !var.snap_start || var.python_runtime != "python3.11"
      error_message = "SnapStart for Python needs python3.12 or later."
    }
  }

  depends_on = [aws_cloudwatch_log_group.authorizer, aws_iam_role_policy_attachment.lambda_logs]
}

resource "aws_lambda_alias" "live" {
  name             = "live"
  function_name    = aws_lambda_function.authorizer.function_name
  function_version = aws_lambda_function.authorizer.version
}

# ---------------------------------------------------------------------------- HTTP API and authorizer

# Optional scheduled refresh: EventBridge invokes the authorizer with a "Scheduled Event", which
# refreshes key sets, discovery documents and centrally served route rules while no requests come.
resource "aws_cloudwatch_event_rule" "refresh" {
  count               = var.refresh_schedule == "" ? 0 : 1
  name                = "${local.name}-refresh"
  schedule_expression = var.refresh_schedule
}

resource "aws_cloudwatch_event_target" "refresh" {
  count = var.refresh_schedule == "" ? 0 : 1
  rule  = aws_cloudwatch_event_rule.refresh[0].name
  arn   = aws_lambda_alias.live.arn # the version the API calls (SnapStart never serves $LATEST)
}

resource "aws_lambda_permission" "refresh" {
  count         = var.refresh_schedule == "" ? 0 : 1
  statement_id  = "AllowEventBridgeRefresh"
  action        = "lambda:InvokeFunction"
  function_name = aws_lambda_function.authorizer.function_name
  qualifier     = aws_lambda_alias.live.name
  principal     = "events.amazonaws.com"
  source_arn    = aws_cloudwatch_event_rule.refresh[0].arn
}

resource "aws_apigatewayv2_api" "http" {
  name          = local.name
  protocol_type = "HTTP"
}

resource "aws_apigatewayv2_authorizer" "idp" {
  api_id          = aws_apigatewayv2_api.http.id
  name            = "idp"
  authorizer_type = "REQUEST"
  authorizer_uri  = aws_lambda_alias.live.invoke_arn

  authorizer_payload_format_version = "2.0"
  # true: the function answers {"isAuthorized": ..., "context": ...} (IDP_RESPONSE=auto).
  # false: the function must answer an IAM policy (IDP_RESPONSE=iam, set from the same variable).
  enable_simple_responses = var.enable_simple_responses

  # The identity sources are the result-cache key. A simple response is a yes/no for ONE route;
  # keyed by the token alone, a "yes" cached for GET /pets would be replayed on POST /pets.
  # $context.routeKey gives each route its own entry. A request without an Authorization header is
  # refused with 401 by API Gateway, without calling the function.
  identity_sources                 = ["$request.header.Authorization", "$context.routeKey"]
  authorizer_result_ttl_in_seconds = var.authorizer_cache_ttl
}

# Without this permission API Gateway cannot invoke the authorizer and every protected request is
# a 500. Neither the provider nor API Gateway adds it (the console does, silently). Scoped to this
# one authorizer of this one API.
resource "aws_lambda_permission" "authorizer" {
  statement_id  = "AllowApiGatewayAuthorizer"
  action        = "lambda:InvokeFunction"
  function_name = aws_lambda_function.authorizer.function_name
  qualifier     = aws_lambda_alias.live.name
  principal     = "apigateway.amazonaws.com"
  source_arn    = "${aws_apigatewayv2_api.http.execution_arn}/authorizers/${aws_apigatewayv2_authorizer.idp.id}"
}

# ---------------------------------------------------------------------------- sample backend and routes

# A tiny backend so the example works end to end without a second artefact.
data "archive_file" "hello" {
  type        = "zip"
  output_path = "${path.module}/.build/hello.zip"
  source {
    filename = "index.py"
    content  = <<-PYTHON
      import json


      def handler(event, context):
          # Payload 2.0: the authorizer's context is at requestContext.authorizer.lambda.
          authorizer = (event.get("requestContext") or {}).get("authorizer")
          return {
              "statusCode": 200,
              "headers": {"content-type": "application/json"},
              "body": json.dumps({"route": event.get("routeKey"), "authorizer": authorizer}),
          }
    PYTHON
  }
}

resource "aws_lambda_function" "hello" {
  function_name    = "${local.name}-hello"
  role             = aws_iam_role.lambda.arn
  filename         = data.archive_file.hello.output_path
  source_code_hash = data.archive_file.hello.output_base64sha256
  handler          = "index.handler"
  runtime          = var.python_runtime
  architectures    = [var.architecture]
  memory_size      = 128
  timeout          = 3

  depends_on = [aws_cloudwatch_log_group.hello]
}

resource "aws_apigatewayv2_integration" "hello" {
  api_id                 = aws_apigatewayv2_api.http.id
  integration_type       = "AWS_PROXY"
  integration_uri        = aws_lambda_function.hello.invoke_arn
  payload_format_version = "2.0"
}

# The backend needs its own invoke permission, scoped to this API (any stage, method, path).
resource "aws_lambda_permission" "hello" {
  statement_id  = "AllowApiGatewayIntegration"
  action        = "lambda:InvokeFunction"
  function_name = aws_lambda_function.hello.function_name
  principal     = "apigateway.amazonaws.com"
  source_arn    = "${aws_apigatewayv2_api.http.execution_arn}/*"
}

# One route per key; each is protected by the authorizer. idp_routes gives them different scopes.
resource "aws_apigatewayv2_route" "protected" {
  for_each = toset(var.route_keys)

  api_id             = aws_apigatewayv2_api.http.id
  route_key          = each.value
  authorization_type = "CUSTOM"
  authorizer_id      = aws_apigatewayv2_authorizer.idp.id
  target             = "integrations/${aws_apigatewayv2_integration.hello.id}"
}

# $default stage with auto-deploy: route changes go live without a separate deployment.
resource "aws_apigatewayv2_stage" "default" {
  api_id      = aws_apigatewayv2_api.http.id
  name        = "$default"
  auto_deploy = true

  dynamic "access_log_settings" {
    for_each = aws_cloudwatch_log_group.access
    content {
      destination_arn = access_log_settings.value.arn
      format = jsonencode({
        requestId         = "$context.requestId"
        status            = "$context.status"
        routeKey          = "$context.routeKey"
        authorizerError   = "$context.authorizer.error"
        authorizerLatency = "$context.authorizer.integrationLatency"
        error             = "$context.error.message"
      })
    }
  }
}

# Outputs of the idp_authorizer HTTP API example.

output "api_endpoint" {
  description = "Base URL of the HTTP API ($default stage), e.g. curl -H 'Authorization: Bearer ...' <url>/pets"
  value       = aws_apigatewayv2_api.http.api_endpoint
}

output "authorizer_function_arn" {
  description = "ARN of the authorizer Lambda function."
  value       = aws_lambda_function.authorizer.arn
}

output "authorizer_id" {
  description = "ID of the API Gateway authorizer."
  value       = aws_apigatewayv2_authorizer.idp.id
}

output "authorizer_response_mode" {
  description = "IDP_RESPONSE given to the function (auto with simple responses, iam without)."
  value       = local.idp_required_environment["IDP_RESPONSE"]
}

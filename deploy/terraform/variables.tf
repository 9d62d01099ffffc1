# Inputs of the idp_authorizer HTTP API example. Each idp_* variable maps to the IDP_* environment
# variable of the same name (see the configuration contract in the project README).

# ---------------------------------------------------------------------------- naming and artefact

variable "name" {
  description = "Name of the HTTP API; with the workspace, the prefix of the functions, role and log groups."
  type        = string
  default     = "idp-authorizer-example"
}

variable "lambda_zip_path" {
  description = "Path of the authorizer zip. Null means ../../dist/idp-authorizer-lambda.zip from this folder."
  type        = string
  default     = null
}

# ---------------------------------------------------------------------------- function

variable "python_runtime" {
  description = "Lambda runtime; must match the CPython version the zip's compiled wheels were built for."
  type        = string
  default     = "python3.12"

  validation {
    condition     = contains(["python3.11", "python3.12", "python3.13"], var.python_runtime)
    error_message = "python_runtime must be python3.11, python3.12 or python3.13."
  }
}

variable "snap_start" {
  description = "Lambda SnapStart on the published versions API Gateway calls (python3.12 or later; restores are billed)."
  type        = bool
  default     = false
}

variable "architecture" {
  description = "Lambda CPU architecture; must match the wheels inside the zip."
  type        = string
  default     = "arm64"

  validation {
    condition     = contains(["arm64", "x86_64"], var.architecture)
    error_message = "architecture must be arm64 or x86_64."
  }
}

variable "memory_size" {
  description = "Authorizer memory in MB. Below 256 RSA verification and cold starts slow down."
  type        = number
  default     = 256

  validation {
    condition     = var.memory_size >= 256 && var.memory_size <= 512
    error_message = "memory_size must be between 256 and 512."
  }
}

variable "timeout_seconds" {
  description = "Authorizer timeout in seconds; an HTTP API waits at most 10 s for a Lambda authorizer."
  type        = number
  default     = 10

  validation {
    condition     = var.timeout_seconds >= 3 && var.timeout_seconds <= 10
    error_message = "timeout_seconds must be between 3 and 10 (HTTP API authorizer timeout: 10 s)."
  }
}

variable "reserved_concurrency" {
  description = "Reserved concurrent executions of the authorizer; -1 = the account's shared pool."
  type        = number
  default     = -1

  validation {
    condition     = var.reserved_concurrency >= -1
    error_message = "reserved_concurrency must be -1 (unreserved) or a count."
  }
}

variable "access_logs" {
  description = "Access logs with $context.authorizer.error, integrationLatency and $context.error.message."
  type        = bool
  default     = false
}

variable "log_retention_days" {
  description = "CloudWatch Logs retention of the authorizer's log group."
  type        = number
  default     = 30
}

# ---------------------------------------------------------------------------- authorizer

variable "enable_simple_responses" {
  description = "true: simple responses ({isAuthorized}); false: IAM policies. Also sets IDP_RESPONSE (auto / iam)."
  type        = bool
  default     = true
}

variable "authorizer_cache_ttl" {
  description = "API Gateway authorizer result cache TTL in seconds (0 turns it off). Keep it well under the token lifetime."
  type        = number
  default     = 300

  validation {
    condition     = var.authorizer_cache_ttl >= 0 && var.authorizer_cache_ttl <= 3600
    error_message = "authorizer_cache_ttl must be between 0 and 3600."
  }
}

variable "route_keys" {
  description = "HTTP API routes to create, all protected by the authorizer."
  type        = list(string)
  default     = ["GET /pets", "POST /pets", "GET /admin"]
}

# ---------------------------------------------------------------------------- identity provider

variable "idp_provider" {
  description = "IDP_PROVIDER: auth0, oidc, jwks or introspection."
  type        = string
  default     = "oidc"

  validation {
    condition     = contains(["auth0", "oidc", "jwks", "introspection"], var.idp_provider)
    error_message = "idp_provider must be auth0, oidc, jwks or introspection."
  }
}

variable "idp_auth0_domain" {
  description = "IDP_AUTH0_DOMAIN: Auth0 tenant domain (auth0 only)."
  type        = string
  default     = null

  validation {
    condition     = var.idp_provider != "auth0" || (var.idp_auth0_domain != null && var.idp_auth0_domain != "")
    error_message = "idp_provider auth0 needs idp_auth0_domain."
  }

  validation {
    condition     = var.idp_provider == "auth0" || var.idp_auth0_domain == null
    error_message = "idp_auth0_domain configures the auth0 provider only."
  }
}

variable "idp_issuer" {
  description = "IDP_ISSUER: expected iss; for oidc also where discovery is read."
  type        = string
  default     = null

  validation {
    condition     = !contains(["oidc", "jwks"], var.idp_provider) || (var.idp_issuer != null && var.idp_issuer != "")
    error_message = "idp_provider oidc and jwks need idp_issuer."
  }

  validation {
    condition     = var.idp_provider != "auth0" || var.idp_issuer == null
    error_message = "idp_provider auth0 derives the issuer from idp_auth0_domain: leave idp_issuer unset."
  }
}

variable "idp_jwks_url" {
  description = "IDP_JWKS_URL: key set URL (jwks), or an override for oidc."
  type        = string
  default     = null

  validation {
    condition     = var.idp_provider != "jwks" || (var.idp_jwks_url != null && var.idp_jwks_url != "")
    error_message = "idp_provider jwks needs idp_jwks_url."
  }
}

variable "idp_audience" {
  description = "IDP_AUDIENCE: accepted audiences, comma-separated, any-of."
  type        = string
  default     = null

  validation {
    condition     = !contains(["auth0", "oidc", "jwks"], var.idp_provider) || (var.idp_audience != null && var.idp_audience != "")
    error_message = "idp_provider auth0, oidc and jwks need idp_audience."
  }
}

variable "idp_algorithms" {
  description = "IDP_ALGORITHMS: allowed signature algorithms, comma-separated."
  type        = string
  default     = "RS256"
}

variable "idp_introspection_url" {
  description = "IDP_INTROSPECTION_URL: RFC 7662 endpoint (introspection)."
  type        = string
  default     = null

  validation {
    condition     = var.idp_provider != "introspection" || (var.idp_introspection_url != null && var.idp_introspection_url != "") || (var.idp_issuer != null && var.idp_issuer != "")
    error_message = "idp_provider introspection needs idp_introspection_url (or idp_issuer, for discovery)."
  }
}

variable "idp_client_id" {
  description = "IDP_CLIENT_ID: introspection client id."
  type        = string
  default     = null

  validation {
    condition     = var.idp_provider != "introspection" || (var.idp_client_id != null && var.idp_client_id != "")
    error_message = "idp_provider introspection needs idp_client_id."
  }
}

variable "idp_client_secret" {
  description = "IDP_CLIENT_SECRET: introspection client secret. Stored in the Lambda configuration and the Terraform state."
  type        = string
  default     = null
  sensitive   = true

  validation {
    condition     = var.idp_provider != "introspection" || (var.idp_client_secret != null && var.idp_client_secret != "")
    error_message = "idp_provider introspection needs idp_client_secret."
  }
}

variable "idp_client_auth" {
  description = "IDP_CLIENT_AUTH: client_secret_basic or client_secret_post (introspection)."
  type        = string
  default     = "client_secret_basic"

  validation {
    condition     = contains(["client_secret_basic", "client_secret_post"], var.idp_client_auth)
    error_message = "idp_client_auth must be client_secret_basic or client_secret_post."
  }
}

# ---------------------------------------------------------------------------- authorization rules

variable "idp_routes" {
  description = "IDP_ROUTES: map of \"METHOD /path\" to rules (scopes any-of, all_scopes, claims); JSON-encoded into the environment. Unlisted routes are denied."
  type        = any
  default = {
    "GET /pets"  = { scopes = ["pets:read"] }
    "POST /pets" = { scopes = ["pets:write"] }
    "GET /admin" = { scopes = ["admin"] }
  }
}

variable "idp_required_scopes" {
  description = "IDP_REQUIRED_SCOPES: scopes every request needs on top of the route rule."
  type        = string
  default     = null
}

variable "idp_token_sources" {
  description = "IDP_TOKEN_SOURCES: where to look for the token. Keep header:Authorization unless the identity sources change too."
  type        = string
  default     = "header:Authorization"
}

variable "idp_context_claims" {
  description = "IDP_CONTEXT_CLAIMS: claims copied into the authorizer context."
  type        = string
  default     = null
}

# ---------------------------------------------------------------------------- operations

variable "idp_http_timeout_seconds" {
  description = "IDP_HTTP_TIMEOUT_SECONDS: total time for one call to the IdP."
  type        = number
  default     = 3

  validation {
    condition     = var.idp_http_timeout_seconds > 0 && var.idp_http_timeout_seconds <= 30
    error_message = "idp_http_timeout_seconds must be above 0 and at most 30."
  }
}

variable "idp_log_level" {
  description = "IDP_LOG_LEVEL: DEBUG, INFO, WARNING or ERROR."
  type        = string
  default     = "INFO"

  validation {
    condition     = contains(["DEBUG", "INFO", "WARNING", "ERROR"], var.idp_log_level)
    error_message = "idp_log_level must be DEBUG, INFO, WARNING or ERROR."
  }
}

variable "refresh_schedule" {
  description = "Optional EventBridge schedule expression, e.g. rate(5 minutes): a Scheduled Event that refreshes key sets, discovery documents and centrally served route rules. Empty: no schedule."
  type        = string
  default     = ""
}

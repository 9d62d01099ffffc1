#!/usr/bin/env bash
# Installs the servers and Node packages the test suite talks to (real servers on 127.0.0.1).
set -euo pipefail
cd "$(dirname "$0")/.."
need=()
command -v redis-server >/dev/null || need+=(redis-server)
command -v memcached >/dev/null || need+=(memcached)
if [ ${#need[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ]; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null
  else
    echo "missing ${need[*]}: install them (sudo apt-get install ${need[*]})" >&2; exit 1
  fi
fi
for dir in tests/oidc_provider tests/serverless_offline benchmarks/node; do
  if [ -f "$dir/package-lock.json" ]; then (cd "$dir" && npm ci --silent --no-audit --no-fund); fi
done

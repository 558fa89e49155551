#!/usr/bin/env bash
# Regenerates grafana-dashboard.schema.json from the @grafana/schema pinned in package-lock.json.
# Needs Node 20+ and npm with access to the configured registry; the tests need neither.
set -euo pipefail
cd "$(dirname "$0")"
npm ci --no-audit --no-fund
node generate.mjs

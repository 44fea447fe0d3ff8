#!/usr/bin/env bash
# CI check: the committed bundle in tb_xquant_plugin/static must be exactly what the sources build to.
set -euo pipefail
cd "$(dirname "$0")"
npm ci
npm run build
cd ..
git diff --exit-code tb_xquant_plugin/static

#!/usr/bin/env bash
# Regenerate what is derived from the API contract (tb_xquant_plugin/api/contract.py): the panel's TypeScript types
# and the answer-shape tables of docs/api.md. tests/test_contract.py fails until the results are committed.
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
cd "$ROOT"
PY="${PYTHON:-.venv/bin/python}"
"$PY" -m tb_xquant_plugin.api.contract --typescript > frontend/src/api_types.ts.new
mv frontend/src/api_types.ts.new frontend/src/api_types.ts
"$PY" -m tb_xquant_plugin.api.contract --markdown docs/api.md > docs/api.md.new
mv docs/api.md.new docs/api.md

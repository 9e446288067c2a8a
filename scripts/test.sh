#!/usr/bin/env bash
# Install everything (Chromium included, for the browser test), lint with ruff (settings in
# pyproject.toml), then run the test suite on the CPU.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh --dev
.venv/bin/ruff check --quiet .
exec .venv/bin/python -m pytest -q tests "$@"

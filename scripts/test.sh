#!/usr/bin/env bash
# Install everything (Chromium included, for the browser test), then run the test suite on the CPU.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh --dev
exec .venv/bin/python -m pytest -q tests "$@"

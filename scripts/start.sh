#!/usr/bin/env bash
# Install everything, then start the explorer on the shipped checkpoints.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
exec .venv/bin/streamlit run streamlit_app.py --server.headless true "$@"

#!/usr/bin/env bash
# Install everything, then start the explorer on the shipped checkpoints.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
# Once per install, in the background: fill numba's cache with UMAP's compiled code, so the first
# latent map of a newly trained autoencoder takes about 20 s instead of about a minute.
if [ ! -f .venv/.umap-warm ]; then
  ( .venv/bin/python -c "from fmnist_core.latent import warm_up; warm_up()" >/dev/null 2>&1 \
      && touch .venv/.umap-warm ) &
fi
exec .venv/bin/streamlit run streamlit_app.py --server.headless true "$@"

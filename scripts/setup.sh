#!/usr/bin/env bash
# Installs what the project needs on a Debian machine (idempotent; quick when nothing changed):
# the Fashion-MNIST data package, a virtual environment in .venv from requirements*.txt, this
# project installed into it (editable: `.venv/bin/fmnist` runs this checkout's code) and, with
# --dev, Chromium for the browser test. Usage: scripts/setup.sh [--dev]
set -euo pipefail
cd "$(dirname "$0")/.."
SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
dev=0; [ "${1:-}" = "--dev" ] && dev=1

need_apt=()
[ -f /usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz ] || need_apt+=(dataset-fashion-mnist)
[ $dev -eq 1 ] && ! command -v chromium >/dev/null && need_apt+=(chromium)
if [ ${#need_apt[@]} -gt 0 ]; then
  echo "setup: installing Debian packages: ${need_apt[*]}"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${need_apt[@]}" >/dev/null
fi

reqs=requirements.txt; [ $dev -eq 1 ] && reqs=requirements-dev.txt
hash=$(cat requirements.txt requirements-dev.txt | sha256sum | cut -c1-12)
[ -x .venv/bin/python ] || python3 -m venv .venv
# The dev set includes the app's set, so either stamp of this hash means nothing is missing.
if [ ! -f ".venv/.installed-$hash-$dev" ] && [ ! -f ".venv/.installed-$hash-1" ]; then
  echo "setup: installing Python packages from $reqs (torch takes a few minutes the first time)"
  .venv/bin/python -m pip install -q --disable-pip-version-check -r "$reqs"
  touch ".venv/.installed-$hash-$dev"
fi
# The project itself, editable and without dependencies (the pinned set above is all it needs), so
# that `.venv/bin/fmnist` is `python -m fmnist_core`. Again only where it is missing, points at
# another checkout, or pyproject.toml changed.
project=$(sha256sum pyproject.toml | cut -c1-12)
installed=$(.venv/bin/python -I - <<'PY' 2>/dev/null || true
import importlib.metadata as m, json
try:
    print(json.loads(m.distribution("fmnist-explorer").read_text("direct_url.json"))["url"])
except Exception:
    pass
PY
)
if [ "$installed" != "file://$PWD" ] || [ ! -f ".venv/.project-$project" ] || [ ! -x .venv/bin/fmnist ]; then
  echo "setup: installing this project into .venv (editable): the \`fmnist\` command"
  # Build with the venv's setuptools where it is recent enough (it builds wheels itself from 70.1),
  # else let pip fetch one for the build.
  isolation=()
  .venv/bin/python -c "import setuptools, sys; sys.exit(tuple(map(int, setuptools.__version__.split('.')[:2])) < (70, 1))" \
    2>/dev/null && isolation=(--no-build-isolation)
  .venv/bin/python -m pip install -q --disable-pip-version-check --no-deps "${isolation[@]}" -e .
  rm -f .venv/.project-*; touch ".venv/.project-$project"
fi
# Once per install: numba compiles umap-learn's code the first time it is imported (about a minute
# on 2 cores) and keeps it on disk; doing it here keeps that minute out of the app and the tests.
if [ ! -f .venv/.umap-warm ]; then
  echo "setup: compiling UMAP's numba code once (about a minute)"
  .venv/bin/python -c "from fmnist_core.latent import warm_up; warm_up()" && touch .venv/.umap-warm
fi

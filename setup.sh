#!/usr/bin/env bash
# Idempotent set-up: a .venv with sharenas (editable) and its dependencies.
# torch: an importable torch is kept (in .venv, or the system's via --system-site-packages);
# only when none exists is the CPU build installed (pip install torch==2.13.0 -- a bare `torch`
# requirement could pull a multi-GB CUDA build).
set -euo pipefail
cd "$(dirname "$0")"
PY=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  if "$PY" -c "import torch" 2>/dev/null; then
    echo "setup: reusing the torch of $PY ($("$PY" -c 'import torch; print(torch.__version__)'))"
    "$PY" -m venv --system-site-packages .venv
  else
    "$PY" -m venv .venv
  fi
fi
VPY=.venv/bin/python
"$VPY" -m pip install -q --upgrade pip
if ! "$VPY" -c "import torch" 2>/dev/null; then
  echo "setup: installing the CPU build of torch"
  "$VPY" -m pip install -q "torch==2.13.0" \
    || "$VPY" -m pip install -q torch --index-url https://download.pytorch.org/whl/cpu
fi
"$VPY" -m pip install -q -e ".[dev]"
echo "setup: ready ($("$VPY" -c 'import torch, optuna, ray, hydra; print("torch", torch.__version__, "optuna", optuna.__version__, "ray", ray.__version__, "hydra", hydra.__version__)'))"

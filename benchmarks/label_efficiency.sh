#!/usr/bin/env bash
# The committed label-efficiency results, regenerated: every condition runs through the real loop
# (`curate experiment label-efficiency`), one fixed test split per data set, paired over seeds.
#
#   bash benchmarks/label_efficiency.sh proxy      # proxy student, 4 data sets x 5 seeds (about 15 min on 2 cores)
#   bash benchmarks/label_efficiency.sh finetune   # fine-tuned MiniLM on Webis, 3 seeds (about 4 h on 2 cores)
#   bash benchmarks/label_efficiency.sh all
#
# Results go to benchmarks/results/label_efficiency/<data set>-<student>/; the run projects to
# $CURATE_CACHE/experiments (default ~/.cache/curate/experiments), so a rerun resumes where it stopped.
set -euo pipefail
cd "$(dirname "$0")/.."
WHAT=${1:-proxy}
CACHE=${CURATE_CACHE:-$HOME/.cache/curate}
PY=.venv/bin/python
CURATE=.venv/bin/curate
OUT=benchmarks/results/label_efficiency
# The conditions every data set is measured on: the default loop (the [selection] defaults: boundary-margin with a
# TypiClust cold start), plain margin (uncertainty) sampling, random sampling, the source's literal boundary-pairs
# and Cluster-Margin.
CONDITIONS=default,uncertainty,random,boundary-pairs,cluster-margin@typiclust

run() {  # run NAME STUDENT EXTRA-ARGS...
  local name=$1 student=$2; shift 2
  local opts
  opts=$($PY benchmarks/pools.py "$name" --cache "$CACHE/data")
  eval "$CURATE experiment label-efficiency $opts --student $student --out $OUT/$name-$student \
        --work $CACHE/experiments/$name-$student --title \"$name ($student student)\" --no-progress $*"
}

if [[ $WHAT == proxy || $WHAT == all ]]; then
  run webis proxy --conditions "$CONDITIONS,default+crowd,crowd-all,gold-all" --seeds 5
  run webis-rare proxy --conditions "$CONDITIONS,crowd-all,gold-all" --seeds 5
  run chakraborty-5pct proxy --conditions "$CONDITIONS,gold-all" --seeds 5
  run snow-rte proxy --conditions "$CONDITIONS,crowd-all,gold-all" --seeds 5 --budgets 50,100,150,200 --round-size 50
fi
if [[ $WHAT == finetune || $WHAT == all ]]; then
  run webis finetune --conditions "default,uncertainty,random,default+crowd" --seeds 3
  run webis finetune-gold --conditions gold-all --seeds 1 2>/dev/null || true
fi

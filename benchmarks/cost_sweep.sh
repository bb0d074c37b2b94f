#!/usr/bin/env bash
# The committed cost sweep, regenerated through the real loop (`curate experiment cost-sweep`): Webis Clickbait 2017
# (majority label, one crowd judgment per item or the scout's predictions as weak labels), expert label $1, weak
# label $0.50 / $0.10 / $0.01, budgets $16-$4,096, 8 weak shares, 5 methods, 3 seeds: 563 loop runs per seed.
#
#   bash benchmarks/cost_sweep.sh            # proxy student (the default of sweeps)
#   bash benchmarks/cost_sweep.sh finetune   # the fine-tuned student: days on 2 cores, for a GPU machine
#   bash benchmarks/cost_sweep.sh quick      # the small grid (--quick) on Webis, into a scratch folder
#
# Extra arguments go to the command (e.g. `--seeds 5`). Results go to benchmarks/results/cost_sweep/ (quick:
# $CURATE_CACHE/experiments/cost_sweep-quick/out); the run projects to $CURATE_CACHE/experiments (default
# ~/.cache/curate/experiments), so a rerun takes every finished run from there and runs only the rest.
set -euo pipefail
cd "$(dirname "$0")/.."
WHAT=proxy
if [[ $# -gt 0 && $1 != -* ]]; then WHAT=$1; shift; fi  # `bash benchmarks/cost_sweep.sh --seeds 1` is the proxy sweep
CACHE=${CURATE_CACHE:-$HOME/.cache/curate}
opts=$(.venv/bin/python benchmarks/pools.py webis --cache "$CACHE/data")

case $WHAT in
  proxy)
    # fp32: the figures repeat on another CPU (bf16 moved margin-based ones by up to 0.1 kappa between CPUs)
    eval ".venv/bin/curate experiment cost-sweep $opts --student proxy --precision fp32 \
          --out benchmarks/results/cost_sweep --work $CACHE/experiments/cost_sweep-proxy-fp32 \
          --title \"Webis Clickbait 2017, proxy student\" --no-progress $*" ;;
  finetune)
    eval ".venv/bin/curate experiment cost-sweep $opts --student finetune --out benchmarks/results/cost_sweep-finetune \
          --work $CACHE/experiments/cost_sweep-finetune --title \"Webis Clickbait 2017, fine-tuned student\" \
          --no-progress $*" ;;
  quick)
    eval ".venv/bin/curate experiment cost-sweep $opts --quick --out $CACHE/experiments/cost_sweep-quick/out \
          --work $CACHE/experiments/cost_sweep-quick --title \"Webis Clickbait 2017, quick grid\" --no-progress $*" ;;
  *)
    echo "usage: bash benchmarks/cost_sweep.sh [proxy|finetune|quick] [extra options]" >&2; exit 2 ;;
esac

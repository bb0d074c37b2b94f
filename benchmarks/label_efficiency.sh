#!/usr/bin/env bash
# The committed label-efficiency results, regenerated: every condition runs through the real loop
# (`curate experiment label-efficiency`), one fixed test split per data set, paired over seeds.
#
#   bash benchmarks/label_efficiency.sh proxy      # proxy student, 4 data sets x 5 seeds (about 20 min on 2 cores)
#   bash benchmarks/label_efficiency.sh finetune   # fine-tuned MiniLM on Webis and Chakraborty 5 %, 5 seeds each (about 5 h on 2 cores; seeds already in
#                                                   # results.json with the same settings are reused, not rerun)
#   bash benchmarks/label_efficiency.sh coldshare  # proxy, 4 data sets x 5 seeds: the cold start's share of round 1
#   bash benchmarks/label_efficiency.sh badge      # proxy, fp32, 3 data sets x 5 seeds: BADGE against the default and margin
#   bash benchmarks/label_efficiency.sh mix        # fine-tuned, Webis: crowd then curated with the mixed final model
#   bash benchmarks/label_efficiency.sh power      # fine-tuned, Webis: default selection against margin, 10 seeds (2 h)
#   bash benchmarks/label_efficiency.sh all
#
# Results go to benchmarks/results/label_efficiency/<data set>-<student>/; the run projects to
# $CURATE_CACHE/experiments (default ~/.cache/curate/experiments), so a rerun resumes where it stopped.
set -euo pipefail
cd "$(dirname "$0")/.."
WHAT=${1:-proxy}
CACHE=${CURATE_CACHE:-$HOME/.cache/curate}
OUT=benchmarks/results/label_efficiency
# Every data set: the default loop (curate's [selection] defaults: boundary-margin with a TypiClust cold start),
# plain margin (uncertainty) sampling, random sampling, margin with the same cold start (what the cold start alone
# does), Cluster-Margin with it, and the source's literal boundary-pairs.
CONDITIONS=default,uncertainty,random,uncertainty@typiclust,cluster-margin@typiclust,boundary-pairs

run() {  # run DATASET STUDENT NAME EXTRA-ARGS...   (PRECISION=fp32 run ...: fp32, in its own work folder;
         #                                           WORK_AS=OTHER run ...: in OTHER's work folder, resuming its runs)
  local data=$1 student=$2 name=$3; shift 3
  local opts work=$CACHE/experiments/${WORK_AS:-$name} precision=${PRECISION:-auto}
  [[ $precision == auto ]] || work=$work-$precision
  opts=$(.venv/bin/python benchmarks/pools.py "$data" --cache "$CACHE/data")
  eval ".venv/bin/curate experiment label-efficiency $opts --student $student --out $OUT/$name \
        --work $work --precision $precision --title \"$data, $student student\" --no-progress $*"
}

if [[ $WHAT == proxy || $WHAT == all ]]; then
  # fp32: these figures repeat on another CPU (bf16 moved margin-based ones by up to 0.1 kappa between CPUs).
  # default+crowd is the default loop where the pool has a crowd column (student.weak_labels = "auto").
  export PRECISION=fp32
  run webis proxy webis-proxy --conditions "$CONDITIONS,default+crowd,default+scout,crowd-all,gold-all" --seeds 5
  run webis-rare proxy webis-rare-proxy --conditions "$CONDITIONS,default+crowd,crowd-all,gold-all" --seeds 5
  run chakraborty-5pct proxy chakraborty-5pct-proxy --conditions "$CONDITIONS,default+scout,gold-all" --seeds 5
  run snow-rte proxy snow-rte-proxy --conditions "$CONDITIONS,default+crowd,crowd-all,gold-all" --seeds 5 \
      --budgets 50,100,150,200 --round-size 50
  unset PRECISION
fi
if [[ $WHAT == coldshare ]]; then
  # the cold start's share of the first round (selection.cold_start_share): 1 (the default), 0.5 and 0.25
  SHARES=default,uncertainty,random,default@typiclust:0.5,default@typiclust:0.25
  run webis proxy coldshare/webis-proxy --conditions "$SHARES" --seeds 5
  run webis-rare proxy coldshare/webis-rare-proxy --conditions "$SHARES" --seeds 5
  run chakraborty-5pct proxy coldshare/chakraborty-5pct-proxy --conditions "$SHARES" --seeds 5
  run snow-rte proxy coldshare/snow-rte-proxy --conditions "$SHARES" --seeds 5 --budgets 50,100,150,200 --round-size 50
fi
if [[ $WHAT == badge ]]; then
  # BADGE (Ash et al. 2020), alone and after the default's cold start, beside the default loop's selection, margin and
  # random, on expert labels alone (about 10 min; the runs share the proxy target's work folders)
  export PRECISION=fp32
  BADGE=default,uncertainty,random,badge,badge@typiclust
  WORK_AS=chakraborty-5pct-proxy run chakraborty-5pct proxy badge/chakraborty-5pct-proxy --conditions "$BADGE" --seeds 5
  WORK_AS=webis-proxy run webis proxy badge/webis-proxy --conditions "$BADGE" --seeds 5
  WORK_AS=webis-rare-proxy run webis-rare proxy badge/webis-rare-proxy --conditions "$BADGE" --seeds 5
  unset PRECISION
fi
if [[ $WHAT == power ]]; then
  # the default selection against margin sampling on expert labels alone with twice the seeds (the 5 of the finetune
  # target were level at every budget, +0.005 to +0.028 on average); in the finetune target's work folder
  WORK_AS=webis-finetune run webis finetune webis-finetune-10seeds --conditions default,uncertainty --seeds 10
fi
if [[ $WHAT == mix ]]; then
  # the final model learns crowd and expert labels in one set (loop.final_recipe = "mixed"); each run also scores the
  # sequential recipe's final model on the same labels, so the two are paired run by run (about 40 min a seed)
  run webis finetune webis-finetune-mix --conditions default+crowd+mix --seeds "${MIX_SEEDS:-3}"
fi
if [[ $WHAT == finetune || $WHAT == all ]]; then
  run webis finetune webis-finetune --conditions "uncertainty,default,random,default+crowd" --seeds 5
  run webis finetune webis-finetune-gold --conditions gold-all --seeds 1
  # data the default was not tuned on, without a crowd column: the cold start's share of round 1 (half, the
  # default, against the whole round) with the real student (about 4.8 min a run on 2 cores)
  run chakraborty-5pct finetune chakraborty-5pct-finetune \
      --conditions "default,default@typiclust:1,uncertainty,random" --seeds "${CHAK_SEEDS:-5}"
  # the default loop with a self-trained final model (loop.final_self_training): the rounds repeat the default's runs
  # above seed by seed; the final model's figures before self-training are kept as its teacher's
  run webis finetune webis-finetune-self --conditions default+self --seeds "${SELF_SEEDS:-2}"
fi

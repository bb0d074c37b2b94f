#!/usr/bin/env bash
# The README's quickstart: the curation loop on Webis Clickbait 2017 (19,459 tweets), then random sampling
# at the same budget for comparison, then the report. Usage: bash examples/webis/quickstart.sh [WORKDIR]
set -euo pipefail
cd "$(dirname "$0")/../.."
DATA=${CURATE_DATA:-../shared/data}/webis-clickbait-17/webis-clickbait-17.jsonl
WORK=${1:-projects}
for strategy in boundary-pairs random; do
  project="$WORK/webis-$strategy"
  if [ ! -f "$project/curate.toml" ]; then
    .venv/bin/curate init "$project" --pool "$DATA" \
      --labels no-clickbait,clickbait --positive clickbait \
      --prompt-file examples/webis/policy.txt \
      --negative-description "A plain news headline that states what happened." \
      --seed-examples examples/webis/seed_examples.json --prior 0.25 \
      --gold-field label --crowd-field judgments
  fi
  # Resumable: running this again continues at the first step not completed.
  .venv/bin/curate run "$project" --oracle simulated --strategy "$strategy" --rounds 6 --budget 100 --seed 0
done
.venv/bin/curate report "$WORK/webis-boundary-pairs" --compare "$WORK/webis-random"

#!/usr/bin/env bash
# The README's quickstart: the curation loop on Webis Clickbait 2017 (19,459 tweets) with curate's defaults (the pool
# has a crowd column, so the student first learns the crowd's labels, then the experts' labels chosen by the default
# query strategy), then plain margin (uncertainty) sampling and random sampling on expert labels alone at the same
# budget, then one report that draws all three. Usage: bash examples/webis/quickstart.sh [WORKDIR]
# The data sets are read from ../shared/data; CURATE_DATA (or CURATE_SHARED_DATA, as the tests) names another folder.
set -euo pipefail
cd "$(dirname "$0")/../.."
DATA=${CURATE_DATA:-${CURATE_SHARED_DATA:-../shared/data}}/webis-clickbait-17/webis-clickbait-17.jsonl
if [ ! -f "$DATA" ]; then
  echo "error: $DATA not found; put the shared data beside the repository or set CURATE_DATA" >&2
  exit 2
fi
WORK=${1:-projects}
for strategy in boundary-margin uncertainty random; do
  project="$WORK/webis-$strategy"
  if [ ! -f "$project/curate.toml" ]; then
    .venv/bin/curate init "$project" --pool "$DATA" \
      --labels no-clickbait,clickbait --positive clickbait \
      --prompt-file examples/webis/policy.txt \
      --negative-description "A plain news headline that states what happened." \
      --seed-examples examples/webis/seed_examples.json --prior 0.25 \
      --gold-field label --crowd-field judgments
  fi
  # The default (boundary-margin) takes half of its first round by a TypiClust cold start (selection.cold_start_share)
  # after the crowd weak stage (--weak-labels auto: crowd, as the pool has a crowd column); the baselines, as plain
  # active learning does, use neither.
  cold=typiclust weak=auto; [ "$strategy" = boundary-margin ] || { cold=none; weak=none; }
  # Resumable: running this again continues at the first step not completed.
  .venv/bin/curate run "$project" --oracle simulated --strategy "$strategy" --cold-start "$cold" \
    --weak-labels "$weak" --rounds 6 --budget 100 --seed 0
done
.venv/bin/curate report "$WORK/webis-boundary-margin" --compare "$WORK/webis-uncertainty" --compare "$WORK/webis-random"

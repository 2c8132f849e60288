#!/bin/sh
# Rebuild the stored regression scores (eval/regression/REGION.json; REGION = brain (default) or abdom)
# from the shipped weights. Usage: sh scripts/update-regression.sh [brain|abdom]
# Run after a deliberate change of weights or method; review the diff of the JSON before committing.
set -eu
cd "$(dirname "$0")/.."
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
region=${1:-brain}
recipe=eval/regression/$region.json
[ -f "$recipe" ] || { echo "no $recipe" >&2; exit 64; }
inject_args=$(node -e "console.log(JSON.parse(require('fs').readFileSync('$recipe','utf8')).recipe.inject.join(' '))")
board_args=$(node -e "console.log(JSON.parse(require('fs').readFileSync('$recipe','utf8')).recipe.leaderboard.join(' '))")
# shellcheck disable=SC2086
node dist/src/cli.js inject $inject_args --out "$work/set"
# shellcheck disable=SC2086
node dist/src/cli.js leaderboard --set "$work/set" $board_args --out "$work/board" >/dev/null
node -e "
const fs = require('fs');
const stored = JSON.parse(fs.readFileSync('$recipe', 'utf8'));
stored.methods = JSON.parse(fs.readFileSync('$work/board/scores.json', 'utf8')).methods;
fs.writeFileSync('$recipe.tmp', JSON.stringify(stored, null, 1) + '\n');
fs.renameSync('$recipe.tmp', '$recipe');
"
echo "updated $recipe"

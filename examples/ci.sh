#!/usr/bin/env bash
# How a CI job uses lnexp: run a config with expectations, branch on the exit code, re-check
# the saved run later without recomputing. Exit codes: 0 ok, 1 an expectation failed,
# 2 usage/config error, 3 partly done, 130 interrupted.
# Run it from anywhere, after `make test` or `make run`: examples/ci.sh [OUTPUT_DIR]
# lnexp is $LNEXP if set, else `lnexp` on PATH (an activated venv), else .venv/bin/lnexp.
set -u
cd "$(dirname "$0")/.."
if [ -z "${LNEXP:-}" ]; then
    if command -v lnexp >/dev/null 2>&1; then
        LNEXP=lnexp
    elif [ -x .venv/bin/lnexp ]; then
        LNEXP=.venv/bin/lnexp
    else
        echo "ci.sh: lnexp not found; run 'make test' first (it creates .venv), or set LNEXP" >&2
        exit 2
    fi
fi
OUT="${1:-outputs/ci-example}"
CONFIG=configs/ci_ln_invariants.yaml

# 1. The invariants hold for LayerNorm: exit 0. stdout is only the JSON document.
doc=$("$LNEXP" run "$CONFIG" --output-dir "$OUT" --json)
status=$?
echo "passing run: exit $status"
[ "$status" -eq 0 ] || { echo "expected exit 0"; exit 1; }
run_dir=$(printf '%s' "$doc" | python3 -c 'import json,sys; print(json.load(sys.stdin)["run_dir"])')

# 2. Re-check the saved run without recomputing: exit 0.
"$LNEXP" check "$run_dir" > /dev/null
status=$?
echo "check of the saved run: exit $status"
[ "$status" -eq 0 ] || { echo "expected exit 0"; exit 1; }

# 3. BatchNorm does not standardize samples: the same expectations fail, exit 1.
"$LNEXP" run "$CONFIG" --output-dir "$OUT" --set model.norm=bn --quiet > /dev/null 2>&1
status=$?
echo "failing run (model.norm=bn): exit $status"
[ "$status" -eq 1 ] || { echo "expected exit 1"; exit 1; }

# 4. An extra expectation on the saved run that does not hold: exit 1.
"$LNEXP" check "$run_dir" --expect 'post_norm.per_feature.var.min >= 0.99' > /dev/null 2>&1
status=$?
echo "check with a failing --expect: exit $status"
[ "$status" -eq 1 ] || { echo "expected exit 1"; exit 1; }

echo "ci.sh: all exit codes as expected"

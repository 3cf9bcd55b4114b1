#!/bin/sh
# Runs the cltrain program as a user would: listing, JSON, warming twice (the second run
# must be served by the cache), and the errors of bad usage.
# Usage: cli_test.sh CLTRAIN
set -u
exe=$1
passed=0
failed=0
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
export CLTRAIN_CACHE_DIR="$tmp/cache"

check() { # check NAME EXPECTED_STATUS COMMAND...
    name=$1
    want=$2
    shift 2
    "$@" >"$tmp/out" 2>"$tmp/err"
    got=$?
    if [ "$got" -eq "$want" ]; then
        passed=$((passed + 1))
    else
        failed=$((failed + 1))
        echo "FAIL $name: exit $got, wanted $want" >&2
        cat "$tmp/out" "$tmp/err" >&2
    fi
}

check "devices" 0 "$exe" devices
grep -qi "portable computing" "$tmp/out" || { failed=$((failed + 1)); echo "FAIL: PoCL not listed" >&2; }
check "devices --json" 0 "$exe" devices --json
if command -v python3 >/dev/null 2>&1; then
    python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); assert d and all("compute_units" in x for x in d)' "$tmp/out" \
        && passed=$((passed + 1)) || { failed=$((failed + 1)); echo "FAIL: JSON invalid" >&2; }
fi
check "warm cold" 0 "$exe" devices --warm --device pocl
grep -q "0 from cache" "$tmp/err" || { failed=$((failed + 1)); echo "FAIL: cold warm used the cache" >&2; cat "$tmp/err" >&2; }
check "warm hot" 0 "$exe" devices --warm --device pocl
grep -q " 0 cached now" "$tmp/err" || { failed=$((failed + 1)); echo "FAIL: warm run did not hit the cache" >&2; cat "$tmp/err" >&2; }
check "unknown option" 2 "$exe" devices --frobnicate
check "unknown command" 2 "$exe" frobnicate
check "no command" 2 "$exe"
check "missing device" 1 "$exe" devices --warm --device no-such-device-anywhere
grep -q "no device matches" "$tmp/err" || { failed=$((failed + 1)); echo "FAIL: no clear message for a missing device" >&2; }
# Data-parallel train: a device named twice, or an empty item, is refused before any work.
check "train device twice" 1 "$exe" train --model mlp --data fashion-mnist --device pocl,pocl
grep -q "named twice" "$tmp/err" || { failed=$((failed + 1)); echo "FAIL: no clear message for a device named twice" >&2; }
check "train empty device item" 1 "$exe" train --model mlp --data fashion-mnist --device pocl,
grep -q "an empty item" "$tmp/err" || { failed=$((failed + 1)); echo "FAIL: no clear message for an empty device item" >&2; }
check "version" 0 "$exe" --version

# GEMM tuning: devices --warm tuned the built-in models above; --show reads the cache, a
# second tune times nothing, bad input is refused.
check "tune --show" 0 "$exe" tune --show --device pocl
grep -q "(chosen)" "$tmp/out" || { failed=$((failed + 1)); echo "FAIL: tune --show shows no choice" >&2; }
check "tune warm" 0 "$exe" tune --model mlp --device pocl
grep -q "gemm tuning: m=" "$tmp/err" && { failed=$((failed + 1)); echo "FAIL: a warm tuning cache was not used" >&2; }
check "tune --show --json" 0 "$exe" tune --show --json --device pocl
if command -v python3 >/dev/null 2>&1; then
    python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); assert d["shapes"] and all(s["chosen"] for s in d["shapes"])' "$tmp/out" \
        && passed=$((passed + 1)) || { failed=$((failed + 1)); echo "FAIL: tune JSON invalid" >&2; }
fi
check "tune bad model" 2 "$exe" tune --model resnet
check "tune json without show" 2 "$exe" tune --json
check "tune show with model" 2 "$exe" tune --show --model mlp
check "tune missing device" 1 "$exe" tune --device no-such-device-anywhere

echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]

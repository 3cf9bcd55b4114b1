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
# --device-weights: one device, or a bad list, is refused with a message.
check "train weights one device" 1 "$exe" train --model mlp --data fashion-mnist --limit 256 --device pocl --device-weights 1
grep -q "needs several devices" "$tmp/err" || { failed=$((failed + 1)); echo "FAIL: no clear message for --device-weights on one device" >&2; }
# An uneven split (3:1 of 32 rows: 24 + 8) on two PoCL devices, saved at step 4 and resumed
# to step 8, gives the uninterrupted run's loss at step 8 (the split is recorded in the
# checkpoint and reused). CLTRAIN_TUNE=0: the tuner's timed choice of GEMM kernels may differ
# from run to run, and with it the rounding.
if [ "$(env POCL_DEVICES='pthread pthread' RUSTICL_ENABLE= "$exe" devices 2>/dev/null | grep -c '^[0-9]*:[0-9]')" = 2 ]; then
    run="--model mlp --width 16 --data fashion-mnist --limit 512 --batch 32 --device all --log-every 4"
    check "train weights bad" 1 env POCL_DEVICES="pthread pthread" RUSTICL_ENABLE= CLTRAIN_TUNE=0 "$exe" train $run --device-weights 1,x
    grep -q "give \"measure\" or 2 numbers" "$tmp/err" || { failed=$((failed + 1)); echo "FAIL: no clear message for bad --device-weights" >&2; }
    check "train weights" 0 env POCL_DEVICES="pthread pthread" RUSTICL_ENABLE= CLTRAIN_TUNE=0 "$exe" train $run --device-weights 3,1 --stop-at 8 --metrics "$tmp/straight.jsonl"
    grep -q "24 + 8 rows" "$tmp/err" || { failed=$((failed + 1)); echo "FAIL: --device-weights 3,1 did not split 24 + 8" >&2; }
    check "train weights save" 0 env POCL_DEVICES="pthread pthread" RUSTICL_ENABLE= CLTRAIN_TUNE=0 "$exe" train $run --device-weights 3,1 --stop-at 4 --out "$tmp/split.safetensors"
    check "train weights resume" 0 env POCL_DEVICES="pthread pthread" RUSTICL_ENABLE= CLTRAIN_TUNE=0 "$exe" train --resume "$tmp/split.safetensors" --device all --stop-at 8 --metrics "$tmp/resumed.jsonl"
    grep -q "24 + 8 rows" "$tmp/err" || { failed=$((failed + 1)); echo "FAIL: the resumed run did not reuse the split 24 + 8" >&2; }
    a=$(grep '"type":"train","epoch":[0-9]*,"step":8,' "$tmp/straight.jsonl" | sed 's/.*"loss":\([^,]*\),.*/\1/')
    b=$(grep '"type":"train","epoch":[0-9]*,"step":8,' "$tmp/resumed.jsonl" | sed 's/.*"loss":\([^,]*\),.*/\1/')
    if [ -z "$a" ] || [ "$a" != "$b" ]; then
        failed=$((failed + 1)); echo "FAIL: resumed uneven split: loss at step 8 \"$b\", uninterrupted \"$a\"" >&2
    fi
else
    echo "skipped the two-device --device-weights checks: POCL_DEVICES=\"pthread pthread\" does not show exactly two devices"
fi
check "version" 0 "$exe" --version

# GEMM tuning: devices --warm tuned the built-in models above; --show reads the cache, a
# second tune times nothing, bad input is refused.
check "tune --show" 0 "$exe" tune --show --device pocl
grep -q "(chosen)" "$tmp/out" || { failed=$((failed + 1)); echo "FAIL: tune --show shows no choice" >&2; }
# The host BLAS's figure is shown with the one the tuner ranked it by (its charge, cltrain.h).
if grep -q "GFLOP/s  host " "$tmp/out"; then
    grep -q "GFLOP/s  host .*(ranked [0-9.]*)" "$tmp/out" && grep -q "the tuner ranks the host BLAS" "$tmp/out" \
        && passed=$((passed + 1)) || { failed=$((failed + 1)); echo "FAIL: tune --show hides the host BLAS's rank" >&2; }
fi
check "tune warm" 0 "$exe" tune --model mlp --device pocl
grep -q "gemm tuning: m=" "$tmp/err" && { failed=$((failed + 1)); echo "FAIL: a warm tuning cache was not used" >&2; }
check "tune --show --json" 0 "$exe" tune --show --json --device pocl
if command -v python3 >/dev/null 2>&1; then
    python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); assert d["shapes"] and all(s["chosen"] for s in d["shapes"])
c = [c for s in d["shapes"] for c in s["candidates"]]
assert all(x["ranked_gflops"] == x["gflops"] for x in c if x["name"].startswith(("own ", "clblast")))
assert all(abs(x["ranked_gflops"] * 1.5 - x["gflops"]) < 1e-2 for x in c if x["name"].startswith("host "))
assert all(x["ranked_gflops"] < x["gflops"] for x in c if x["name"] == "widen" and x["gflops"] > 0)' "$tmp/out" \
        && passed=$((passed + 1)) || { failed=$((failed + 1)); echo "FAIL: tune JSON invalid" >&2; }
fi
check "tune bad model" 2 "$exe" tune --model resnet
check "tune json without show" 2 "$exe" tune --json
check "tune show with model" 2 "$exe" tune --show --model mlp
check "tune missing device" 1 "$exe" tune --device no-such-device-anywhere

echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]

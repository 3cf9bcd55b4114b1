#!/bin/sh
# An OpenCL failure injected in the middle of `cltrain train` (test/faultcl.c, preloaded and
# armed through FAULTCL_ARM) ends the run with one clear message and status 1, and the last
# checkpoint saved before it still evaluates.
# Usage: train_fault_test.sh CLTRAIN LIBFAULTCL
set -u
exe=$1
faultcl=$2
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
passed=0
failed=0
ok() { passed=$((passed + 1)); }
bad() { failed=$((failed + 1)); echo "FAIL: $1" >&2; }

LD_PRELOAD="$faultcl" FAULTCL_ARM=clEnqueueNDRangeKernel:600:-5 CLTRAIN_GEMM=own \
    "$exe" train --model mlp --data fashion-mnist --limit 2048 --epochs 3 --save-every 10 \
    --out "$tmp/ck.safetensors" >"$tmp/out" 2>"$tmp/err"
rc=$?
[ "$rc" -eq 1 ] && ok || bad "train exited $rc, wanted 1"
grep -q "failed: OpenCL call failed" "$tmp/err" && ok || { bad "no clear message"; cat "$tmp/err" >&2; }
[ "$(grep -c 'cltrain train:' "$tmp/err")" -eq 1 ] && ok || bad "not exactly one error line"
"$exe" eval --checkpoint "$tmp/ck.safetensors" --limit 2048 >"$tmp/eval" 2>&1 && ok || { bad "the last checkpoint does not evaluate"; cat "$tmp/eval" >&2; }
grep -q "^loss .* accuracy" "$tmp/eval" && ok || bad "eval printed no result"
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]

#!/bin/sh
# `cltrain export`: a trained checkpoint (a model with batch norm, so state tensors too)
# exported in fp16, bf16 and fp32; each export evaluated by `cltrain eval` (the fp32 export
# exactly as the original, the 16-bit ones within 0.05 of its accuracy); its errors (missing
# options, a bad precision, the checkpoint itself as output, a file cltrain did not write,
# a missing or corrupt checkpoint, a value fp16 cannot hold) exit non-zero with a message and
# leave files as they were; then test/check_export.py compares the rounding with NumPy's and
# PyTorch's and loads the files in PyTorch (skipped without NumPy).
# Usage: export_test.sh CLTRAIN CHECK_EXPORT_PY
set -u
exe=$1
checker=$2
passed=0
failed=0
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

ok() { passed=$((passed + 1)); }
fail() { failed=$((failed + 1)); echo "FAIL: $*" >&2; }
check() { # check NAME EXPECTED_STATUS COMMAND...
    name=$1
    want=$2
    shift 2
    "$@" >"$tmp/out" 2>"$tmp/err"
    got=$?
    if [ "$got" -eq "$want" ]; then
        ok
    else
        fail "$name: exit $got, wanted $want"
        cat "$tmp/out" "$tmp/err" >&2
    fi
}
says() { # says NAME TEXT: the last command's stderr holds TEXT
    grep -q "$2" "$tmp/err" && ok || { fail "$1: stderr lacks \"$2\""; cat "$tmp/err" >&2; }
}
accuracy() { # the accuracy of eval's JSON line
    sed -n 's/.*"accuracy":\([0-9.e+-]*\).*/\1/p' "$1" | head -n 1
}

awk 'BEGIN { srand(7); print "a,b,c,label";
    for (i = 0; i < 300; i++) { a = rand(); b = rand(); c = rand(); l = 0;
        if (b > a && b > c) l = 1; if (c > a && c > b) l = 2;
        printf "%.4f,%.4f,%.4f,%d\n", a, b, c, l } }' >"$tmp/points.csv"
printf 'linear 32\nbatchnorm\nrelu\nlinear classes\n' >"$tmp/model.txt"
check "train" 0 "$exe" train --model "file:$tmp/model.txt" --data "csv:$tmp/points.csv" \
    --epochs 6 --batch 16 --out "$tmp/ck.safetensors"

check "eval fp32" 0 "$exe" eval --checkpoint "$tmp/ck.safetensors" --json
acc=$(accuracy "$tmp/out")
cp "$tmp/out" "$tmp/eval-original"
for p in fp16 bf16 fp32; do
    check "export $p" 0 "$exe" export --checkpoint "$tmp/ck.safetensors" --precision $p \
        --out "$tmp/$p.safetensors"
    says "export $p" "wrote $tmp/$p.safetensors"
    says "export $p" "optimizer tensors left out"
    check "eval $p" 0 "$exe" eval --checkpoint "$tmp/$p.safetensors" --json
    got=$(accuracy "$tmp/out")
    awk -v a="$acc" -v b="$got" 'BEGIN { d = a - b; if (d < 0) d = -d; exit !(d <= 0.05) }' \
        && ok || fail "eval of the $p export: accuracy $got, the original's $acc"
done
cmp -s "$tmp/out" "$tmp/eval-original" && ok || fail "eval of the fp32 export differs from the original's"
# An export is cltrain's own output: replacing it needs no --force.
check "export again" 0 "$exe" export --checkpoint "$tmp/ck.safetensors" --precision fp16 \
    --out "$tmp/fp16.safetensors"

# ---- Errors ---------------------------------------------------------------------------------
check "no options" 2 "$exe" export
says "no options" "are required"
check "bad precision" 2 "$exe" export --checkpoint "$tmp/ck.safetensors" --precision fp8 \
    --out "$tmp/x.safetensors"
says "bad precision" "is not fp16, bf16 or fp32"
check "stdout" 2 "$exe" export --checkpoint "$tmp/ck.safetensors" --precision fp16 --out -
cp "$tmp/ck.safetensors" "$tmp/ck.copy"
check "out is the checkpoint" 1 "$exe" export --checkpoint "$tmp/ck.safetensors" \
    --precision fp16 --out "$tmp/ck.safetensors"
cmp -s "$tmp/ck.safetensors" "$tmp/ck.copy" && ok || fail "the checkpoint was changed"
echo "a user's notes" >"$tmp/notes.txt"
check "foreign file" 1 "$exe" export --checkpoint "$tmp/ck.safetensors" --precision fp16 \
    --out "$tmp/notes.txt"
[ "$(cat "$tmp/notes.txt")" = "a user's notes" ] && ok || fail "a user's file was overwritten"
check "foreign file --force" 0 "$exe" export --checkpoint "$tmp/ck.safetensors" \
    --precision fp16 --out "$tmp/notes.txt" --force
check "missing checkpoint" 1 "$exe" export --checkpoint "$tmp/none.safetensors" \
    --precision fp16 --out "$tmp/y.safetensors"
[ -e "$tmp/y.safetensors" ] && fail "a failed export left a file" || ok
head -c 100 "$tmp/ck.safetensors" >"$tmp/short.safetensors"
check "truncated checkpoint" 1 "$exe" export --checkpoint "$tmp/short.safetensors" \
    --precision bf16 --out "$tmp/y.safetensors"
says "truncated checkpoint" "short.safetensors"
[ -e "$tmp/y.safetensors" ] && fail "a failed export left a file" || ok
ls "$tmp" | grep -q '\.tmp\.' && fail "a temporary file was left behind" || ok

# ---- Rounding against NumPy and PyTorch; PyTorch loads the files ----------------------------
if command -v python3 >/dev/null 2>&1; then
    python3 "$checker" "$exe" "$tmp/py" "$tmp/ck.safetensors"
    rc=$?
    if [ $rc -eq 0 ]; then ok; elif [ $rc -eq 77 ]; then echo "check_export.py skipped (no NumPy)"; else fail "check_export.py"; fi
fi

echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]

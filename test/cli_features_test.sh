#!/bin/sh
# The features a user expects from the cltrain CLI, run as a user would: `predict`, per-class
# precision, recall and F1 in `eval`, the training plot (learning rate, accuracy, smoothing
# from the first step), device selection checked in every command with the devices named,
# and cltrain-bench's summary. Exit statuses: 2 usage, 1 failure.
# Usage: cli_features_test.sh CLTRAIN CLTRAIN_BENCH
set -u
exe=$1
bench=$2
passed=0
failed=0
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
: "${CLTRAIN_DEVICE:=portable computing}"
export CLTRAIN_DEVICE

fail() { # fail MESSAGE: counts a failure and shows the last command's output
    failed=$((failed + 1))
    echo "FAIL $1" >&2
    sed 's/^/    /' "$tmp/out" "$tmp/err" >&2
}

ok() {
    passed=$((passed + 1))
}

check() { # check NAME EXPECTED_STATUS COMMAND...
    name=$1
    want=$2
    shift 2
    "$@" >"$tmp/out" 2>"$tmp/err"
    got=$?
    if [ "$got" -eq "$want" ]; then ok; else fail "$name: exit $got, wanted $want"; fi
}

expect_err() { # expect_err NAME PATTERN: the last command's stderr matches PATTERN
    if grep -qi -- "$2" "$tmp/err"; then ok; else fail "$1: stderr lacks \"$2\""; fi
}

expect_out() { # expect_out NAME PATTERN: the last command's stdout matches PATTERN
    if grep -qi -- "$2" "$tmp/out"; then ok; else fail "$1: stdout lacks \"$2\""; fi
}

# ---- Data made here --------------------------------------------------------------------------
# A CSV of three classes of points (label last), separable by the largest coordinate.
awk 'BEGIN { srand(7); print "a,b,c,label";
    for (i = 0; i < 300; i++) { a = rand(); b = rand(); c = rand(); l = 0;
        if (b > a && b > c) l = 1; if (c > a && c > b) l = 2;
        printf "%.4f,%.4f,%.4f,%d\n", a, b, c, l } }' >"$tmp/points.csv"

# ---- Devices ---------------------------------------------------------------------------------
check "devices --help" 0 "$exe" devices --help
expect_out "devices --help text" "usage: cltrain devices"
for c in train eval sample predict; do
    check "$c --device no match" 1 "$exe" $c --model mlp --data "csv:$tmp/missing.csv" \
        --checkpoint "$tmp/missing.safetensors" --device no-such-device-anywhere
    expect_err "$c --device message" "no device matches --device \"no-such-device-anywhere\""
    expect_err "$c --device lists the devices" "^  [0-9]*:[0-9]*  "
    # Refused before any work: the missing data and checkpoint are not what it reports.
    if grep -q "missing" "$tmp/err"; then fail "$c read its inputs before checking the device"; else ok; fi
done
CLTRAIN_DEVICE=no-such-device-anywhere check "CLTRAIN_DEVICE no match" 1 "$exe" eval \
    --checkpoint "$tmp/missing.safetensors"
expect_err "CLTRAIN_DEVICE message" "no device matches CLTRAIN_DEVICE"
check "malformed selection" 1 "$exe" train --model mlp --data "csv:$tmp/points.csv" --device 1:2:3
expect_err "malformed selection message" "not a valid selection"
check "devices --warm --device no match" 1 "$exe" devices --warm --device no-such-device-anywhere
expect_err "devices --warm message" "no device matches"
# No OpenCL platform at all (an empty ICD directory): the list says how to enable rusticl, and
# a command that needs a device fails at once saying the same.
mkdir "$tmp/no-icd"
OCL_ICD_VENDORS="$tmp/no-icd" RUSTICL_ENABLE= check "devices with none" 0 "$exe" devices
expect_out "rusticl hint" "RUSTICL_ENABLE=llvmpipe"
OCL_ICD_VENDORS="$tmp/no-icd" RUSTICL_ENABLE= check "train with no device" 1 "$exe" train \
    --model mlp --data "csv:$tmp/points.csv"
expect_err "train with no device message" "no OpenCL device"
expect_err "train with no device hint" "RUSTICL_ENABLE=llvmpipe"

# ---- A trained classifier ----------------------------------------------------------------------
check "train points" 0 "$exe" train --model mlp --width 32 --data "csv:$tmp/points.csv" \
    --epochs 8 --batch 16 --out "$tmp/points.safetensors" --metrics "$tmp/points.jsonl" \
    --plot "$tmp/points.svg" --log-every 1

# ---- eval: per-class precision, recall and F1 ----------------------------------------------------
check "eval" 0 "$exe" eval --checkpoint "$tmp/points.safetensors"
expect_out "eval scores header" "precision *recall *f1 *support"
# Each label's row: its counts, then precision, recall and F1 (three numbers in [0, 1]).
rows=$(grep -cE '^ +[0-2]( +[0-9]+){3} +\| +([01]\.[0-9]{4}|-) +([01]\.[0-9]{4}|-) +([01]\.[0-9]{4}|-) +[0-9]+$' "$tmp/out")
[ "$rows" -eq 3 ] && ok || fail "eval: $rows of 3 class rows carry precision, recall and F1"
expect_out "eval macro average" "macro average"
check "eval --json" 0 "$exe" eval --checkpoint "$tmp/points.safetensors" --json
if python3 -c '
import json, sys
r = json.load(open(sys.argv[1]))
m = r["confusion"]
for c, s in enumerate(r["per_class"]):
    tp, lab, pred = m[c][c], sum(m[c]), sum(row[c] for row in m)
    assert s["support"] == lab
    assert abs(s["recall"] - tp / lab) < 1e-6 and abs(s["precision"] - tp / pred) < 1e-6
    assert abs(s["f1"] - 2 * tp / (lab + pred)) < 1e-6
assert 0 <= r["macro_f1"] <= 1
' "$tmp/out"; then ok; else fail "eval --json per_class does not match its confusion matrix"; fi

echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]

#!/bin/sh
# What `cltrain train` writes and reads, run as a user would on PoCL with small CSV data:
# outputs never destroy data (an input as output, a foreign file, an unwritable path, a second
# run on the same outputs, orphaned temporary files, SIGTERM and SIGHUP, failed saves),
# checkpoint checksums, labels and classes, validation splits and evaluation files, the
# learning-rate schedule of --steps, and the training-loop features (early stopping, the best
# checkpoint, the model summary, --expect-curve).
# Usage: cli_outputs_test.sh CLTRAIN FAILSAVE_SO
set -u
exe=$1
failsave=$(cd "$(dirname "$2")" && pwd)/$(basename "$2")
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

same() { # same NAME FILE1 FILE2: the files are byte for byte equal
    if cmp -s "$2" "$3"; then ok; else fail "$1: $2 changed"; fi
}

# A pid that is certainly not running: a finished child's.
dead_pid() {
    sh -c 'exit 0' &
    p=$!
    wait "$p"
    echo "$p"
}

# ---- Data made here --------------------------------------------------------------------------
# Three classes of points (label last), separable by the largest coordinate.
awk 'BEGIN { srand(7); print "a,b,c,label";
    for (i = 0; i < 300; i++) { a = rand(); b = rand(); c = rand(); l = 0;
        if (b > a && b > c) l = 1; if (c > a && c > b) l = 2;
        printf "%.4f,%.4f,%.4f,%d\n", a, b, c, l } }' >"$tmp/points.csv"
cp "$tmp/points.csv" "$tmp/points.orig"
small="--model mlp --width 16 --depth 1 --batch 16 --epochs 1"

# ---- Outputs that are inputs, or someone else's files -------------------------------------
# shellcheck disable=SC2086
check "--out is the data" 2 "$exe" train $small --data "csv:$tmp/points.csv" --out "$tmp/points.csv"
expect_err "input message" "refusing to overwrite an input"
same "the data survives --out" "$tmp/points.csv" "$tmp/points.orig"
ln -s "$tmp/points.csv" "$tmp/link.csv"
# shellcheck disable=SC2086
check "--metrics is the data by another name" 2 "$exe" train $small --data "csv:$tmp/link.csv" \
    --metrics "$tmp/./points.csv"
same "the data survives --metrics" "$tmp/points.csv" "$tmp/points.orig"
# shellcheck disable=SC2086
check "--plot is the data" 2 "$exe" train $small --data "csv:$tmp/points.csv" --plot "$tmp/points.csv"
same "the data survives --plot" "$tmp/points.csv" "$tmp/points.orig"
echo "my notes" >"$tmp/notes.txt"
cp "$tmp/notes.txt" "$tmp/notes.orig"
for opt in out metrics plot; do
    # shellcheck disable=SC2086
    check "--$opt over a foreign file" 2 "$exe" train $small --data "csv:$tmp/points.csv" \
        "--$opt" "$tmp/notes.txt"
    expect_err "foreign --$opt message" "is not a cltrain"
    same "the foreign file survives --$opt" "$tmp/notes.txt" "$tmp/notes.orig"
done
# shellcheck disable=SC2086
check "--out and --metrics the same file" 2 "$exe" train $small --data "csv:$tmp/points.csv" \
    --out "$tmp/same" --metrics "$tmp/same"

# A first run writes all three; a second replaces its own outputs without --force.
# shellcheck disable=SC2086
check "first run" 0 "$exe" train $small --data "csv:$tmp/points.csv" --out "$tmp/m.st" \
    --metrics "$tmp/m.jsonl" --plot "$tmp/m.svg"
# shellcheck disable=SC2086
check "second run replaces its own outputs" 0 "$exe" train $small --data "csv:$tmp/points.csv" \
    --out "$tmp/m.st" --metrics "$tmp/m.jsonl" --plot "$tmp/m.svg"
[ ! -e "$tmp/m.st.lock" ] && ok || fail "a lock was left behind"
# shellcheck disable=SC2086
check "--force replaces a foreign file" 0 "$exe" train $small --data "csv:$tmp/points.csv" \
    --out "$tmp/notes.txt" --force
cp "$tmp/notes.orig" "$tmp/notes.txt"

# ---- Writability before the first step -------------------------------------------------------
# shellcheck disable=SC2086
check "--out in a missing directory" 1 "$exe" train $small --data "csv:$tmp/points.csv" \
    --out "$tmp/nowhere/m.st"
expect_err "missing directory message" "nowhere"
grep -q "eval at step\|step 1/" "$tmp/err" && fail "trained before finding a bad --out" || ok
# shellcheck disable=SC2086
check "--plot in a missing directory" 1 "$exe" train $small --data "csv:$tmp/points.csv" \
    --plot "$tmp/nowhere/m.svg"
expect_err "plot message names the user's path" "nowhere/m.svg"
grep -q "\.tmp" "$tmp/err" && fail "the plot message names a temporary file" || ok
# shellcheck disable=SC2086
check "--metrics under a file" 1 "$exe" train $small --data "csv:$tmp/points.csv" \
    --metrics "$tmp/notes.txt/m.jsonl"

# ---- Locks --------------------------------------------------------------------------------------
echo $$ >"$tmp/m.st.lock" # this shell runs: a live holder
# shellcheck disable=SC2086
check "a second run on the same output" 1 "$exe" train $small --data "csv:$tmp/points.csv" \
    --out "$tmp/m.st"
expect_err "lock message" "another run"
dead=$(dead_pid)
echo "$dead" >"$tmp/m.st.lock"
# shellcheck disable=SC2086
check "a stale lock is taken over" 0 "$exe" train $small --data "csv:$tmp/points.csv" \
    --out "$tmp/m.st"
expect_err "stale lock message" "stale lock"
[ ! -e "$tmp/m.st.lock" ] && ok || fail "the taken-over lock was left behind"

# ---- Orphaned temporary files ---------------------------------------------------------------
dead=$(dead_pid)
echo partial >"$tmp/m.st.tmp.$dead.Ab12Cd"
echo mine >"$tmp/m.st.tmp.$$.Ab12Cd" # a live process's: kept
# shellcheck disable=SC2086
check "orphans removed" 0 "$exe" train $small --data "csv:$tmp/points.csv" --out "$tmp/m.st"
[ ! -e "$tmp/m.st.tmp.$dead.Ab12Cd" ] && ok || fail "the orphan of a dead process is still there"
[ -e "$tmp/m.st.tmp.$$.Ab12Cd" ] && ok || fail "the temporary file of a live process was removed"
expect_err "orphan message" "removed .*m.st.tmp.$dead"
rm -f "$tmp/m.st.tmp.$$.Ab12Cd"

# ---- Failed saves ---------------------------------------------------------------------------------
# 270 examples in batches of 16: 16 steps an epoch; saves at steps 4, 8, 12, 16 (the last).
# The second and third fail (a full disk): training goes on, the last save succeeds.
# shellcheck disable=SC2086
check "failed periodic saves" 0 env LD_PRELOAD="$failsave" CLTRAIN_TEST_FAIL_SAVES=2,3 \
    "$exe" train $small --data "csv:$tmp/points.csv" --out "$tmp/f.st" --save-every 4
expect_err "failed save reported" "retried at the next save"
grep -q "trained 16 steps" "$tmp/err" && ok || fail "a failed periodic save ended training"
check "the final checkpoint evaluates" 0 "$exe" eval --checkpoint "$tmp/f.st"
# The last save fails: the run says so with status 1.
# shellcheck disable=SC2086
check "failed final save" 1 env LD_PRELOAD="$failsave" CLTRAIN_TEST_FAIL_SAVES=4 \
    "$exe" train $small --data "csv:$tmp/points.csv" --out "$tmp/g.st" --save-every 4

# ---- SIGTERM and SIGHUP save and exit like SIGINT -----------------------------------------------
for sig in TERM:15 HUP:1; do
    num=${sig#*:}
    sig=${sig%:*}
    rm -f "$tmp/s.st" "$tmp/s.jsonl"
    "$exe" train $small --epochs 100000 --data "csv:$tmp/points.csv" --out "$tmp/s.st" \
        --metrics "$tmp/s.jsonl" --log-every 1 >"$tmp/out" 2>"$tmp/err" &
    pid=$!
    i=0 # wait (at most 10 minutes) until it trains
    while ! grep -q '"type":"train"' "$tmp/s.jsonl" 2>/dev/null && [ $i -lt 1200 ]; do
        sleep 0.5
        i=$((i + 1))
    done
    kill -s "$sig" "$pid"
    wait "$pid"
    got=$?
    want=$((128 + num))
    [ "$got" -eq "$want" ] && ok || fail "SIG$sig: exit $got, wanted $want"
    expect_err "SIG$sig message" "interrupted by SIG$sig"
    check "SIG$sig checkpoint resumes" 0 "$exe" train --resume "$tmp/s.st" --steps 1 \
        --out "$tmp/s.st"
done

# ---- Checkpoint checksums --------------------------------------------------------------------
# A flipped bit in the middle of the data section (the weights) is found on every read.
size=$(wc -c <"$tmp/m.st")
cp "$tmp/m.st" "$tmp/flip.st"
at=$((size - 101))
byte=$(od -An -tu1 -j "$at" -N1 "$tmp/m.st" | tr -d ' ')
printf "$(printf '\\%03o' $((byte ^ 16)))" | dd of="$tmp/flip.st" bs=1 seek="$at" conv=notrunc 2>/dev/null
cmp -s "$tmp/m.st" "$tmp/flip.st" && fail "the byte was not flipped" || ok
check "eval of a flipped checkpoint" 1 "$exe" eval --checkpoint "$tmp/flip.st"
expect_err "flipped checkpoint message" "corrupt"
check "resume from a flipped checkpoint" 1 "$exe" train --resume "$tmp/flip.st"
check "the intact checkpoint evaluates" 0 "$exe" eval --checkpoint "$tmp/m.st"

echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]

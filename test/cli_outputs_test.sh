#!/bin/sh
# What `cltrain train` writes and reads, run as a user would on PoCL with small CSV data:
# outputs never destroy data (an input as output, a foreign file, an unwritable path, a second
# run on the same outputs, orphaned temporary files, SIGTERM and SIGHUP, failed saves),
# checkpoint checksums, labels and classes, validation splits and evaluation files, the
# learning-rate schedule of --steps, and the training-loop features (early stopping, the best
# checkpoint, the model summary, --expect-curve).
# Usage: cli_outputs_test.sh CLTRAIN FAILSAVE_SO LIBRARY_CHECKPOINT
set -u
exe=$1
failsave=$(cd "$(dirname "$2")" && pwd)/$(basename "$2")
library_checkpoint=$3
. "$(dirname "$0")/cli_lib.sh"

# ---- Data made here --------------------------------------------------------------------------
# Three classes of points (label last), separable by the largest coordinate.
awk 'BEGIN { srand(7); print "a,b,c,label";
    for (i = 0; i < 300; i++) { a = rand(); b = rand(); c = rand(); l = 0;
        if (b > a && b > c) l = 1; if (c > a && c > b) l = 2;
        printf "%.4f,%.4f,%.4f,%d\n", a, b, c, l } }' >"$tmp/points.csv"
cp "$tmp/points.csv" "$tmp/points.orig"
small="--model mlp --width 16 --depth 1 --batch 16 --epochs 1"

# ---- Outputs that are inputs, or someone else's files -------------------------------------
# On a copy of the data, so that a failure here does not spoil the tests below.
cp "$tmp/points.csv" "$tmp/victim.csv"
# shellcheck disable=SC2086
check "--out is the data" 2 "$exe" train $small --data "csv:$tmp/victim.csv" --out "$tmp/victim.csv"
expect_err "input message" "refusing to overwrite an input"
same "the data survives --out" "$tmp/victim.csv" "$tmp/points.orig"
cp "$tmp/points.orig" "$tmp/victim.csv"
ln -s "$tmp/victim.csv" "$tmp/link.csv"
# shellcheck disable=SC2086
check "--metrics is the data by another name" 2 "$exe" train $small --data "csv:$tmp/link.csv" \
    --metrics "$tmp/./victim.csv"
same "the data survives --metrics" "$tmp/victim.csv" "$tmp/points.orig"
cp "$tmp/points.orig" "$tmp/victim.csv"
# shellcheck disable=SC2086
check "--plot is the data" 2 "$exe" train $small --data "csv:$tmp/victim.csv" --plot "$tmp/victim.csv"
same "the data survives --plot" "$tmp/victim.csv" "$tmp/points.orig"
echo "my notes" >"$tmp/notes.txt"
cp "$tmp/notes.txt" "$tmp/notes.orig"
for opt in out metrics plot; do
    # shellcheck disable=SC2086
    check "--$opt over a foreign file" 2 "$exe" train $small --data "csv:$tmp/points.csv" \
        "--$opt" "$tmp/notes.txt"
    expect_err "foreign --$opt message" "is not a cltrain"
    same "the foreign file survives --$opt" "$tmp/notes.txt" "$tmp/notes.orig"
    cp "$tmp/notes.orig" "$tmp/notes.txt"
done
# shellcheck disable=SC2086
check "--metrics -" 2 "$exe" train $small --data "csv:$tmp/points.csv" --metrics -
expect_err "standard output message" "give a file name"
[ ! -e ./- ] && ok || fail "--metrics - wrote a file named -"
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
# Batches of 1: an epoch is 270 steps, so the run is stopped long before its first epoch's save,
# and only the save on the signal can leave a checkpoint, at the step it stopped.
for sig in TERM:15 HUP:1; do
    num=${sig#*:}
    sig=${sig%:*}
    rm -f "$tmp/s.st" "$tmp/s.jsonl"
    "$exe" train --model mlp --width 16 --depth 1 --batch 1 --epochs 1000 \
        --data "csv:$tmp/points.csv" --out "$tmp/s.st" --metrics "$tmp/s.jsonl" --log-every 1 \
        >"$tmp/out" 2>"$tmp/err" &
    pid=$!
    i=0 # wait (at most 10 minutes) until it trains, or fails
    while kill -0 "$pid" 2>/dev/null && ! grep -q '"type":"train"' "$tmp/s.jsonl" 2>/dev/null &&
        [ $i -lt 1200 ]; do
        sleep 0.5
        i=$((i + 1))
    done
    kill -s "$sig" "$pid"
    wait "$pid"
    got=$?
    want=$((128 + num))
    [ "$got" -eq "$want" ] && ok || fail "SIG$sig: exit $got, wanted $want"
    expect_err "SIG$sig message" "interrupted by SIG$sig"
    last=$(sed -n 's/.*"type":"train".*"step":\([0-9]*\),.*/\1/p' "$tmp/s.jsonl" | tail -n 1)
    check "SIG$sig checkpoint resumes" 0 "$exe" train --resume "$tmp/s.st" --steps $((last + 1)) \
        --out "$tmp/s.st"
    expect_err "SIG$sig saved at the step it stopped" "resuming .* at step $last of"
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

# ---- Labels and classes ------------------------------------------------------------------------
awk -F, 'NR == 1 { print; next } { $4 = $4 + 1; print }' OFS=, "$tmp/points.csv" >"$tmp/from1.csv"
awk -F, 'NR == 1 { print; next } NR == 50 { $4 = 1000000 } { print }' OFS=, "$tmp/points.csv" \
    >"$tmp/typo.csv"
awk -F, 'NR == 1 { print; next } { if ($4 == 1) $4 = 3; print }' OFS=, "$tmp/points.csv" \
    >"$tmp/gap.csv"
# shellcheck disable=SC2086
check "labels from 1" 1 "$exe" train $small --data "csv:$tmp/from1.csv"
expect_err "labels from 1 message" "line 2: label .*no example has label 0"
# shellcheck disable=SC2086
check "a mistyped label" 1 "$exe" train $small --data "csv:$tmp/typo.csv"
expect_err "mistyped label message" "line 50: label 1000000"
# shellcheck disable=SC2086
check "a gap in the labels" 1 "$exe" train $small --data "csv:$tmp/gap.csv"
expect_err "gap message" "no example has label 1"
expect_err "classes hint" "--classes K"
# shellcheck disable=SC2086
check "--classes allows the gap" 0 "$exe" train $small --data "csv:$tmp/gap.csv" --classes 4 \
    --out "$tmp/gap.st"
check "eval of the gap model" 0 "$exe" eval --checkpoint "$tmp/gap.st"
grep -q "^ *3 " "$tmp/out" && ok || fail "the confusion matrix lacks class 3"
# shellcheck disable=SC2086
check "--classes below a label" 1 "$exe" train $small --data "csv:$tmp/typo.csv" --classes 4
expect_err "--classes message" "line 50: label 1000000 is not below the number of classes, 4"

# ---- Validation, evaluation files, eval of a whole file ----------------------------------------
head -n 101 "$tmp/points.csv" >"$tmp/test.csv" # header and 100 rows
# shellcheck disable=SC2086
check "--eval-data" 0 "$exe" train $small --data "csv:$tmp/points.csv" --eval-data "csv:$tmp/test.csv" \
    --out "$tmp/e.st" --metrics "$tmp/e.jsonl"
final=$(tail -n 1 "$tmp/out")
echo "$final" | grep -q "of 100 correct" && ok || fail "the final evaluation is not on the 100 rows of --eval-data: $final"
grep -q '"type":"eval".*"examples":30,' "$tmp/e.jsonl" && ok || fail "per-epoch evaluation not on the validation split"
grep -q '"type":"test".*"examples":100,' "$tmp/e.jsonl" && ok || fail "no test record"
check "eval of an --eval-data checkpoint" 0 "$exe" eval --checkpoint "$tmp/e.st"
[ "$(head -n 1 "$tmp/out")" = "$final" ] && ok || fail "eval differs from train's final evaluation"
check "eval --data scores the whole file" 0 "$exe" eval --checkpoint "$tmp/e.st" --data "csv:$tmp/points.csv"
head -n 1 "$tmp/out" | grep -q "of 300 correct" && ok || fail "eval --data did not score all 300 rows"
check "eval --data --held-out scores the split" 0 "$exe" eval --checkpoint "$tmp/e.st" \
    --data "csv:$tmp/points.csv" --held-out
head -n 1 "$tmp/out" | grep -q "of 30 correct" && ok || fail "eval --held-out did not score the 30 held out"
# shellcheck disable=SC2086
check "--val-fraction 0.5" 0 "$exe" train $small --data "csv:$tmp/points.csv" --val-fraction 0.5
tail -n 1 "$tmp/out" | grep -q "of 150 correct" && ok || fail "--val-fraction 0.5 did not hold out half"
# shellcheck disable=SC2086
check "--val-fraction 0 without --eval-data" 1 "$exe" train $small --data "csv:$tmp/points.csv" \
    --val-fraction 0
expect_err "nothing to evaluate message" "needs --eval-data"

# An IDX folder (Fashion-MNIST's layout) of 40 training and 10 test images of 4x4: each epoch
# evaluates the validation split of the training images (4), the end the test images (10).
mkdir "$tmp/idx"
idx() { # idx NAME COUNT_OCTAL COUNT
    { printf "\\000\\000\\010\\003\\000\\000\\000\\$2\\000\\000\\000\\004\\000\\000\\000\\004"
      head -c $(($3 * 16)) /dev/zero; } >"$tmp/idx/$1-images-idx3-ubyte"
    { printf "\\000\\000\\010\\001\\000\\000\\000\\$2"
      i=0; while [ $i -lt "$3" ]; do printf '\000\001'; i=$((i + 2)); done; } \
        >"$tmp/idx/$1-labels-idx1-ubyte"
}
idx train 050 40
idx t10k 012 10
check "idx: validation split, test at the end" 0 "$exe" train --model mlp --width 8 --depth 1 \
    --batch 4 --epochs 2 --data "idx:$tmp/idx" --metrics "$tmp/idx.jsonl"
[ "$(grep -c '"type":"eval".*"examples":4,' "$tmp/idx.jsonl")" -eq 2 ] && ok \
    || fail "the per-epoch evaluations are not on the 4 validation images"
[ "$(grep -c '"type":"test".*"examples":10,' "$tmp/idx.jsonl")" -eq 1 ] && ok \
    || fail "the test images are not evaluated once at the end"
tail -n 1 "$tmp/out" | grep -q "of 10 correct" && ok || fail "the final line is not the test set's"

# ---- Batch size on small data -----------------------------------------------------------------
head -n 41 "$tmp/points.csv" >"$tmp/tiny.csv" # 40 rows: 36 to train
check "the default batch on 36 examples (batches of 3)" 0 "$exe" train --model mlp --width 8 --depth 1 \
    --epochs 1 --data "csv:$tmp/tiny.csv"
grep -q "trained 12 steps" "$tmp/err" && ok || fail "the default batch (3 of 36) gave no 12 steps an epoch"
check "--batch larger than the set" 0 "$exe" train --model mlp --width 8 --depth 1 \
    --epochs 2 --batch 500 --data "csv:$tmp/tiny.csv"
expect_err "batch cap message" "more than the 36 training examples"

# ---- --steps ends the schedule; a larger --steps continues; changed data is refused -----------
# shellcheck disable=SC2086
check "--steps 12" 0 "$exe" train $small --epochs 20 --steps 12 --data "csv:$tmp/points.csv" \
    --log-every 1 --metrics "$tmp/lr.jsonl" --out "$tmp/lr.st"
last_lr=$(sed -n 's/.*"step":12,.*"lr":\([^,]*\),.*/\1/p' "$tmp/lr.jsonl")
awk -v lr="$last_lr" 'BEGIN { exit !(lr != "" && lr < 0.0002) }' && ok \
    || fail "the learning rate at step 12 of --steps 12 is $last_lr, not near its minimum 1e-4"
check "resume with a larger --steps" 0 "$exe" train --resume "$tmp/lr.st" --steps 20 \
    --metrics "$tmp/lr.jsonl" --out "$tmp/lr.st"
expect_err "continued" "trained 8 steps"
cp "$tmp/points.csv" "$tmp/changing.csv"
# shellcheck disable=SC2086
check "run on data that will change" 0 "$exe" train $small --epochs 2 --stop-at 5 \
    --data "csv:$tmp/changing.csv" --out "$tmp/ch.st"
echo "0.5,0.5,0.9,2" >>"$tmp/changing.csv"
check "resume after the data changed" 1 "$exe" train --resume "$tmp/ch.st"
expect_err "changed data message" "changed since it was saved"

# ---- Early stopping, the best checkpoint, the model summary, the expected curve ---------------
# shellcheck disable=SC2086
check "--patience and --keep-best" 0 "$exe" train $small --epochs 200 --lr 0.05 --eval-every 2 \
    --patience 2 --data "csv:$tmp/points.csv" --out "$tmp/p.safetensors" --keep-best \
    --metrics "$tmp/p.jsonl"
expect_err "early stop message" "early stop at step"
grep -q "trained 3200 steps" "$tmp/err" && fail "--patience did not stop the run" || ok
[ -s "$tmp/p.best.safetensors" ] && ok || fail "--keep-best wrote no p.best.safetensors"
best=$(sed -n 's/.*"type":"eval".*"loss":\([^,]*\),.*/\1/p' "$tmp/p.jsonl" | sort -g | head -n 1)
check "eval of the best checkpoint" 0 "$exe" eval --checkpoint "$tmp/p.best.safetensors" --json
grep -q "\"loss\":$best," "$tmp/out" && ok || fail "the best checkpoint's loss is not the lowest evaluation's ($best)"
# shellcheck disable=SC2086
check "model summary" 0 "$exe" train --model mlp --width 16 --depth 1 --batch 16 --epochs 1 \
    --data "csv:$tmp/points.csv"
grep -q "fc1 *\[B, 16\] *64$" "$tmp/err" && ok || fail "the summary lacks fc1 [B, 16] with 64 parameters"
grep -q "out *\[B, 3\] *51$" "$tmp/err" && ok || fail "the summary lacks out [B, 3] with 51 parameters"
# shellcheck disable=SC2086
check "golden run" 0 "$exe" train $small --data "csv:$tmp/points.csv" --log-every 2 \
    --metrics "$tmp/golden.jsonl"
# shellcheck disable=SC2086
check "the same curve" 0 "$exe" train $small --data "csv:$tmp/points.csv" --log-every 2 \
    --expect-curve "$tmp/golden.jsonl" --tolerance 1e-4
# Step 6's golden loss moved by 0.01: the run drifts there.
sed 's/\("step":6,"loss":\)\([^,]*\)/\1X\2/' "$tmp/golden.jsonl" \
    | awk '{ if (match($0, /X[^,]*/)) { v = substr($0, RSTART + 1, RLENGTH - 1) + 0.01;
             $0 = substr($0, 1, RSTART - 1) v substr($0, RSTART + RLENGTH) } print }' >"$tmp/drift.jsonl"
# shellcheck disable=SC2086
check "a drifted curve" 3 "$exe" train $small --data "csv:$tmp/points.csv" --log-every 2 \
    --expect-curve "$tmp/drift.jsonl" --tolerance 1e-3
expect_err "drift message" "drifted from .* at step 6:"

# ---- Checkpoints saved by a library program -------------------------------------------------
check "a library program's checkpoint" 0 "$library_checkpoint" "$tmp/lib.st" "csv:$tmp/points.csv"
check "cltrain eval of it" 0 "$exe" eval --checkpoint "$tmp/lib.st" --data "csv:$tmp/points.csv"
head -n 1 "$tmp/out" | grep -q "of 300 correct" && ok || fail "eval of a library checkpoint did not score the 300 rows"
check "a library checkpoint without the metadata" 0 "$library_checkpoint" "$tmp/bare.st" x bare
check "cltrain eval of it" 1 "$exe" eval --checkpoint "$tmp/bare.st"
expect_err "bare checkpoint message" "docs/training.md"

finish

#!/bin/sh
# End-to-end runs of `cltrain train`, `eval` and `sample` on PoCL, on small subsets: each
# built-in model, a model file, a CSV and a text dataset, checkpoints evaluated after saving
# (the same result as train's final evaluation), an exact resume (the losses of a run
# stopped and resumed equal those of a straight run), and the errors of bad usage and bad
# files with their exit statuses (2 usage, 1 failure, 3 a missed expectation).
# Usage: train_test.sh CLTRAIN
set -u
exe=$1
. "$(dirname "$0")/cli_lib.sh"
fm=/usr/share/datasets/fashion-mnist

# The (step, loss) pairs of a metrics file's train records.
losses() {
    sed -n 's/.*"type":"train".*"step":\([0-9]*\),"loss":\([^,]*\),.*/\1 \2/p' "$1"
}

# ---- Data made here --------------------------------------------------------------------------
# A text of a few repeated sentences for the character model.
i=0
while [ $i -lt 60 ]; do
    echo "the quick brown fox jumps over the lazy dog. pack my box with five dozen jugs."
    i=$((i + 1))
done >"$tmp/text.txt"
# A CSV of three classes of points (label last), separable by the largest coordinate.
awk 'BEGIN { srand(7); print "a,b,c,label";
    for (i = 0; i < 300; i++) { a = rand(); b = rand(); c = rand(); l = 0;
        if (b > a && b > c) l = 1; if (c > a && c > b) l = 2;
        printf "%.4f,%.4f,%.4f,%d\n", a, b, c, l } }' >"$tmp/points.csv"
printf 'linear 32\nbatchnorm\nrelu\ndropout 0.2\nlinear classes\n' >"$tmp/model.txt"

# ---- Built-in models ------------------------------------------------------------------------
if [ -d "$fm" ]; then
    check "train mlp" 0 "$exe" train --model mlp --data fashion-mnist --limit 512 --epochs 1 \
        --batch 64 --metrics "$tmp/mlp.jsonl" --out "$tmp/mlp.safetensors" \
        --plot "$tmp/mlp.svg" --width 64
    final=$(tail -n 1 "$tmp/out")
    grep -q '"type":"train"' "$tmp/mlp.jsonl" && grep -q '"type":"eval"' "$tmp/mlp.jsonl" \
        && ok || fail "mlp metrics lack train or eval records"
    head -c 100 "$tmp/mlp.svg" | grep -q '<svg\|<?xml' && grep -q 'polyline' "$tmp/mlp.svg" \
        && ok || fail "mlp plot is not an SVG chart"

    check "eval mlp" 0 "$exe" eval --checkpoint "$tmp/mlp.safetensors"
    [ "$(head -n 1 "$tmp/out")" = "$final" ] && ok \
        || fail "eval after save differs from train's final evaluation: \"$final\""
    grep -q "confusion" "$tmp/out" && ok || fail "eval prints no confusion matrix"

    check "train cnn" 0 "$exe" train --model cnn --data fashion-mnist --limit 256 --epochs 1 \
        --batch 32 --width 8 --out "$tmp/cnn.safetensors"
    check "eval cnn" 0 "$exe" eval --checkpoint "$tmp/cnn.safetensors" --json
    grep -q '"accuracy":' "$tmp/out" && ok || fail "eval --json prints no accuracy"

    check "expect-accuracy missed" 3 "$exe" train --model mlp --data fashion-mnist --limit 128 \
        --epochs 1 --batch 64 --width 16 --expect-accuracy 1.01
    expect_err "expect-accuracy message" "below the expected"
else
    echo "skipping the Fashion-MNIST runs: $fm is missing" >&2
fi

check "train gpt" 0 "$exe" train --model gpt --data "text:$tmp/text.txt" --width 32 --depth 1 \
    --heads 2 --context 16 --batch 8 --steps 40 --lr 0.01 --out "$tmp/gpt.safetensors" \
    --expect-loss-below 3.0
check "sample gpt" 0 "$exe" sample --checkpoint "$tmp/gpt.safetensors" --length 40 \
    --prompt "the " --seed 3
[ "$(head -c 44 "$tmp/out" | wc -c)" -eq 44 ] && ok || fail "sample wrote too little"
check "eval gpt" 0 "$exe" eval --checkpoint "$tmp/gpt.safetensors"

# ---- A model file and a CSV ---------------------------------------------------------------------
check "train file model on csv" 0 "$exe" train --model "file:$tmp/model.txt" \
    --data "csv:$tmp/points.csv" --epochs 8 --batch 16 --lr 0.01 \
    --out "$tmp/file.safetensors" --expect-accuracy 0.7
final=$(tail -n 1 "$tmp/out")
rm "$tmp/model.txt" # the checkpoint carries the model file
check "eval file model" 0 "$exe" eval --checkpoint "$tmp/file.safetensors"
[ "$(head -n 1 "$tmp/out")" = "$final" ] && ok || fail "csv eval differs from train's: \"$final\""

# The same points with the label in the first column.
awk -F, '{ print $4 "," $1 "," $2 "," $3 }' "$tmp/points.csv" >"$tmp/first.csv"
check "csv label column" 0 "$exe" train --model mlp --width 32 --data "csv:$tmp/first.csv" \
    --label-column 0 --epochs 8 --batch 16 --out "$tmp/first.safetensors" --expect-accuracy 0.7
final=$(tail -n 1 "$tmp/out")
check "eval keeps the label column" 0 "$exe" eval --checkpoint "$tmp/first.safetensors"
[ "$(head -n 1 "$tmp/out")" = "$final" ] && ok || fail "label-column eval differs: \"$final\""

# ---- Exact resume ---------------------------------------------------------------------------
# 270 training examples in batches of 16: 16 steps per epoch; 2 epochs, stopped at step 11
# (mid-epoch) and resumed. Batch norm and dropout make the state and the masks matter.
printf 'linear 24\nbatchnorm\nrelu\ndropout 0.3\nlinear classes\n' >"$tmp/resume.txt"
common="--model file:$tmp/resume.txt --data csv:$tmp/points.csv --batch 16 --epochs 2 --log-every 1 --seed 5"
# shellcheck disable=SC2086
check "straight run" 0 "$exe" train $common --metrics "$tmp/straight.jsonl"
straight_final=$(tail -n 1 "$tmp/out")
# shellcheck disable=SC2086
check "run stopped at step 11" 0 "$exe" train $common --stop-at 11 --out "$tmp/resume.safetensors" \
    --metrics "$tmp/resumed.jsonl"
echo '{"type":"train","epoch":9,"step":12,"loss":99,"lr":0,"x":0}' >>"$tmp/resumed.jsonl"
check "resumed run" 0 "$exe" train --resume "$tmp/resume.safetensors" --steps 0 \
    --metrics "$tmp/resumed.jsonl"
losses "$tmp/straight.jsonl" >"$tmp/a"
losses "$tmp/resumed.jsonl" >"$tmp/b"
if [ -s "$tmp/a" ] && cmp -s "$tmp/a" "$tmp/b"; then ok; else
    fail "resumed losses differ from the straight run's"; diff "$tmp/a" "$tmp/b" | head >&2
fi
[ "$(tail -n 1 "$tmp/out")" = "$straight_final" ] && ok || fail "resumed final evaluation differs"
check "resume with a conflicting option" 2 "$exe" train --resume "$tmp/resume.safetensors" --lr 0.5
expect_err "conflict message" "differs from the checkpoint"
# Biases and batch norm are exempt from weight decay by default, recorded in the checkpoint
# (the exact resume above ran with the exemption); --decay-all cannot change it on resume.
if head -c 8192 "$tmp/resume.safetensors" | grep -aq '"train.decay_all":"0"'; then ok; else
    fail "the checkpoint does not record train.decay_all 0"
fi
check "resume with --decay-all" 2 "$exe" train --resume "$tmp/resume.safetensors" --decay-all
expect_err "decay-all conflict message" "decay-all differs from the checkpoint"

# ---- Errors ---------------------------------------------------------------------------------
check "no command options" 2 "$exe" train
check "unknown flag" 2 "$exe" train --model mlp --data fashion-mnist --frobnicate
expect_err "unknown flag message" "unknown option \"--frobnicate\""
check "missing value" 2 "$exe" train --model mlp --data fashion-mnist --epochs
expect_err "missing value message" "needs a value"
check "bad number" 2 "$exe" train --model mlp --data fashion-mnist --epochs two
expect_err "bad number message" "not an integer"
check "unknown model" 2 "$exe" train --model resnet --data fashion-mnist
check "unknown data" 2 "$exe" train --model mlp --data mnist
check "missing data file" 1 "$exe" train --model mlp --data "idx:$tmp/nowhere"
expect_err "missing file message" "nowhere"
mkdir "$tmp/bad"
printf 'not an idx file' >"$tmp/bad/train-images-idx3-ubyte"
printf 'nor this' >"$tmp/bad/train-labels-idx1-ubyte"
check "corrupt dataset" 1 "$exe" train --model mlp --data "idx:$tmp/bad"
expect_err "corrupt dataset message" "idx"
printf '1,2,0\n3,4\n' >"$tmp/ragged.csv"
check "ragged csv" 1 "$exe" train --model mlp --data "csv:$tmp/ragged.csv"
printf 'linear 32\nrelu\nconv2d 8\nlinear classes\n' >"$tmp/bad_model.txt"
check "malformed model file" 1 "$exe" train --model "file:$tmp/bad_model.txt" \
    --data "csv:$tmp/points.csv"
expect_err "model file message names the line" "line 3"
check "missing model file" 1 "$exe" train --model "file:$tmp/none.txt" --data "csv:$tmp/points.csv"
check "gpt on images" 1 "$exe" train --model gpt --data "csv:$tmp/points.csv"
check "eval without checkpoint" 2 "$exe" eval
check "eval of a missing checkpoint" 1 "$exe" eval --checkpoint "$tmp/none.safetensors"
printf 'garbage garbage garbage' >"$tmp/bad.safetensors"
check "eval of a corrupt checkpoint" 1 "$exe" eval --checkpoint "$tmp/bad.safetensors"
check "sample of a classifier" 1 "$exe" sample --checkpoint "$tmp/file.safetensors"
check "sample with an unknown character" 2 "$exe" sample --checkpoint "$tmp/gpt.safetensors" \
    --prompt "XYZ"
check "model too large for the device" 1 "$exe" train --model mlp --width 40000 --depth 8 \
    --data "csv:$tmp/points.csv"
expect_err "too large message" "does not fit"
check "no such device" 1 "$exe" train --model mlp --data "csv:$tmp/points.csv" \
    --device no-such-device-anywhere
expect_err "device message" "no device matches"
check "train --help" 0 "$exe" train --help

finish

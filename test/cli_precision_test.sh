#!/bin/sh
# `cltrain train --precision fp32|fp16|bf16` (issue 16, docs/training.md): the option's
# parsing and errors, train.precision in the checkpoint, --resume taking it from the checkpoint
# and refusing a different one, a checkpoint without the key read as fp32, the metrics'
# loss_scale and skipped_steps, and eval, predict and sample of a checkpoint whatever its
# precision.
#
# The 16-bit runs check what this build does: a library that trains in 16 bits (the memory
# line with the activations beside fp32's, the loss scale in fp16's metrics and progress line,
# the first loss within 2e-2 relative of fp32's, the 16-bit checkpoint resumed), or one that
# refuses a 16-bit precision (status 1 and the library's "trainers run in fp32 only" line,
# nothing written; the 16-bit checkpoints are then made by editing an fp32 one's metadata).
# Which of the two it saw is printed at the end. Runs are 4 to 8 steps of a 115-parameter MLP
# on 240 rows, with CLTRAIN_TUNE=0 (no GEMM timing), so the test takes seconds.
# Usage: cli_precision_test.sh CLTRAIN
set -u
exe=$1
. "$(dirname "$0")/cli_lib.sh"
export CLTRAIN_TUNE=0

awk 'BEGIN { srand(11); print "a,b,c,label";
    for (i = 0; i < 240; i++) { a = rand(); b = rand(); c = rand(); l = 0;
        if (b > a && b > c) l = 1; if (c > a && c > b) l = 2;
        printf "%.4f,%.4f,%.4f,%d\n", a, b, c, l } }' >"$tmp/points.csv"
run="--model mlp --width 16 --depth 1 --data csv:$tmp/points.csv --batch 16 --log-every 1"

# meta FILE KEY: the value of a checkpoint's metadata key ("<absent>" without it).
meta() {
    python3 - "$1" "$2" <<'PY'
import json, struct, sys
with open(sys.argv[1], "rb") as f:
    n = struct.unpack("<Q", f.read(8))[0]
    print(json.loads(f.read(n)).get("__metadata__", {}).get(sys.argv[2], "<absent>"))
PY
}

# meta_edit IN OUT KEY [VALUE]: a copy of a checkpoint with KEY set to VALUE, or removed
# without one (the header rewritten and padded to 8 bytes; the data section, which the
# checksum covers, unchanged).
meta_edit() {
    python3 - "$@" <<'PY'
import json, struct, sys
src, dst, key = sys.argv[1:4]
with open(src, "rb") as f:
    n = struct.unpack("<Q", f.read(8))[0]
    head = json.loads(f.read(n))
    data = f.read()
if len(sys.argv) > 4:
    head["__metadata__"][key] = sys.argv[4]
else:
    del head["__metadata__"][key]
text = json.dumps(head, separators=(",", ":")).encode()
text += b" " * (-(8 + len(text)) % 8)
with open(dst, "wb") as f:
    f.write(struct.pack("<Q", len(text)) + text + data)
PY
}

# losses FILE: "step loss" of each train record of a metrics file.
losses() {
    python3 -c '
import json, sys
for line in open(sys.argv[1]):
    r = json.loads(line)
    if r["type"] == "train":
        print(r["step"], repr(r["loss"]))' "$1"
}

# ---- The option ------------------------------------------------------------------------------
check "train --help" 0 "$exe" train --help
expect_out "--help lists --precision" "--precision P"
expect_out "--help names the values" "fp32, fp16 or bf16"
for bad in fp8 FP16 half 16 ""; do
    check "--precision \"$bad\"" 2 "$exe" train $run --precision "$bad"
    expect_err "--precision \"$bad\" message" "--precision: \"$bad\" is not fp32, fp16 or bf16"
done
check "--precision without a value" 2 "$exe" train $run --precision
# A bad value is refused before anything is read or written.
check "bad --precision writes nothing" 2 "$exe" train $run --precision fp64 --out "$tmp/x.safetensors"
[ ! -e "$tmp/x.safetensors" ] && ok || fail "a refused --precision wrote a checkpoint"

# ---- fp32: the default, recorded; loss_scale 1 and skipped_steps 0 in every train record ------
check "train fp32" 0 "$exe" train $run --stop-at 4 --out "$tmp/fp32.safetensors" \
    --metrics "$tmp/fp32.jsonl"
[ "$(meta "$tmp/fp32.safetensors" train.precision)" = fp32 ] && ok \
    || fail "train.precision of a default run is \"$(meta "$tmp/fp32.safetensors" train.precision)\", not fp32"
if grep -q "in fp32\|scale" "$tmp/err"; then fail "an fp32 run shows a precision or a scale"; else ok; fi
if python3 -c '
import json, sys
rs = [json.loads(l) for l in open(sys.argv[1])]
train = [r for r in rs if r["type"] == "train"]
assert [r["step"] for r in train] == [1, 2, 3, 4], train
for r in train:
    assert r["loss_scale"] == 1 and r["skipped_steps"] == 0, r
for r in rs:
    if r["type"] != "train":
        assert "loss_scale" not in r and "skipped_steps" not in r, r
' "$tmp/fp32.jsonl"; then ok; else fail "fp32 metrics: loss_scale 1 and skipped_steps 0 in each train record"; fi
check "train --precision fp32" 0 "$exe" train $run --stop-at 4 --precision fp32 \
    --metrics "$tmp/fp32b.jsonl"
[ "$(losses "$tmp/fp32.jsonl")" = "$(losses "$tmp/fp32b.jsonl")" ] && ok \
    || fail "--precision fp32 trains otherwise than the default"

# ---- Resuming: the checkpoint's precision; another one is refused, naming both -----------------
for p in fp16 bf16; do
    check "resume fp32 with --precision $p" 2 "$exe" train --resume "$tmp/fp32.safetensors" \
        --precision $p --stop-at 8
    expect_err "resume --precision $p message" "--precision $p differs from the checkpoint's fp32"
done
check "resume fp32 with --precision fp32" 0 "$exe" train --resume "$tmp/fp32.safetensors" \
    --precision fp32 --stop-at 6 --out "$tmp/fp32-6.safetensors"
[ "$(meta "$tmp/fp32-6.safetensors" train.precision)" = fp32 ] && ok \
    || fail "a resumed fp32 run saved train.precision \"$(meta "$tmp/fp32-6.safetensors" train.precision)\""
# A checkpoint saved before the key existed trained in fp32.
meta_edit "$tmp/fp32.safetensors" "$tmp/old.safetensors" train.precision
[ "$(meta "$tmp/old.safetensors" train.precision)" = "<absent>" ] && ok || fail "meta_edit kept the key"
check "resume without train.precision" 0 "$exe" train --resume "$tmp/old.safetensors" \
    --stop-at 6 --out "$tmp/old.safetensors"
[ "$(meta "$tmp/old.safetensors" train.precision)" = fp32 ] && ok \
    || fail "a checkpoint without train.precision resumed as \"$(meta "$tmp/old.safetensors" train.precision)\""
meta_edit "$tmp/fp32.safetensors" "$tmp/old.safetensors" train.precision
check "resume without train.precision, --precision fp16" 2 "$exe" train \
    --resume "$tmp/old.safetensors" --precision fp16
expect_err "old checkpoint message" "--precision fp16 differs from the checkpoint's fp32"
meta_edit "$tmp/fp32.safetensors" "$tmp/bad.safetensors" train.precision fp99
check "resume with train.precision fp99" 1 "$exe" train --resume "$tmp/bad.safetensors"
expect_err "bad train.precision message" "cannot resume from .*bad.safetensors: its \"train.precision\" is \"fp99\", not fp32, fp16 or bf16"
check "resume with --precision fp8" 2 "$exe" train --resume "$tmp/fp32.safetensors" --precision fp8
expect_err "resume --precision fp8 message" "--precision: \"fp8\" is not fp32, fp16 or bf16"

# ---- 16-bit runs: trained, or refused by this build ------------------------------------------
trains16=unknown
for p in fp16 bf16; do
    "$exe" train $run --stop-at 4 --precision $p --out "$tmp/$p.safetensors" \
        --metrics "$tmp/$p.jsonl" --plot "$tmp/$p.svg" >"$tmp/out" 2>"$tmp/err"
    got=$?
    if [ $got -eq 1 ] && grep -q "cannot set up the model: precision $p: trainers run in fp32 only" "$tmp/err"; then
        # This build refuses: nothing is written, and the 16-bit checkpoint is the fp32 one
        # with its metadata saying $p (the masters are fp32 in every precision).
        [ "$trains16" = yes ] && fail "fp16 trained but $p is refused" || ok
        trains16=no
        for f in "$p.safetensors" "$p.jsonl" "$p.svg"; do
            [ ! -e "$tmp/$f" ] && ok || fail "a refused $p run wrote $f"
        done
        meta_edit "$tmp/fp32.safetensors" "$tmp/$p.safetensors" train.precision $p
        check "resume $p (refused)" 1 "$exe" train --resume "$tmp/$p.safetensors" --stop-at 8
        expect_err "resume $p refusal" "precision $p: trainers run in fp32 only"
    elif [ $got -eq 0 ]; then
        [ "$trains16" = no ] && fail "fp16 was refused but $p trains" || ok
        trains16=yes
        # The memory line: activations beside the fp32 plan's, and their ratio, below 1.
        if grep -qE "^model mlp .*MiB on .* in $p \(activations [0-9.]+ MiB, fp32 [0-9.]+ MiB: 0\.[0-9]+x\)" "$tmp/err"
        then ok; else fail "$p: the memory line lacks the activations beside fp32's"; fi
        # The progress line shows fp16's loss scale, and only fp16's.
        if [ $p = fp16 ]; then expect_err "fp16 progress shows the scale" "loss [0-9.]*  scale [0-9]"
        elif grep -q "scale" "$tmp/err"; then fail "bf16's progress shows a scale"; else ok; fi
        [ "$(meta "$tmp/$p.safetensors" train.precision)" = $p ] && ok \
            || fail "train.precision of a $p run is \"$(meta "$tmp/$p.safetensors" train.precision)\""
        # Same seed, same weights, same batches: the first loss (the forward pass at the
        # initial weights) within 2e-2 relative of fp32's, as autocast's modes lie within
        # 2e-2 of fp32 (docs/precision.md); fp16 scales its loss (> 1, finite), bf16 does not.
        if python3 -c '
import json, math, sys
p, path, ref = sys.argv[1:4]
train = [json.loads(l) for l in open(path) if "\"train\"" in l]
first = [json.loads(l) for l in open(ref) if "\"train\"" in l][0]
assert [r["step"] for r in train] == [1, 2, 3, 4], train
for r in train:
    assert math.isfinite(r["loss"]) and isinstance(r["skipped_steps"], int), r
    assert r["skipped_steps"] >= 0, r
    if p == "fp16":
        assert r["loss_scale"] > 1 and math.isfinite(r["loss_scale"]), r
    else:
        assert r["loss_scale"] == 1 and r["skipped_steps"] == 0, r
assert abs(train[0]["loss"] - first["loss"]) <= 2e-2 * abs(first["loss"]), (train[0], first)
' $p "$tmp/$p.jsonl" "$tmp/fp32.jsonl"; then ok; else fail "$p metrics (loss_scale, skipped_steps, the first loss)"; fi
        grep -q "$p" "$tmp/$p.svg" && ok || fail "the $p plot's title does not name $p"
        check "resume $p" 0 "$exe" train --resume "$tmp/$p.safetensors" --stop-at 6 \
            --out "$tmp/$p-6.safetensors"
        expect_err "resume $p memory line" "in $p (activations"
        [ "$(meta "$tmp/$p-6.safetensors" train.precision)" = $p ] && ok \
            || fail "a resumed $p run saved train.precision \"$(meta "$tmp/$p-6.safetensors" train.precision)\""
    else
        fail "train --precision $p: exit $got, wanted 0 (trained) or 1 with the refusal of a build that trains in fp32 only"
        sed 's/^/    /' "$tmp/err" >&2
        continue
    fi
    # Either way: another precision on resume is refused, naming both.
    check "resume $p with --precision fp32" 2 "$exe" train --resume "$tmp/$p.safetensors" \
        --precision fp32
    expect_err "resume $p --precision fp32 message" "--precision fp32 differs from the checkpoint's $p"
    # eval, predict and sample read any checkpoint: its masters are fp32.
    check "eval $p checkpoint" 0 "$exe" eval --checkpoint "$tmp/$p.safetensors"
    expect_out "eval $p result" "accuracy"
    check "predict $p checkpoint" 0 "$exe" predict --checkpoint "$tmp/$p.safetensors" \
        --data "csv:$tmp/points.csv" --out "$tmp/$p.csv"
    [ "$(wc -l <"$tmp/$p.csv")" -eq 241 ] && ok || fail "predict $p: not 240 rows"
done

# sample: a gpt checkpoint whose metadata says fp16 (made so, as above, when this build
# refuses 16-bit training).
i=0
while [ $i -lt 20 ]; do
    echo "the quick brown fox jumps over the lazy dog."
    i=$((i + 1))
done >"$tmp/text.txt"
gpt="--model gpt --data text:$tmp/text.txt --width 16 --depth 1 --heads 2 --context 8 --batch 4"
check "train gpt" 0 "$exe" train $gpt --stop-at 2 --out "$tmp/gpt.safetensors"
if [ "$trains16" = yes ]; then
    check "train gpt fp16" 0 "$exe" train $gpt --stop-at 2 --precision fp16 \
        --out "$tmp/gpt16.safetensors"
else
    meta_edit "$tmp/gpt.safetensors" "$tmp/gpt16.safetensors" train.precision fp16
fi
check "sample fp16 gpt" 0 "$exe" sample --checkpoint "$tmp/gpt16.safetensors" --prompt "the " \
    --length 8 --temperature 0
[ "$(wc -c <"$tmp/out")" -eq 13 ] && ok || fail "sample fp16 gpt: not the prompt and 8 characters"

echo "16-bit training in this build: $trains16"
finish

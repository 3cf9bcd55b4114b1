#!/bin/sh
# The features a user expects from the cltrain CLI, run as a user would: `predict`, per-class
# precision, recall and F1 in `eval`, the training plot (learning rate, accuracy, smoothing
# from the first step), device selection checked in every command with the devices named,
# and cltrain-bench's summary. Exit statuses: 2 usage, 1 failure.
# Usage: cli_features_test.sh CLTRAIN CLTRAIN_BENCH
set -u
exe=$1
bench=$2
. "$(dirname "$0")/cli_lib.sh"

# ---- Data made here --------------------------------------------------------------------------
# A CSV of three classes of points (label last), separable by the largest coordinate.
awk 'BEGIN { srand(7); print "a,b,c,label";
    for (i = 0; i < 300; i++) { a = rand(); b = rand(); c = rand(); l = 0;
        if (b > a && b > c) l = 1; if (c > a && c > b) l = 2;
        printf "%.4f,%.4f,%.4f,%d\n", a, b, c, l } }' >"$tmp/points.csv"

# ---- Devices ---------------------------------------------------------------------------------
check "devices --help" 0 "$exe" devices --help
expect_out "devices --help text" "usage: cltrain devices"
# Each command with the inputs it needs, all missing: the device is checked before them.
for c in train eval sample predict; do
    case $c in
    train) args="--model mlp --data csv:$tmp/missing.csv" ;;
    eval | sample) args="--checkpoint $tmp/missing.safetensors" ;;
    predict) args="--checkpoint $tmp/missing.safetensors --data csv:$tmp/missing.csv" ;;
    esac
    # shellcheck disable=SC2086
    check "$c --device no match" 1 "$exe" $c $args --device no-such-device-anywhere
    expect_err "$c --device message" "no device matches --device \"no-such-device-anywhere\""
    expect_err "$c --device lists the devices" "^  [0-9]*:[0-9]*  "
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

# ---- The training plot: loss, accuracy, learning rate; smoothing from the first step -------------
if python3 -c '
import json, sys, xml.etree.ElementTree as ET
ns = "{http://www.w3.org/2000/svg}"
svg = ET.parse(sys.argv[1]).getroot()
texts = [t.text for t in svg.iter(ns + "text")]
assert "accuracy" in texts and "learning rate" in texts, texts
series = {g.find(ns + "title").text: g.find(ns + "polyline").get("points").split()
          for g in svg.iter(ns + "g")}
train = [json.loads(l) for l in open(sys.argv[2]) if "\"train\"" in l]
evals = [json.loads(l) for l in open(sys.argv[2]) if "\"eval\"" in l]
assert len(series["training loss"]) == len(train) == len(series["learning rate"]), series.keys()
assert len(series["evaluation accuracy"]) == len(evals) > 0
smooth = [k for k in series if k.startswith("smoothed")][0]
assert series[smooth][0] == series["training loss"][0], (series[smooth][:2], series["training loss"][:2])
' "$tmp/points.svg" "$tmp/points.jsonl"; then ok; else fail "the plot lacks a panel, or its smoothing lags the first step"; fi

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

# ---- predict: classifiers ----------------------------------------------------------------------
check "predict labelled csv" 0 "$exe" predict --checkpoint "$tmp/points.safetensors" \
    --data "csv:$tmp/points.csv" --out "$tmp/pred.csv"
# 300 rows; probabilities sum to 1 (within 1e-5, printed to 6 digits); the prediction is the
# most probable class; the checkpoint's weights, not a fresh model, made them (at least 60%
# right, where a model at random guesses gets about a third).
if python3 -c '
import csv, sys
rows = list(csv.DictReader(open(sys.argv[1])))
assert len(rows) == 300, len(rows)
right = 0
for i, r in enumerate(rows):
    p = [float(r["p%d" % c]) for c in range(3)]
    assert int(r["row"]) == i and abs(sum(p) - 1) < 1e-5, r
    assert p[int(r["prediction"])] == max(p), r
    right += r["prediction"] == r["label"]
assert right >= 180, right
' "$tmp/pred.csv"; then ok; else fail "predict: the predictions CSV is wrong"; fi
# The same rows without their label column: the same predictions, no label column.
cut -d, -f1-3 "$tmp/points.csv" >"$tmp/features.csv"
check "predict unlabelled csv to stdout" 0 "$exe" predict --checkpoint "$tmp/points.safetensors" \
    --data "csv:$tmp/features.csv"
cut -d, -f1,3- "$tmp/pred.csv" | sed 's/^row,prediction/row,prediction/' >"$tmp/expected"
if head -n 1 "$tmp/out" | grep -q '^row,prediction,p0,p1,p2$' && cmp -s "$tmp/out" "$tmp/expected"
then ok; else fail "predict without labels differs from predict with them"; fi
check "predict --help" 0 "$exe" predict --help
expect_out "predict --help text" "usage: cltrain predict"

# ---- predict: outputs never destroy data ---------------------------------------------------------
cp "$tmp/points.csv" "$tmp/points.orig"
cp "$tmp/points.safetensors" "$tmp/points.ckpt.orig"
check "predict --out the data" 1 "$exe" predict --checkpoint "$tmp/points.safetensors" \
    --data "csv:$tmp/points.csv" --out "$tmp/points.csv" --force
expect_err "--out the data message" "is an input"
cmp -s "$tmp/points.csv" "$tmp/points.orig" && ok || fail "predict replaced its input data"
mkdir "$tmp/idx"
echo labels >"$tmp/idx/t10k-labels-idx1-ubyte"
check "predict --out a file of its idx folder" 1 "$exe" predict \
    --checkpoint "$tmp/points.safetensors" --data "idx:$tmp/idx" \
    --out "$tmp/idx/t10k-labels-idx1-ubyte" --force
expect_err "idx input message" "is an input"
check "predict --out the checkpoint" 1 "$exe" predict --checkpoint "$tmp/points.safetensors" \
    --data "csv:$tmp/points.csv" --out "$tmp/points.safetensors"
cmp -s "$tmp/points.safetensors" "$tmp/points.ckpt.orig" && ok || fail "predict replaced its checkpoint"
echo "my notes" >"$tmp/notes.csv"
check "predict --out a foreign file" 1 "$exe" predict --checkpoint "$tmp/points.safetensors" \
    --data "csv:$tmp/features.csv" --out "$tmp/notes.csv"
expect_err "foreign file message" "--force"
[ "$(cat "$tmp/notes.csv")" = "my notes" ] && ok || fail "predict replaced a foreign file"
check "predict --out a foreign file --force" 0 "$exe" predict \
    --checkpoint "$tmp/points.safetensors" --data "csv:$tmp/features.csv" --out "$tmp/notes.csv" \
    --force
head -n 1 "$tmp/notes.csv" | grep -q '^row,prediction' && ok || fail "--force did not replace it"
check "predict replaces its own output" 0 "$exe" predict --checkpoint "$tmp/points.safetensors" \
    --data "csv:$tmp/features.csv" --out "$tmp/pred.csv"
check "predict --out in a missing directory" 1 "$exe" predict \
    --checkpoint "$tmp/points.safetensors" --data "csv:$tmp/features.csv" --out "$tmp/no/p.csv"
expect_err "missing directory message" "does not exist"
check "predict --out a directory" 1 "$exe" predict --checkpoint "$tmp/points.safetensors" \
    --data "csv:$tmp/features.csv" --out "$tmp"
# The same claim as train's outputs: a lock of a live run refuses, one of a dead run is taken
# over, and temporary files of dead runs are removed.
echo $$ >"$tmp/pred.csv.lock" # this shell runs: a live holder
check "predict --out held by another run" 1 "$exe" predict --checkpoint "$tmp/points.safetensors" \
    --data "csv:$tmp/features.csv" --out "$tmp/pred.csv"
expect_err "lock message" "another run"
dead=$(dead_pid)
echo "$dead" >"$tmp/pred.csv.lock"
echo partial >"$tmp/pred.csv.tmp.$dead.Ab12Cd"
check "predict takes over a stale lock" 0 "$exe" predict --checkpoint "$tmp/points.safetensors" \
    --data "csv:$tmp/features.csv" --out "$tmp/pred.csv"
expect_err "stale lock message" "stale lock"
[ ! -e "$tmp/pred.csv.tmp.$dead.Ab12Cd" ] && ok || fail "predict left the orphan of a dead process"
[ ! -e "$tmp/pred.csv.lock" ] && ok || fail "predict left its lock behind"
# A run that fails after opening its output leaves the previous predictions whole.
cp "$tmp/pred.csv" "$tmp/pred.before"
cut -d, -f1-2 "$tmp/points.csv" >"$tmp/two.csv"
check "predict with too few columns" 1 "$exe" predict --checkpoint "$tmp/points.safetensors" \
    --data "csv:$tmp/two.csv" --out "$tmp/pred.csv"
expect_err "too few columns message" "the model takes 3 features"
cmp -s "$tmp/pred.csv" "$tmp/pred.before" && ok || fail "a failed predict changed its output"
if ls "$tmp" | grep -q '^pred\.csv\.'; then fail "a failed predict left a temporary file"; else ok; fi
printf '0.1,0.2,0.3\n0.1,0.2,x\n' >"$tmp/bad.csv"
check "predict on a malformed csv" 1 "$exe" predict --checkpoint "$tmp/points.safetensors" \
    --data "csv:$tmp/bad.csv"
expect_err "malformed csv message" "line 2: field 3 is not a number"
check "predict without --data" 2 "$exe" predict --checkpoint "$tmp/points.safetensors"
check "predict a classifier on text" 2 "$exe" predict --checkpoint "$tmp/points.safetensors" \
    --data "text:$tmp/points.csv"
check "predict with a missing checkpoint" 1 "$exe" predict --checkpoint "$tmp/none.safetensors" \
    --data "csv:$tmp/points.csv"

# ---- predict: gpt ----------------------------------------------------------------------------
i=0
while [ $i -lt 60 ]; do
    echo "the quick brown fox jumps over the lazy dog. pack my box with five dozen jugs."
    i=$((i + 1))
done >"$tmp/text.txt"
check "train gpt" 0 "$exe" train --model gpt --data "text:$tmp/text.txt" --width 32 --depth 1 \
    --heads 2 --context 16 --batch 8 --steps 40 --lr 0.01 --out "$tmp/gpt.safetensors"
printf 'the \nfox\n\npack my\n' >"$tmp/prompts.txt"
check "predict gpt" 0 "$exe" predict --checkpoint "$tmp/gpt.safetensors" \
    --data "text:$tmp/prompts.txt" --length 24 --out "$tmp/gen.csv"
check "sample gpt" 0 "$exe" sample --checkpoint "$tmp/gpt.safetensors" --prompt "the " \
    --length 24 --temperature 0
# Rows 0, 1 and 3 (the blank line 2 is skipped), each continued as `sample` continues it.
if python3 -c '
import csv, sys
rows = list(csv.reader(open(sys.argv[1], newline="")))
assert rows[0] == ["row", "prompt", "text"], rows[0]
assert [r[0] for r in rows[1:]] == ["0", "1", "3"], rows
assert [r[1] for r in rows[1:]] == ["the ", "fox", "pack my"], rows
assert all(len(r[2]) == 24 for r in rows[1:]), rows
sample = open(sys.argv[2], newline="").read()
assert sample == "the " + rows[1][2] + "\n", (sample, rows[1][2])
' "$tmp/gen.csv" "$tmp/out"; then ok; else fail "predict gpt differs from sample"; fi
printf 'the\nQ\n' >"$tmp/badprompts.txt"
check "predict gpt with an unknown character" 1 "$exe" predict \
    --checkpoint "$tmp/gpt.safetensors" --data "text:$tmp/badprompts.txt"
expect_err "unknown character message" "line 2: the prompt's character 'Q'"
# SIGTERM (CI cancellation, `timeout`) while predicting: the previous predictions stay whole
# and the temporary file is removed.
cp "$tmp/gen.csv" "$tmp/gen.before"
"$exe" predict --checkpoint "$tmp/gpt.safetensors" --data "text:$tmp/prompts.txt" \
    --length 10000000 --out "$tmp/gen.csv" >"$tmp/out" 2>"$tmp/err" &
pid=$!
while kill -0 "$pid" 2>/dev/null && ! ls "$tmp" | grep -q '^gen\.csv\.'; do sleep 0.1; done
kill -TERM "$pid" 2>/dev/null
wait "$pid"
status=$?
[ "$status" -eq 143 ] && ok || fail "predict under SIGTERM: exit $status, wanted 143 (killed)"
cmp -s "$tmp/gen.csv" "$tmp/gen.before" && ok || fail "an interrupted predict changed its output"
if ls "$tmp" | grep -q '^gen\.csv\.'; then fail "an interrupted predict left its temporary file"; else ok; fi
check "predict gpt on csv" 2 "$exe" predict --checkpoint "$tmp/gpt.safetensors" \
    --data "csv:$tmp/points.csv"

# ---- predict: images ---------------------------------------------------------------------------
fm=/usr/share/datasets/fashion-mnist
if [ -d "$fm" ]; then
    check "train mlp on fashion-mnist" 0 "$exe" train --model mlp --data fashion-mnist \
        --limit 512 --epochs 1 --batch 64 --width 32 --out "$tmp/fm.safetensors"
    check "eval mlp" 0 "$exe" eval --checkpoint "$tmp/fm.safetensors"
    right=$(head -n 1 "$tmp/out" | sed -n 's/.*(\([0-9]*\) of 512 correct).*/\1/p')
    check "predict fashion-mnist" 0 "$exe" predict --checkpoint "$tmp/fm.safetensors" \
        --data fashion-mnist --out "$tmp/fm.csv"
    # All 10000 evaluation images; the first 512 (what eval scored) as eval scored them.
    got=$(awk -F, 'NR > 1 && NR <= 513 { c += ($2 == $3) } END { print c }' "$tmp/fm.csv")
    [ "$(wc -l <"$tmp/fm.csv")" -eq 10001 ] && [ -n "$right" ] && [ "$got" = "$right" ] && ok \
        || fail "predict on fashion-mnist: $got of the first 512 right, eval says $right"
else
    echo "skipping the Fashion-MNIST runs: $fm is missing" >&2
fi

# ---- cltrain-bench: the summary first ------------------------------------------------------------
# Two devices' results (a saved run's layout): B trains faster though A has the faster GEMM.
python3 - "$tmp/a.json" "$tmp/b.json" <<'PY'
import json, sys
def fig(name, unit, median, better="higher"):
    return {"name": name, "unit": unit, "better": better, "median": median, "min": median,
            "max": median, "runs": 3}
def device(id, label, mlp, gpt, gemm, bw):
    return {"id": id, "label": label, "notes": "", "environment": {"platform": label},
            "micro": [fig("bandwidth.read", "GB/s", bw), fig("bandwidth.copy", "GB/s", bw / 2),
                      fig("launch.round_trip", "us", 40, "lower")],
            "gemm": [fig("clblast.square_512", "GFLOP/s", gemm),
                     fig("own.square_512", "GFLOP/s", gemm / 3),
                     fig("clblast.square_512.pct_peak", "%", 90)],
            "ops": [fig("linear.fwd", "us", 10, "lower")],
            "train": [fig("mlp.samples_per_s", "samples/s", mlp),
                      fig("mlp.first_step_warm_s", "s", 0.5, "lower"),
                      fig("gpt.samples_per_s", "samples/s", gpt)]}
for path, dev in zip(sys.argv[1:], [device("0:0", "Alpha / fast-gemm", 1000, 50, 400, 20),
                                    device("1:0", "Beta / fast-train", 4000, 200, 100, 80)]):
    json.dump({"tool": "cltrain-bench", "format": 1, "cltrain_version": "0.1.0",
               "mode": "quick", "warmup": 1, "runs": 3, "devices": [dev]}, open(path, "w"))
PY
check "bench summary of two devices" 0 "$bench" --from "$tmp/a.json" --from "$tmp/b.json"
# The summary comes before the long tables, marks the direction, and names the winner: B,
# 4x A by the geometric mean of the training figures (both models 4x).
summary=$(grep -n "^== summary" "$tmp/out" | cut -d: -f1)
first_table=$(grep -n "^== 0:0" "$tmp/out" | cut -d: -f1)
[ -n "$summary" ] && [ -n "$first_table" ] && [ "$summary" -lt "$first_table" ] && ok \
    || fail "bench: no summary before the tables"
expect_out "bench summary: training row" "training mlp (samples/s) *higher *1000 *4000\\*"
expect_out "bench summary: best GEMM" "best GEMM (GFLOP/s) *higher *400\\* *100"
expect_out "bench summary: the GEMM chosen" "clblast.square"
expect_out "bench summary: bandwidth" "memory bandwidth (GB/s) *higher *20 *80\\*"
expect_out "bench summary: winner" "winner: 1:0 (Beta / fast-train), 4.00x the runner-up 0:0"
check "bench summary of one device" 0 "$bench" --from "$tmp/a.json"
expect_out "bench one device" "one device measured"

finish

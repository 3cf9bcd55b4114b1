#!/bin/sh
# The example examples/char_gpt.c, run briefly on PoCL: 80 steps on test/data/char_gpt.txt
# must bring the held-out loss down by 0.5 nats at least (it starts near ln 25 = 3.2 and
# reached 1.3 to 1.5 in runs; predicting the characters' frequencies alone gives about 2.9, so
# this asks for more than a model that ignores its context could learn only barely), and the
# sample must be as long as asked and made only of characters of the text. Bad options and
# bad files end with status 1 and one message.
# Usage: char_gpt_test.sh CHAR_GPT TEXT
set -u
exe=$1
text=$2
. "$(dirname "$0")/cli_lib.sh"

check "train and sample" 0 "$exe" "$text" --steps 80 --sample 120 --seed 3 --device "$CLTRAIN_DEVICE"
expect_out "loss lines" "^step     0  loss "
losses=$(sed -n 's/^held-out loss before \([0-9.]*\) after \([0-9.]*\)$/\1 \2/p' "$tmp/out")
if [ -n "$losses" ] && echo "$losses" | awk '{ exit !($2 < $1 - 0.5) }'; then
    ok
else
    fail "held-out loss did not fall by 0.5: \"$losses\""
fi
# The sample: the lines between the markers, the start character and 120 drawn, then the
# newline before the end marker.
sed -n '/^--- sample ---$/,/^--- end ---$/p' "$tmp/out" | sed '1d;$d' >"$tmp/sample"
bytes=$(wc -c <"$tmp/sample")
if [ "$bytes" -eq 122 ]; then ok; else fail "sample of $bytes bytes, wanted 122"; fi
LC_ALL=C grep -o . "$text" | LC_ALL=C sort -u >"$tmp/alphabet"
LC_ALL=C grep -o . "$tmp/sample" | LC_ALL=C sort -u >"$tmp/used"
foreign=$(LC_ALL=C comm -23 "$tmp/used" "$tmp/alphabet")
if [ -z "$foreign" ] && [ -s "$tmp/used" ]; then ok; else fail "sample characters not in the text: \"$foreign\""; fi

# Bad usage and bad files.
check "no text" 1 "$exe"
expect_err "no text" "no text file given"
check "missing file" 1 "$exe" "$tmp/none.txt"
expect_err "missing file" "cannot read"
check "a directory" 1 "$exe" "$tmp"
expect_err "a directory" "cannot read"
printf 'too short\n' >"$tmp/short.txt"
check "short text" 1 "$exe" "$tmp/short.txt"
expect_err "short text" "at least 330 characters"
awk 'BEGIN { for (i = 0; i < 400; i++) printf "a" }' >"$tmp/one.txt"
check "one symbol" 1 "$exe" "$tmp/one.txt"
expect_err "one symbol" "of two kinds"
for bad in "--steps 0" "--steps ten" "--steps 5x" "--sample -1" "--temperature 0" "--lr nan"; do
    # shellcheck disable=SC2086
    check "bad $bad" 1 "$exe" "$text" $bad
    expect_err "bad $bad" "bad value"
done
check "unknown option" 1 "$exe" "$text" --layers 3
expect_err "unknown option" "unknown option --layers"
check "option without value" 1 "$exe" "$text" --steps
expect_err "option without value" "needs a value"
check "two texts" 1 "$exe" "$text" "$text"
expect_err "two texts" "more than one"
finish

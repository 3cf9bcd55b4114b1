#!/bin/sh
# Fails when the example that opens cltrain.h differs from examples/train_mlp.c (from the
# file's first #include to its end): the header shows the program the suite builds and runs.
# The header holds it between "---- examples/train_mlp.c ----" and "---- end of
# examples/train_mlp.c ----", each line after " *     " (blank lines " *").
set -eu
header=$1
example=$2
shown=$(mktemp)
source=$(mktemp)
trap 'rm -f "$shown" "$source"' EXIT
sed -n '/^ \* ---- examples\/train_mlp\.c ----$/,/^ \* ---- end of examples\/train_mlp\.c ----$/p' \
    "$header" | sed '1d;$d' | sed -e 's/^ \*     //' -e 's/^ \*$//' >"$shown"
sed -n '/^#include/,$p' "$example" >"$source"
if [ ! -s "$shown" ]; then
    echo "no example between the markers in $header" >&2
    exit 1
fi
if ! diff -u "$source" "$shown"; then
    echo "the example in $header differs from $example (diff above: - file, + header)" >&2
    exit 1
fi
echo "1 passed, 0 failed (the header's example is $example)"

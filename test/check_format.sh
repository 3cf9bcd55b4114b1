#!/bin/sh
# Fails when a C, C++ or OpenCL source of the tree differs from what clang-format makes of it
# with the committed .clang-format. Formatting disputes end at the tool: run
#     clang-format -i FILE
# on each file named below. Argument: the source root.
set -eu
root=$1
cd "$root"
files=$(find engine cl tools bench test examples fuzz \
    \( -name '*.c' -o -name '*.cc' -o -name '*.h' -o -name '*.cl' \) -type f | sort)
count=$(echo "$files" | wc -l)
bad=""
for f in $files; do
    clang-format --dry-run --Werror "$f" >/dev/null 2>&1 || bad="$bad $f"
done
if [ -n "$bad" ]; then
    echo "not formatted (clang-format -i FILE):" >&2
    for f in $bad; do echo "  $f" >&2; done
    exit 1
fi
echo "$count files formatted"

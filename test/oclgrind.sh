#!/bin/sh
# Runs a test binary under Oclgrind with API checks and data-race detection, and fails the
# test when Oclgrind reports anything. Oclgrind exits with the program's own status, so its
# messages are read from stderr: every kernel diagnostic carries a "Kernel:" line and every
# API diagnostic starts with "Oclgrind - ". (Oclgrind's --log file is truncated each time a
# program creates another context, which would hide reports; stderr is not.)
# Usage: oclgrind.sh OCLGRIND TEST [ARGS...]
set -u
oclgrind=$1
shift
err=$(mktemp)
"$oclgrind" --check-api --data-races "$@" 2>"$err"
rc=$?
cat "$err" >&2
if grep -q -E '^[[:space:]]+Kernel: |Oclgrind - ' "$err"; then
    echo "Oclgrind reported problems (see above)" >&2
    rm -f "$err"
    exit 1
fi
rm -f "$err"
exit $rc

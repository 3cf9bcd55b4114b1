#!/bin/sh
# Runs a test binary under Oclgrind with API checks and data-race detection. Oclgrind itself
# exits with the program's status, so its log is read: any message there fails the test.
# Usage: oclgrind.sh OCLGRIND TEST [ARGS...]
set -u
oclgrind=$1
shift
log=$(mktemp)
"$oclgrind" --check-api --data-races --uninitialized --log "$log" "$@"
rc=$?
if [ -s "$log" ]; then
    echo "Oclgrind reported problems:" >&2
    head -c 20000 "$log" >&2
    rm -f "$log"
    exit 1
fi
rm -f "$log"
exit $rc

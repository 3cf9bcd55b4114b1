# cli_lib.sh: what the shell tests of the cltrain program share, sourced after `set -u` (POSIX
# sh). It makes the scratch folder $tmp (removed on exit) and counts checks in passed and
# failed; each check runs a command with its stdout in $tmp/out and its stderr in $tmp/err.
# The test ends with `finish`, which prints the counts and exits 1 if any check failed.
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

expect_out() { # expect_out NAME PATTERN: the last command's stdout matches PATTERN
    if grep -qi -- "$2" "$tmp/out"; then ok; else fail "$1: stdout lacks \"$2\""; fi
}

same() { # same NAME FILE1 FILE2: the files are byte for byte equal
    if cmp -s "$2" "$3"; then ok; else fail "$1: $2 changed"; fi
}

dead_pid() { # a pid that is certainly not running: a finished child's
    sh -c 'exit 0' &
    p=$!
    wait "$p"
    echo "$p"
}

finish() {
    echo "$passed passed, $failed failed"
    if [ "$failed" -eq 0 ]; then exit 0; else exit 1; fi
}

#!/bin/sh
# Fails when the shared library exports a symbol outside the public clt_ prefix.
set -eu
lib=$1
extra=$(nm -D --defined-only "$lib" | awk '{print $3}' | grep -v '^clt_' | grep -v '^_' || true)
count=$(nm -D --defined-only "$lib" | awk '{print $3}' | grep -c '^clt_' || true)
if [ -n "$extra" ]; then
    echo "symbols exported outside the API:" >&2
    echo "$extra" >&2
    exit 1
fi
if [ "$count" -lt 10 ]; then
    echo "only $count clt_ symbols exported" >&2
    exit 1
fi
if nm -D --defined-only "$lib" | awk '{print $3}' | grep -q '^clt__'; then
    echo "internal clt__ symbols exported" >&2
    exit 1
fi
echo "1 passed, 0 failed ($count API symbols exported)"

#!/bin/sh
# Installs the build into a temporary directory, then compiles and runs a small program
# against the installed library using only `pkg-config cltrain`.
# Usage: install_test.sh BUILD_DIR DEMO.c
set -eu
build=$1
demo=$2
# A sanitizer build's library needs its runtime first in the program, which a plain
# pkg-config build of the demo does not give: nothing to check there.
if [ "${3:-none}" != "none" ]; then
    echo "library built with -Db_sanitize=$3: skipping the install check"
    exit 77
fi
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
DESTDIR="$tmp/root" meson install -C "$build" --no-rebuild --quiet >/dev/null
pc=$(find "$tmp/root" -name cltrain.pc | head -n 1)
[ -n "$pc" ] || { echo "cltrain.pc was not installed" >&2; exit 1; }
prefix=$(sed -n 's/^prefix=//p' "$pc")
export PKG_CONFIG_PATH="$(dirname "$pc")"
flags=$(pkg-config --define-variable=prefix="$tmp/root$prefix" --cflags --libs cltrain)
echo "pkg-config cltrain: $flags"
# shellcheck disable=SC2086
cc -std=c11 -Wall -Wextra -Werror "$demo" -o "$tmp/demo" $flags
libdir=$(pkg-config --define-variable=prefix="$tmp/root$prefix" --variable=libdir cltrain)
LD_LIBRARY_PATH="$libdir" "$tmp/demo"
echo "1 passed, 0 failed"

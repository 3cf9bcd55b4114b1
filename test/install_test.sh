#!/bin/sh
# Installs the build into a temporary directory, then:
# - compiles and runs a small program against the installed library using only
#   `pkg-config cltrain`;
# - starts the installed cltrain and cltrain-bench without LD_LIBRARY_PATH (they find the
#   library through their install rpath, relative to themselves, so any prefix works);
# - finds the docs and the examples' sources under <datadir>/doc/cltrain.
# Usage: install_test.sh BUILD_DIR DEMO.c [SANITIZER]
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
root="$tmp/root$prefix"
export PKG_CONFIG_PATH="$(dirname "$pc")"
flags=$(pkg-config --define-variable=prefix="$root" --cflags --libs cltrain)
echo "pkg-config cltrain: $flags"
# shellcheck disable=SC2086
cc -std=c11 -Wall -Wextra -Werror "$demo" -o "$tmp/demo" $flags
libdir=$(pkg-config --define-variable=prefix="$root" --variable=libdir cltrain)
LD_LIBRARY_PATH="$libdir" "$tmp/demo"
passed=1

# The programs, moved away from the configured prefix, with no library path set.
unset LD_LIBRARY_PATH
"$root/bin/cltrain" --version || { echo "the installed cltrain does not start" >&2; exit 1; }
"$root/bin/cltrain-bench" --help >/dev/null \
    || { echo "the installed cltrain-bench does not start" >&2; exit 1; }
passed=$((passed + 1))

# The docs and the examples' sources.
doc=$(find "$tmp/root" -type d -path '*/doc/cltrain' | head -n 1)
for f in README.md training.md bench.md formats.md examples/train_mlp.c; do
    [ -f "$doc/$f" ] || { echo "not installed: <datadir>/doc/cltrain/$f" >&2; exit 1; }
done
passed=$((passed + 1))
echo "$passed passed, 0 failed"

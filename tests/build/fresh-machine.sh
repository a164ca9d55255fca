#!/bin/bash
# The build on a machine where the -dev packages arrive only when the
# dependency step runs: pkg-config answers only after tools/deps.sh has run.
# A Makefile that asks pkg-config when it is read (before the dependency
# step) links without -lz -lzstd -ljson-c and fails here.
#
# Runs in a copy of this tree's tracked files: plain `make`, then
# `make install` from a clean tree, each in one go.
set -u
. "$TESTS/lib.sh"
[ -n "${SANITIZED:-}" ] && { echo "the Makefile is exercised by the normal pass"; exit 77; }
real_pc=$(command -v pkg-config) || { echo "pkg-config not installed"; exit 77; }

top=$TESTS/..
src=$TEST_DIR/src
mkdir -p "$src" "$TEST_DIR/stub"
(cd "$top" && git ls-files -z | xargs -0 cp --parents -t "$src") || exit 1
marker=$TEST_DIR/installed

# pkg-config knows the libraries only once they are "installed".
cat >"$TEST_DIR/stub/pkg-config" <<STUB
#!/bin/sh
[ -e "$marker" ] || exit 1
exec "$real_pc" "\$@"
STUB
chmod +x "$TEST_DIR/stub/pkg-config"
# The dependency step "installs" them.
cat >"$src/tools/deps.sh" <<STUB
#!/bin/sh
touch "$marker"
STUB

fail=0
build() { # build LABEL MAKE-ARGS...: one make run from a clean, uninstalled state
    local label=$1; shift
    rm -f "$marker"; make -C "$src" -s clean >/dev/null 2>&1
    if ! make -C "$src" -j2 OPT=-O0 PKG_CONFIG="$TEST_DIR/stub/pkg-config" "$@" >"$TEST_DIR/$label.log" 2>&1; then
        echo "FAIL: make $* did not build in one go on a fresh machine:"
        grep -m5 -E 'undefined reference|error:|\*\*\*' "$TEST_DIR/$label.log"
        fail=1; return 1
    fi
    [ -e "$marker" ] || { echo "FAIL: make $* did not run the dependency step"; fail=1; return 1; }
}

if build plain; then
    "$src/bin/qc-dump" --help >/dev/null || { echo "FAIL: the built qc-dump does not run"; fail=1; }
    echo "make: built in one go"
fi
if build install install PREFIX=/usr DESTDIR="$TEST_DIR/root"; then
    [ -x "$TEST_DIR/root/usr/bin/qc-check" ] && [ -f "$TEST_DIR/root/usr/share/man/man1/qc-check.1" ] ||
        { echo "FAIL: make install did not install qc-check and its man page"; fail=1; }
    echo "make install: built and installed in one go"
fi
exit $fail

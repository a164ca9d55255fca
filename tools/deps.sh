#!/bin/sh
# Installs the Debian packages qc-tools needs to build and test, when missing.
# As root: apt-get install.  Otherwise: prints the exact command and fails.
set -u
PKGS="build-essential pkg-config zlib1g-dev libjson-c-dev libreadline-dev libcmocka-dev libzstd-dev qemu-utils clang libclang-rt-14-dev tmux python3"
[ "${1:-}" = "--list" ] && { echo "$PKGS"; exit 0; }

missing=""
for p in $PKGS; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" ||
        missing="$missing $p"
done
[ -z "$missing" ] && exit 0

cmd="apt-get install -y --no-install-recommends$missing"
if [ "$(id -u)" -eq 0 ]; then
    echo "qc-tools: installing missing packages:$missing" >&2
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq >&2 || true
    $cmd >&2 || { echo "qc-tools: package installation failed" >&2; exit 1; }
    exit 0
fi
echo "qc-tools: missing Debian packages:$missing" >&2
echo "qc-tools: install them with:" >&2
echo "    sudo $cmd" >&2
exit 1

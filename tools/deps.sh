#!/bin/sh
# Installs the Debian packages qc-tools needs, when missing.
# As root: apt-get install.  Otherwise: prints the exact command and fails.
#
#   tools/deps.sh           everything: build, tests, demo, fuzzing
#   tools/deps.sh --build   only what building the tools needs (plain make)
#   tools/deps.sh --list    the full package list
set -u
BUILD_PKGS="build-essential pkg-config zlib1g-dev libjson-c-dev libreadline-dev libzstd-dev libssl-dev"
PKGS="$BUILD_PKGS libcmocka-dev qemu-utils clang libclang-rt-14-dev tmux python3"
case "${1:-}" in
--list) echo "$PKGS"; exit 0 ;;
--build) PKGS=$BUILD_PKGS ;;
esac

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
    $cmd >&2 || { echo "qc-tools: package installation failed: $cmd" >&2; exit 1; }
    exit 0
fi
echo "qc-tools: missing Debian packages:$missing; install them with: sudo $cmd" >&2
exit 1

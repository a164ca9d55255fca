# Image locks: qc-setfeature refuses while qemu-io or qemu-nbd has the
# image open, and --force overrides
. "$TESTS/lib.sh"
skip_without_qemu
qemu-img create -q -f qcow2 img.qcow2 4M
cp img.qcow2 orig.qcow2
pid=
cleanup() { [ -n "$pid" ] && kill "$pid" 2>/dev/null; wait 2>/dev/null; }
trap cleanup EXIT

# the image's locks in /proc/locks (other processes may hold other files')
inode=$(stat -c %i img.qcow2)
locked() { grep -Eq "OFDLCK .*:$inode " /proc/locks; }
# wait until the holder has taken its locks (QEMU's permission bytes)
wait_locked() {
    local i
    for ((i = 0; i < 100; i++)); do
        locked && return 0
        sleep 0.1
    done
    echo "the holder took no lock"; exit 1
}
refused() {
    if qc-setfeature img.qcow2 lazy_refcounts 2>err; then echo "not refused: $1"; exit 1; fi
    grep -q 'Failed to get "write" lock' err || { cat err; exit 1; }
    grep -q 'Is another process using the image \[img.qcow2\]?' err || { cat err; exit 1; }
    cmp -s orig.qcow2 img.qcow2 || { echo "written despite the lock: $1"; exit 1; }
}

for holder in "qemu-io" "qemu-io -r" "qemu-nbd"; do
    case $holder in
    qemu-nbd) qemu-nbd -f qcow2 -k "$TEST_DIR/nbd.sock" img.qcow2 & ;;
    *) $holder -c 'sleep 100000' img.qcow2 >/dev/null & ;;
    esac
    pid=$!
    wait_locked
    refused "$holder"
    # a dry run and --list only read
    qc-setfeature --dry-run img.qcow2 lazy_refcounts >/dev/null || exit 1
    qc-setfeature --list img.qcow2 >/dev/null || exit 1
    if [ "$holder" = "qemu-io -r" ]; then
        # --force overrides
        qc-setfeature --force img.qcow2 lazy_refcounts || exit 1
        qc-dump img.qcow2 | grep -q 'compatible_features       \[0\]' || exit 1
        cp orig.qcow2 img.qcow2
    fi
    kill "$pid"; wait "$pid" 2>/dev/null; pid=
    # once the holder is gone the image is free again
    for ((i = 0; i < 50; i++)); do locked || break; sleep 0.1; done
done
qc-setfeature img.qcow2 lazy_refcounts || exit 1
qemu-img info --output=json img.qcow2 | grep -q '"lazy-refcounts": true' || exit 1
echo ok

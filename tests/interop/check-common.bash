# Helpers for the check-*.sh interop tests (sourced, not a test itself):
# compare qc-check with qemu-img check on an image.

QC_CHECK=${QC_BIN}/qc-check
check_failures=0
check_compared=0

# The qemu-img arguments naming IMG: an encrypted one with its key (secret
# "abc"), since qc-check answers keyless as qemu-img does with the key.
qemu_img_src() {
    local be="od -An -tu4 --endian=big -N 4"
    if [ "$($be "$1" 2>/dev/null | tr -d ' ')" = 1363560955 ] &&
       [ "$($be -j 4 "$1" 2>/dev/null | tr -d ' ')" -ge 2 ] 2>/dev/null &&
       [ "$($be -j 32 "$1" 2>/dev/null | tr -d ' ')" != 0 ]; then
        echo "--object secret,id=sec0,data=abc --image-opts driver=qcow2,file.filename=$1,encrypt.key-secret=sec0"
    else
        echo "$1"
    fi
}
# stderr as compared: qemu-img's name for an --image-opts image is its
# options; qc-check's note that guest data was not read is its own
check_stderr() {
    sed -e "s|driver=qcow2,file.filename=\([^,']*\),encrypt.key-secret=sec0|\1|g" \
        -e '/^qc-check: note: .*: encrypted image: checked without the key, guest data not read$/d' \
        "$1" >"$1.n" && mv "$1.n" "$1"
}

# same_check IMG [LABEL]: exit status, stdout and stderr of the human
# report byte for byte, then the JSON report's numbers and exit status.
same_check() {
    local img=$1 label=${2:-$1} q o qr or
    q=$(mktemp) o=$(mktemp)
    qemu-img check $(qemu_img_src "$img") >"$q.out" 2>"$q.err"; qr=$?
    "$QC_CHECK" "$img" >"$o.out" 2>"$o.err"; or=$?
    check_stderr "$q.err"; check_stderr "$o.err"
    check_compared=$((check_compared + 1))
    if [ "$qr" != "$or" ] || ! cmp -s "$q.out" "$o.out" || ! cmp -s "$q.err" "$o.err"; then
        echo "DIFF (human) $label: exit $qr vs $or"
        diff "$q.err" "$o.err" | head -8
        diff "$q.out" "$o.out" | head -8
        check_failures=$((check_failures + 1))
    fi
    qemu-img check --output=json $(qemu_img_src "$img") >"$q.out" 2>/dev/null; qr=$?
    "$QC_CHECK" --output=json "$img" >"$o.out" 2>/dev/null; or=$?
    if [ "$qr" != "$or" ]; then
        echo "DIFF (json) $label: exit $qr vs $or"
        check_failures=$((check_failures + 1))
    elif ! python3 - "$q.out" "$o.out" <<'PY'
import json, sys
q = open(sys.argv[1]).read()
if not q.strip():
    sys.exit(0)
q, o = json.loads(q), json.loads(open(sys.argv[2]).read())
bad = [k for k in ('corruptions', 'leaks', 'check-errors', 'allocated-clusters',
                   'total-clusters', 'fragmented-clusters', 'compressed-clusters',
                   'image-end-offset') if q.get(k, 0) != o.get(k, 0)]
for k in bad:
    print('  %s: qemu-img %s, qc-check %s' % (k, q.get(k, 0), o.get(k, 0)))
sys.exit(1 if bad or 'problems' not in o else 0)
PY
    then
        echo "DIFF (json fields) $label"
        check_failures=$((check_failures + 1))
    fi
    rm -f "$q" "$o" "$q.out" "$q.err" "$o.out" "$o.err"
}

# A fresh 64 MiB image with data at guest 0 (host cluster 5 with 64 KiB
# clusters: header 0, reftable 1, refblock 2, L1 3, L2 4).
fresh() {
    local img=$1; shift
    rm -f "$img"
    qemu-img create -f qcow2 "$@" "$img" 64M >/dev/null
    qemu-io -c 'write -P 0x11 0 64k' "$img" >/dev/null
}

check_done() {
    echo "$check_compared images compared, $check_failures differences"
    [ "$check_failures" -eq 0 ]
}

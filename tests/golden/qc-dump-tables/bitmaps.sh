# --bitmaps: directory entries with flags, bitmap tables; JSON.
. "$TESTS/lib.sh"
fixture dv-bitmap
fixture dv-std
qc-dump --bitmaps dv-bitmap.qcow2; echo "exit $?"
qc-dump --bitmaps dv-std.qcow2; echo "exit $?"
qc-dump --bitmaps --nonzero --json dv-bitmap.qcow2 | sed -n '/"bitmaps"/,$p'; echo "exit $?"

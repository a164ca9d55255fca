# The metadata tables: the same output and exit status as qc-dump's.
. "$TESTS/golden/qc-shell/same.bash"
fixture dv-std; fixture dv-bitmap; fixture dv-extl2; fixture dv-rc2; fixture dv-damaged
same dv-std.qcow2 l1 qc-dump --l1 dv-std.qcow2
same dv-damaged.qcow2 'l1 --nonzero' qc-dump --l1 --nonzero dv-damaged.qcow2
same dv-std.qcow2 'l2 0 --nonzero' qc-dump --l2 0 --nonzero dv-std.qcow2
same dv-extl2.qcow2 'l2 all --nonzero' qc-dump --l2 all --nonzero dv-extl2.qcow2
same dv-damaged.qcow2 'l2 all --nonzero' qc-dump --l2 all --nonzero dv-damaged.qcow2
same dv-std.qcow2 'l2 5' qc-dump --l2 5 dv-std.qcow2
same dv-rc2.qcow2 'refcounts --nonzero' qc-dump --refcounts --nonzero dv-rc2.qcow2
same dv-std.qcow2 snapshots qc-dump --snapshots dv-std.qcow2
same dv-bitmap.qcow2 'bitmaps --nonzero' qc-dump --bitmaps --nonzero dv-bitmap.qcow2
# usage errors
run dv-std.qcow2 'l2' 'l2 x' 'l2 1 2' 'l1 0' 'refcounts --all' 'snapshots --nonzero' 'bitmaps 1'
# the same views in JSON: the member qc-dump --json gives them
same_json dv-std.qcow2 'l1 --json' l1 qc-dump --l1 --json dv-std.qcow2
same_json dv-damaged.qcow2 'l2 all --nonzero --json' l2 qc-dump --l2 all --nonzero --json dv-damaged.qcow2
same_json dv-rc2.qcow2 'refcounts --nonzero --json' refcounts qc-dump --refcounts --nonzero --json dv-rc2.qcow2
same_json dv-std.qcow2 'snapshots --json' snapshots qc-dump --snapshots --json dv-std.qcow2
same_json dv-bitmap.qcow2 'bitmaps --nonzero --json' bitmaps qc-dump --bitmaps --nonzero --json dv-bitmap.qcow2
same_json dv-std.qcow2 'l2 9 --json' l2 qc-dump --l2 9 --json dv-std.qcow2

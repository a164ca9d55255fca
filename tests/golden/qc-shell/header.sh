# The header views: the same bytes and exit status as qc-dump's.
. "$TESTS/golden/qc-shell/same.bash"
fixture v3; fixture v2; fixture unknown-ext; fixture backing
same v3.qcow2 header qc-dump v3.qcow2
same v2.qcow2 'header --legacy' qc-dump --legacy v2.qcow2
same unknown-ext.qcow2 'header --exts' qc-dump --exts unknown-ext.qcow2
same unknown-ext.qcow2 exts qc-dump --exts unknown-ext.qcow2
same v3.qcow2 'header --hex' qc-dump --hex v3.qcow2
same v3.qcow2 hex qc-dump --hex v3.qcow2
same backing.qcow2 'header --features' qc-dump --features backing.qcow2
same backing.qcow2 features qc-dump --features backing.qcow2
same backing.qcow2 'header --json' qc-dump --json backing.qcow2
# a header cut short: the view, its message and the warnings
head -c 90 v3.qcow2 > short.qcow2
same short.qcow2 header qc-dump short.qcow2
# usage errors
run v3.qcow2 'header --legacy --hex' 'header x' 'header --frob' 'exts 1' 'hex --json' 'features x'

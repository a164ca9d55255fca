# A locked image: with -w the shell refuses it as qc-setfeature and qc-write
# do; read-only it still looks; --force overrides.  The lock is held by
# another qc-shell -w reading commands from a pipe.
. "$TESTS/golden/qc-shell/same.bash"
fixture v3
mkfifo cmds
qc-shell -w v3.qcow2 <cmds >holder.out 2>&1 &
holder=$!
exec 3>cmds
echo 'list' >&3
for i in $(seq 300); do [ -s holder.out ] && break; sleep 0.1; done
qc-shell -w -c 'set lazy_refcounts' v3.qcow2; echo "exit $?"
qc-setfeature v3.qcow2 lazy_refcounts; echo "qc-setfeature exit $?"
qc-write v3.qcow2 -c 'write 0 512'; echo "qc-write exit $?"
# read-only: no lock needed, a warning that a writer holds the image
qc-shell -c 'features' -c 'check' v3.qcow2; echo "exit $?"
# --force: the edit happens despite the lock
qc-shell -w --force -c 'set -v lazy_refcounts' v3.qcow2; echo "exit $?"
exec 3>&-
wait $holder; echo "holder exit $?"
cat holder.out
qc-shell -c 'list' v3.qcow2 | grep lazy
# the holder gone, -w works again
qc-shell -w -c 'clear -v lazy_refcounts' v3.qcow2; echo "exit $?"

# The statistics lines of qemu-io's output vary from run to run: keep the
# size, drop the time and the rates.
filter_stats() {
    sed -E 's/^([0-9.]+ (bytes|[KMGTPE]iB)), ([0-9]+) ops; .*$/\1, \3 ops; TIME/;
            s/^([0-9]+),([0-9]+),[0-9:.]+,[0-9.]+,[0-9.]+$/\1,\2,TIME/'
}
qcw() { qc-write "$@" 2>&1 | filter_stats; echo "exit ${PIPESTATUS[0]}"; }

# Loaded by golden, interop and crash tests: fixture helpers and qemu checks.
. "$FIXTURES/lib.sh"

# skip_without_qemu: interop tests exit 77 (skip) when qemu-utils is absent.
skip_without_qemu() { have_qemu || { echo "qemu-img/qemu-io not installed"; exit 77; }; }

# Filters for output that varies between runs.
filter_qemu_io() { sed -E 's/[0-9.]+ [KMGT]?i?B, [0-9]+ ops; [0-9:.]+ \(.*\)/X ops; XX:XX:XX.X (XXX YYY\/sec and XXX ops\/sec)/'; }

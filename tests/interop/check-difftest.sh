#!/bin/bash
# Random damage, fixed seed, bounded count: qc-check must agree with
# qemu-img check on every image (tools/check-difftest.py).
. "$TESTS/lib.sh"
skip_without_qemu
command -v python3 >/dev/null || { echo "python3 not installed"; exit 77; }
exec python3 "$TESTS/../tools/check-difftest.py" --bin "$QC_BIN" --seed 20240 --count 120 \
    --work "$TEST_DIR/work" --timeout 20 --quiet

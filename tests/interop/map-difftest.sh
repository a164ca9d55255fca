# A bounded run of the differential test: images of every kind, damaged by
# seeded mutations, mapped and exported by qemu-img and by qc-dump.
# (tools/map-difftest.py --count N --seed S runs larger ones.)
. "$TESTS/lib.sh"
skip_without_qemu
command -v python3 >/dev/null || { echo "python3 not installed"; exit 77; }
python3 "$TESTS/../tools/map-difftest.py" --seed 1 --count 60 --quiet --bin "$QC_BIN"

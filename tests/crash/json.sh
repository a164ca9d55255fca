#!/bin/bash
# crashtest --json: one document with every state and the summary, in
# agreement with the text output of the same run.
. "$TESTS/lib.sh"; . "$TESTS/crash/crash-lib.bash"
need_repairer
command -v python3 >/dev/null 2>&1 || { echo "python3 needed to read the JSON"; exit 77; }
crashtest --workload "$WL/mixed.wl" --torn > text.out 2>&1 || { tail -5 text.out; exit 1; }
crashtest --workload "$WL/mixed.wl" --torn --json > doc.json 2>json.err || { cat json.err; exit 1; }
python3 - "$TEST_DIR/doc.json" "$TEST_DIR/text.out" <<'PY'
import json, re, sys
d = json.load(open(sys.argv[1]))
text = open(sys.argv[2]).read()
s = d["summary"]
n = int(re.search(r"^crash states: (\d+)", text, re.M).group(1))
assert s["crash_states"] == n == len(d["states"]), (s, n)
assert s["failed"] == 0 and s["data_lost"] == 0 and s["passed"] == n
assert s["states_per_second"] > 0
kinds = {st["kind"] for st in d["states"]}
assert kinds == {"prefix", "torn"}, kinds
for i, st in enumerate(d["states"]):
    assert st["id"] == i and st["result"] == "pass"
    for k in ("writes", "dirty", "corruptions", "leaks", "corruptions-fixed", "leaks-fixed",
              "acknowledged_commands", "started_commands", "description"):
        assert k in st, (k, st)
    if st["kind"] == "torn":
        assert st["torn_bytes"] > 0, st
print("json ok:", n, "states")
PY

# The command line of the shell: unknown commands, quoting, comments, help,
# quit, and the exit status (the worst of the commands run).
. "$TESTS/golden/qc-shell/same.bash"
fixture ck-leak
run ck-leak.qcow2 'frobnicate' 'frobnicate 1 2'
run ck-leak.qcow2 '' '   ' '# a comment' 'hexdump 0 16 # the magic'
run ck-leak.qcow2 "hexdump '0' \"16\"" 'hexdump 0\ 16' "hexdump '0 16'" "hexdump 'x"
# the worst status wins: usage 64 > failure 1 > not qcow2 63 > 2 > 3 > 0
run ck-leak.qcow2 'check' 'hexdump 0 16'
run ck-leak.qcow2 'guest 1G' 'check -q'
run ck-leak.qcow2 'frob' 'guest 1G'
# quit and exit end the session; later commands do not run
run ck-leak.qcow2 'hexdump 0 4' 'quit' 'hexdump 0 16'
run ck-leak.qcow2 'exit' 'frob'
run ck-leak.qcow2 'quit now'
# help
run ck-leak.qcow2 'help'
run ck-leak.qcow2 'help l2' 'help write' 'help nosuch' 'help a b'

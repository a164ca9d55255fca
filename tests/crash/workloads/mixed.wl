# Allocating writes, in-place overwrites, partial clusters, zero clusters
# and discards, with flushes between groups of commands.
write -P 0x11 0 64k
write -P 0x12 64k 4k
write -P 0x13 1M 128k
flush
write -P 0x21 4k 4k
write -P 0x22 60k 8k
write -z 1M 64k
flush
discard 0 64k
write -P 0x31 0 4k
write -z 2M 4k
flush
write -P 0x41 3M 64k
read -P 0x41 3M 64k

# Compressed writes (and a normal write next to them) without zeroing or
# discarding a compressed cluster.
write -c -P 0x11 0 64k
write -c -P 0x12 64k 64k
flush
write -c -P 0x13 128k 128k
write -P 0x21 68k 4k
flush
write -c -P 0x31 1M 64k

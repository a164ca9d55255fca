# Compressed clusters: packed into shared host clusters, overwritten in
# part (copy on write out of a compressed cluster), zeroed and discarded.
write -c -P 0x11 0 64k
write -c -P 0x12 64k 64k
write -c -P 0x13 128k 128k
flush
write -P 0x21 68k 4k
write -z 128k 64k
flush
discard 0 64k
write -c -P 0x31 1M 64k
write -c -P 0x32 0 64k

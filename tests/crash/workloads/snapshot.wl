# On an image with an internal snapshot: every cluster and L2 table is
# shared, so writes copy the L2 table and the data clusters (copy on
# write, OFLAG_COPIED), and discards drop one of two references.
write -P 0x21 0 4k
write -P 0x22 128k 64k
flush
write -P 0x23 1M 4k
discard 192k 64k
flush
write -P 0x24 10M 4k
write -c -P 0x25 5M 64k
flush
write -P 0x26 2M 8k

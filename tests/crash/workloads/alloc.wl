# Run with 4 KiB clusters and 64-bit refcounts: an L2 table maps 2 MiB of
# guest disk and a refcount block covers 2 MiB of file, so this short
# workload needs new L2 tables and a second refcount block.
write -P 0x11 0 1M
write -P 0x12 4M 1M
flush
write -P 0x13 8M 300k
write -P 0x14 12M 8k
flush
write -P 0x15 5M 4k
write -P 0x16 20M 64k

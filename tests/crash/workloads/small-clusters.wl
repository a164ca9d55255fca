# With 512-byte clusters: a new L2 table every 32 KiB of guest disk, new
# refcount blocks every 128 KiB of file.
write -P 0x11 0 40k
write -P 0x12 100k 1k
flush
write -P 0x13 1M 80k
write -P 0x14 20k 2k
flush
discard 0 8k
write -P 0x15 2M 512
write -z 100k 4k

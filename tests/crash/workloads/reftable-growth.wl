# On a base image with 512-byte clusters and 64-bit refcounts whose file is
# almost 2 MiB (all that a one-cluster refcount table covers): these writes
# need new refcount blocks and a bigger refcount table.
write -P 0x21 4M 40k
flush
write -P 0x22 6M 24k
write -P 0x23 100k 1k
